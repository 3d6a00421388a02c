"""Serve the loopback identity endpoint and Graph simulator in a process of their own, driven by
JSON commands on stdin (`python -m cancel_handler.devtools --help` describes them).

Benchmarks run it so the simulator's CPU and memory are not counted as the client's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from cancel_handler.devtools.control import answer, configure
from cancel_handler.devtools.control_values import (
    LATENCY_RULE,
    LIMIT_RULE,
    MAX_LATENCY_SECONDS,
    MAX_LIMIT,
    MAX_WINDOW_SECONDS,
    WINDOW_SECONDS_RULE,
    Invalid,
    from_text,
    latency,
    limit,
    window_seconds,
)
from cancel_handler.devtools.graph_simulator import GraphSimulator
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority

PROG = "python -m cancel_handler.devtools"
#: Exit code when interrupted (Ctrl-C), as shells report a SIGINT.
EXIT_INTERRUPTED = 130

PROTOCOL = f"""\
Once both servers listen, one JSON line on stdout gives their addresses:
  {{"graph_base_url": "http://127.0.0.1:PORT/v1.0",
   "identity_environment": {{"IDENTITY_ENDPOINT": "...", "IDENTITY_HEADER": "..."}}}}
Then each line on stdin is one command, a JSON object, and gets one JSON line on stdout:

  {{"op": "configure", FIELD: VALUE, ...}}
      sets the fields given (all of them, or none if one is wrong); answers {{"ok": true}}
      "latency"              seconds each Graph answer waits, 0 to {MAX_LATENCY_SECONDS}; null: none
      "auto_events"          true or false: every unknown event id is an organizer's event
      "mailbox_concurrency"  requests in flight per mailbox before Graph answers 429,
                             a whole number 1 to {MAX_LIMIT}; null: no limit
      "mailbox_window"       [requests, seconds]: requests per mailbox within that many
                             seconds before 429 (requests 1 to {MAX_LIMIT}, a whole number;
                             seconds above 0, at most {MAX_WINDOW_SECONDS}); null: no limit
      "graph_limits"         an object of graph_limits.GraphLimitRules fields, and "scale" (a
                             factor for every duration): Graph's limits across every caller;
                             null: none
      "latency_lognormal"    {{"median": S, "sigma": N, "seed": ANY}}: each answer's latency
                             drawn from a log-normal distribution; null: the fixed latency
  {{"op": "add_meetings", "mailbox": "...", "count": N, "start": ISO_DATE_TIME,
    "every_minutes": N, "prefix": "..."}}
      puts N one-hour meetings with one attendee, every_minutes apart (60 if not given),
      in the mailbox's calendar; answers {{"ok": true}}
  {{"op": "stats"}}
      answers what Graph received since the last reset: {{"calls": N,
      "statuses": {{"202": N, ...}}, "max_peak_in_flight": N (any mailbox),
      "connections": N, "first_call_at": S, "last_call_at": S, "limits": {{...}}}} (S:
      seconds on the simulator's monotonic clock, null before the first call; limits:
      what graph_limits counted, null without them)
  {{"op": "reset"}}
      forgets calls, cancelled events, peaks and window counts (the configuration
      stays); answers {{"ok": true}}
  {{"op": "token"}}
      answers {{"token": "...", "expires_on": EPOCH_SECONDS}}, a token Graph accepts
      (for clients without a managed-identity credential)

Any other line (empty, not UTF-8, not JSON, NaN, not an object, a name twice, an unknown
op or field, a value of the wrong type or out of range) is answered
{{"error": "<what is wrong>"}}, changes nothing, and the servers go on.

End of input (or a closed stdin) stops both servers: exit code 0. Exit codes otherwise:
1 stdout is closed; 2 a wrong option; {EXIT_INTERRUPTED} interrupted (Ctrl-C).
"""


def main(argv: list[str] | None = None) -> int:
    """Serve until end of input; the exit code."""
    args = _parser().parse_args(argv)
    if sys.stdout is None:
        print(f"{PROG}: stdout is closed; nothing would read the answers", file=sys.stderr)
        return 1
    commands = sys.stdin.buffer if sys.stdin is not None else ()  # closed: no input at all
    authority = TokenAuthority()
    try:
        with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
            configure(graph.state, _initial(args))
            _say(
                {
                    "graph_base_url": graph.graph_base_url,
                    "identity_environment": identity.environment,
                }
            )
            for line in commands:
                _say(answer(graph.state, authority, line))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Nobody reads the answers any more; keep the final flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"{PROG}: stdout was closed; stopping", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Serve a Microsoft Graph simulator and an App Service managed-identity endpoint on\n"
            "127.0.0.1 until end of input, driven by JSON commands on stdin. Never for production."
        ),
        epilog=PROTOCOL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--latency", type=_option(latency, LATENCY_RULE), default=0.0, metavar="SECONDS",
        help=f"seconds each Graph answer waits, 0 to {MAX_LATENCY_SECONDS} (default 0)",
    )
    parser.add_argument(
        "--auto-events", action="store_true",
        help="every unknown event id is an organizer's event",
    )
    parser.add_argument(
        "--mailbox-concurrency", type=_option(limit, LIMIT_RULE), default=None, metavar="N",
        help=f"requests in flight per mailbox before 429, 1 to {MAX_LIMIT} (default: no limit)",
    )
    parser.add_argument(
        "--mailbox-window", type=_window, default=None, metavar="REQUESTS/SECONDS",
        help=f"requests per mailbox within that many seconds before 429; requests 1 to "
        f"{MAX_LIMIT}, seconds above 0, at most {MAX_WINDOW_SECONDS} (default: no limit)",
    )  # fmt: skip
    return parser


def _option(check: Callable[[object], Any], rule: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return check(from_text(text))
        except Invalid:
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}") from None

    return parse


def _window(text: str) -> tuple[int, float]:
    requests, slash, seconds = text.partition("/")
    try:
        if not slash:
            raise Invalid("no /")
        return limit(from_text(requests)), window_seconds(from_text(seconds))
    except Invalid:
        raise argparse.ArgumentTypeError(
            f"must be REQUESTS/SECONDS, requests {LIMIT_RULE} and seconds {WINDOW_SECONDS_RULE}; "
            f"got {text!r}"
        ) from None


def _initial(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "latency": args.latency,
        "auto_events": args.auto_events,
        "mailbox_concurrency": args.mailbox_concurrency,
        "mailbox_window": args.mailbox_window,
    }


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
