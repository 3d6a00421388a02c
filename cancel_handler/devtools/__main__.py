"""Serve the loopback identity endpoint and Graph simulator in a process of their own.

    python -m cancel_handler.devtools [--latency 0.05] [--auto-events]
                                      [--mailbox-concurrency 4] [--mailbox-window 10000/600]

Benchmarks run it so the simulator's CPU and memory are not counted as the client's. It prints one
JSON line (`graph_base_url`, `identity_environment`) once both servers listen, then reads JSON
commands from stdin, one per line, answering each with one JSON line on stdout:

- `{"op": "configure", "latency": 0.05, "auto_events": true, "mailbox_concurrency": 4,
  "mailbox_window": [10000, 600]}` sets any of those fields (null switches a limit off);
- `{"op": "configure", "graph_limits": {"mailbox_concurrency": 4, …}}` enforces Graph's limits
  across every caller (`graph_limits.GraphLimitRules` fields; `"scale": 0.1` multiplies its
  durations), and `"latency_lognormal": {"median": 0.3, "sigma": 0.6, "seed": 1}` draws each
  answer's latency from a log-normal distribution (both: null switches it off);
- `{"op": "add_meetings", "mailbox": "…", "count": 800, "start": "2030-01-01T08:00:00+00:00",
  "every_minutes": 60}` puts `count` one-hour meetings with one attendee in a calendar;
- `{"op": "stats"}` returns call counts by status, the highest in-flight count of any mailbox
  (and with `graph_limits`, its counts: `limits`);
- `{"op": "reset"}` forgets calls, cancelled events, peaks and window counters;
- `{"op": "token"}` issues a valid token (for clients without a managed-identity credential).

End of input stops both servers.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cancel_handler.devtools.graph_limits import GraphLimitRules, GraphLimits
from cancel_handler.devtools.graph_simulator import GraphSimulator, GraphState, Meeting
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority


def _window(text: str) -> tuple[int, float]:
    requests, _, seconds = text.partition("/")
    return int(requests), float(seconds)


def configure(state: GraphState, command: dict[str, Any]) -> None:
    """Apply the fields of a `configure` command to the simulator state."""
    with state.lock:
        if "latency" in command:
            state.latency = float(command["latency"] or 0.0)
        if "auto_events" in command:
            state.auto_events = bool(command["auto_events"])
        if "mailbox_concurrency" in command:
            value = command["mailbox_concurrency"]
            state.mailbox_concurrency = None if value is None else int(value)
        if "mailbox_window" in command:
            value = command["mailbox_window"]
            state.mailbox_window = None if value is None else (int(value[0]), float(value[1]))
        if "graph_limits" in command:
            state.limits = _limits(command["graph_limits"])
        if "latency_lognormal" in command:
            state.latency_sampler = _lognormal(command["latency_lognormal"])


def _limits(fields: dict[str, Any] | None) -> GraphLimits | None:
    if fields is None:
        return None
    fields = dict(fields)
    scale = float(fields.pop("scale", 1.0))
    for name in ("mailbox_window", "app_window"):
        if fields.get(name) is not None:
            fields[name] = (int(fields[name][0]), float(fields[name][1]))
    return GraphLimits(GraphLimitRules(**fields).scaled(scale))


def _lognormal(fields: dict[str, Any] | None) -> Callable[[], float] | None:
    """Latency drawn from a log-normal distribution with the given median and sigma."""
    if fields is None:
        return None
    rng = random.Random(fields.get("seed"))  # noqa: S311 - simulated latency, not security
    mu, sigma = math.log(float(fields["median"])), float(fields["sigma"])
    return lambda: rng.lognormvariate(mu, sigma)


def add_meetings(state: GraphState, command: dict[str, Any]) -> None:
    """Put `count` one-hour meetings, `every_minutes` apart from `start`, in a calendar."""
    start = datetime.fromisoformat(command["start"])
    every = timedelta(minutes=float(command.get("every_minutes", 60)))
    prefix = command.get("prefix", "AAMkFleet")
    for index in range(int(command["count"])):
        at = start + index * every
        state.add_meeting(
            command["mailbox"], Meeting(f"{prefix}{index:05}=", at, at + timedelta(hours=1))
        )


def stats(state: GraphState) -> dict[str, Any]:
    """What the simulator saw since the last reset."""
    with state.lock:
        statuses = Counter(call.status for call in state.calls)
        return {
            "calls": len(state.calls),
            "statuses": {str(status): count for status, count in sorted(statuses.items())},
            "max_peak_in_flight": max(state.peak_in_flight.values(), default=0),
            "connections": len({call.connection for call in state.calls}),
            "first_call_at": state.calls[0].received_at if state.calls else None,
            "last_call_at": state.calls[-1].received_at if state.calls else None,
            "limits": state.limits.summary() if state.limits is not None else None,
        }


def reset(state: GraphState) -> None:
    """Forget everything recorded; keep latency, limits and scripted events."""
    with state.lock:
        state.calls.clear()
        state.cancelled.clear()
        state.peak_in_flight.clear()
        state.window_hits.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cancel_handler.devtools")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Graph answer")
    parser.add_argument("--auto-events", action="store_true", help="every event id exists")
    parser.add_argument("--mailbox-concurrency", type=int, default=None)
    parser.add_argument("--mailbox-window", type=_window, default=None, help="REQUESTS/SECONDS")
    args = parser.parse_args(argv)

    authority = TokenAuthority()
    with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
        state = graph.state
        state.latency = args.latency
        state.auto_events = args.auto_events
        state.mailbox_concurrency = args.mailbox_concurrency
        state.mailbox_window = args.mailbox_window
        _say(
            {
                "graph_base_url": graph.graph_base_url,
                "identity_environment": identity.environment,
            }
        )
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            op = command.get("op")
            if op == "configure":
                configure(state, command)
                _say({"ok": True})
            elif op == "add_meetings":
                add_meetings(state, command)
                _say({"ok": True})
            elif op == "stats":
                _say(stats(state))
            elif op == "reset":
                reset(state)
                _say({"ok": True})
            elif op == "token":
                token, expires_on = authority.issue()
                _say({"token": token, "expires_on": expires_on})
            else:
                _say({"error": f"unknown op {op!r}"})
    return 0


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
