"""`python -m cancel_handler.devtools` as its drivers use it: every stdin line gets one JSON
answer, a bad line an error that says what is wrong, and the process never shows a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPS = '"configure", "add_meetings", "stats", "reset", "token"'
FIELDS = (
    "latency, auto_events, mailbox_concurrency, mailbox_window, graph_limits, latency_lognormal"
)
LATENCY = "latency: must be a number of seconds from 0 to 3600, or null for none; got "
LIMIT = "a whole number from 1 to 1000000"
CONCURRENCY = f"mailbox_concurrency: must be {LIMIT}, or null for no limit; got "
WINDOW = (
    f"mailbox_window: must be [requests, seconds], requests {LIMIT} and seconds a number of "
    "seconds above 0, at most 86400, or null for no limit; got "
)
AUTO = "auto_events: must be true or false; got "

#: (stdin line, the whole answer's error text)
BAD_LINES = [
    (b"not json", "not JSON: Expecting value at column 1"),
    (b"[1]", 'expected a JSON object such as {"op": "stats"}; got [1]'),
    (b'{"op":"configure","latency":"abc"}', LATENCY + '"abc"'),
    (b"", 'empty line; send one JSON object a line, such as {"op": "stats"}'),
    (b"   \t", 'empty line; send one JSON object a line, such as {"op": "stats"}'),
    (b'{"op": "stats"', "not JSON: Expecting ',' delimiter at column 15"),
    (b"\xff{}", "not UTF-8: byte 0xff at offset 0"),
    (b"NaN", "not JSON: NaN is not a JSON value"),
    (b'{"op":"configure","latency":NaN}', "not JSON: NaN is not a JSON value"),
    (b'{"op":"configure","latency":-Infinity}', "not JSON: -Infinity is not a JSON value"),
    (b"null", 'expected a JSON object such as {"op": "stats"}; got null'),
    (b"42", 'expected a JSON object such as {"op": "stats"}; got 42'),
    (b'"stats"', 'expected a JSON object such as {"op": "stats"}; got "stats"'),
    (b"[" * 100_000, "not JSON this tool reads: arrays or objects nested too deeply"),
    (b"9" * 5000, "not JSON this tool reads: a number with too many digits"),
    (
        b'{"op":"configure","latency":1e99999999999999999999}',
        "not JSON this tool reads: a number with too large an exponent",
    ),
    (b"{}", f"op: missing; it must be one of {OPS}"),
    (b'{"op":"explode"}', f'op: must be one of {OPS}; got "explode"'),
    (b'{"op":"Stats"}', f'op: must be one of {OPS}; got "Stats"'),
    (b'{"op":5}', f"op: must be one of {OPS}; got 5"),
    (b'{"op":null}', f"op: must be one of {OPS}; got null"),
    (b'{"op":["stats"]}', f'op: must be one of {OPS}; got ["stats"]'),
    (b'{"op":{"name":"stats"}}', f"op: must be one of {OPS}; got an object"),
    (b'{"op":"stats","op":"token"}', "op: appears twice in one object"),
    (b'{"op":"stats","verbose":true}', 'verbose: op "stats" takes no other field'),
    (b'{"op":"reset","all":1}', 'all: op "reset" takes no other field'),
    (b'{"op":"token","expired":true}', 'expired: op "token" takes no other field'),
    (
        b'{"op":"configure","latncy":1}',
        f'latncy: op "configure" has no such field; its fields are {FIELDS}',
    ),
    (
        b'{"op":"configure","la tency\\u0007":1}',
        f'"la tency\\u0007": op "configure" has no such field; its fields are {FIELDS}',
    ),
    (b'{"op":"configure","latency":true}', LATENCY + "true"),
    (b'{"op":"configure","latency":"0.05"}', LATENCY + '"0.05"'),
    (b'{"op":"configure","latency":[0.05]}', LATENCY + "[0.05]"),
    (b'{"op":"configure","latency":{}}', LATENCY + "an object"),
    (b'{"op":"configure","latency":-0.001}', LATENCY + "-0.001"),
    (b'{"op":"configure","latency":3600.5}', LATENCY + "3600.5"),
    (b'{"op":"configure","latency":1e999}', LATENCY + "1E+999"),
    (b'{"op":"configure","latency":' + b"9" * 60 + b"}", LATENCY + "9" * 39 + "…"),
    (b'{"op":"configure","auto_events":"false"}', AUTO + '"false"'),
    (b'{"op":"configure","auto_events":0}', AUTO + "0"),
    (b'{"op":"configure","auto_events":null}', AUTO + "null"),
    (b'{"op":"configure","mailbox_concurrency":0}', CONCURRENCY + "0"),
    (b'{"op":"configure","mailbox_concurrency":-4}', CONCURRENCY + "-4"),
    (b'{"op":"configure","mailbox_concurrency":2.5}', CONCURRENCY + "2.5"),
    (b'{"op":"configure","mailbox_concurrency":"4"}', CONCURRENCY + '"4"'),
    (b'{"op":"configure","mailbox_concurrency":true}', CONCURRENCY + "true"),
    (b'{"op":"configure","mailbox_concurrency":1000001}', CONCURRENCY + "1000001"),
    (b'{"op":"configure","mailbox_concurrency":1e400}', CONCURRENCY + "1E+400"),
    (b'{"op":"configure","mailbox_window":"10000/600"}', WINDOW + '"10000/600"'),
    (b'{"op":"configure","mailbox_window":[10000]}', WINDOW + "[10000]"),
    (b'{"op":"configure","mailbox_window":[10000,600,1]}', WINDOW + "[10000, 600, 1]"),
    (b'{"op":"configure","mailbox_window":[0,600]}', WINDOW + "[0, 600]"),
    (b'{"op":"configure","mailbox_window":[10.5,600]}', WINDOW + "[10.5, 600]"),
    (b'{"op":"configure","mailbox_window":[10,0]}', WINDOW + "[10, 0]"),
    (b'{"op":"configure","mailbox_window":[10,86401]}', WINDOW + "[10, 86401]"),
    (b'{"op":"configure","mailbox_window":[10,"600"]}', WINDOW + '[10, "600"]'),
    (b'{"op":"configure","mailbox_window":{"requests":10}}', WINDOW + "an object"),
    (b'{"op":"configure","mailbox_window":[10,{"a":1,"a":2}]}', "a: appears twice in one object"),
]


def devtools(*args: str, interruptible: bool = False) -> subprocess.Popen[bytes]:
    """The tool in its own process, stdin and stdout as pipes; with `interruptible`, SIGINT's
    default action restored in it."""
    return subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "cancel_handler.devtools", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint if interruptible else None,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_every_bad_line_is_answered_with_what_is_wrong_and_serving_goes_on() -> None:
    """Each bad line gets one `{"error": …}` line naming the problem, good commands around them
    are obeyed, end of input ends the process with 0 and stderr stays empty."""
    lines = [b'{"op": "token"}', *(line for line, _ in BAD_LINES), b'{"op": "stats"}']
    stdin = b"".join(line + b"\n" for line in lines) + b'{"op": "reset"}'  # no final newline
    process = devtools("--latency", "0.01")
    stdout, stderr = process.communicate(stdin, timeout=60)

    ready, token, *errors, stats, reset = (json.loads(line) for line in stdout.splitlines())
    assert (process.returncode, stderr) == (0, b"")
    assert sorted(ready) == ["graph_base_url", "identity_environment"]
    assert sorted(token) == ["expires_on", "token"]
    assert errors == [{"error": text} for _, text in BAD_LINES]
    assert stats == {
        "calls": 0,
        "statuses": {},
        "max_peak_in_flight": 0,
        "connections": 0,
        "first_call_at": None,
        "last_call_at": None,
        "limits": None,
    }
    assert reset == {"ok": True}


def test_help_describes_every_stdin_command() -> None:
    """`--help` lists each op with its fields, their types and ranges, what each answers, what a
    bad line gets, and the exit codes."""
    process = devtools("--help")
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (0, b"")
    assert stdout.decode().startswith("usage: python -m cancel_handler.devtools [-h]")
    assert stdout.decode().endswith(HELP_PROTOCOL)


def test_closed_stdout_stops_with_a_message_and_code_1() -> None:
    """When the reader of the answers goes away, the tool says so in one line and exits 1."""
    process = devtools()
    assert process.stdout is not None and process.stdin is not None
    process.stdout.readline()
    process.stdout.close()
    _, stderr = process.communicate(b'{"op": "stats"}\n', timeout=60)
    assert (process.returncode, stderr) == (
        1,
        b"python -m cancel_handler.devtools: stdout was closed; stopping\n",
    )


def with_closed(redirection: str) -> subprocess.CompletedProcess[str]:
    """The tool started by a shell with stdin (`<&-`) or stdout (`>&-`) closed."""
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        ["/bin/sh", "-c", f'exec "$0" -m cancel_handler.devtools {redirection}', sys.executable],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_closed_stdin_is_no_input() -> None:
    """Both servers start, announce themselves and stop: exit 0, nothing on stderr."""
    result = with_closed("<&-")
    [ready] = result.stdout.splitlines()
    assert sorted(json.loads(ready)) == ["graph_base_url", "identity_environment"]
    assert (result.returncode, result.stderr) == (0, "")


def test_a_closed_stdout_at_start_is_one_line_and_code_1() -> None:
    """No server starts when nothing could read their addresses."""
    result = with_closed(">&-")
    assert (result.returncode, result.stderr) == (
        1,
        "python -m cancel_handler.devtools: stdout is closed; nothing would read the answers\n",
    )


def test_ctrl_c_stops_quietly_with_code_130() -> None:
    """An interrupt while waiting for a command stops both servers without a traceback. The
    tool starts with Ctrl-C's default action, as from a terminal: a suite started in the
    background by a shell ignores SIGINT, and its children would inherit that."""
    process = devtools(interruptible=True)
    assert process.stdout is not None
    process.stdout.readline()
    process.send_signal(signal.SIGINT)
    # Not communicate(): it would close stdin, and an end of input that wins the race with the
    # signal stops the tool with 0, as documented.
    process.wait(timeout=60)
    assert process.stdin is not None and process.stderr is not None
    process.stdin.close()
    assert (process.returncode, process.stdout.read(), process.stderr.read()) == (130, b"", b"")


HELP_PROTOCOL = """
Once both servers listen, one JSON line on stdout gives their addresses:
  {"graph_base_url": "http://127.0.0.1:PORT/v1.0",
   "identity_environment": {"IDENTITY_ENDPOINT": "...", "IDENTITY_HEADER": "..."}}
Then each line on stdin is one command, a JSON object, and gets one JSON line on stdout:

  {"op": "configure", FIELD: VALUE, ...}
      sets the fields given (all of them, or none if one is wrong); answers {"ok": true}
      "latency"              seconds each Graph answer waits, 0 to 3600; null: none
      "auto_events"          true or false: every unknown event id is an organizer's event
      "mailbox_concurrency"  requests in flight per mailbox before Graph answers 429,
                             a whole number 1 to 1000000; null: no limit
      "mailbox_window"       [requests, seconds]: requests per mailbox within that many
                             seconds before 429 (requests 1 to 1000000, a whole number;
                             seconds above 0, at most 86400); null: no limit
      "graph_limits"         an object of graph_limits.GraphLimitRules fields, and "scale" (a
                             factor for every duration): Graph's limits across every caller;
                             null: none
      "latency_lognormal"    {"median": S, "sigma": N, "seed": ANY}: each answer's latency
                             drawn from a log-normal distribution; null: the fixed latency
  {"op": "add_meetings", "mailbox": "...", "count": N, "start": ISO_DATE_TIME,
    "every_minutes": N, "prefix": "..."}
      puts N one-hour meetings with one attendee, every_minutes apart (60 if not given),
      in the mailbox's calendar; answers {"ok": true}
  {"op": "stats"}
      answers what Graph received since the last reset: {"calls": N,
      "statuses": {"202": N, ...}, "max_peak_in_flight": N (any mailbox),
      "connections": N, "first_call_at": S, "last_call_at": S, "limits": {...}} (S:
      seconds on the simulator's monotonic clock, null before the first call; limits:
      what graph_limits counted, null without them)
  {"op": "reset"}
      forgets calls, cancelled events, peaks and window counts (the configuration
      stays); answers {"ok": true}
  {"op": "token"}
      answers {"token": "...", "expires_on": EPOCH_SECONDS}, a token Graph accepts
      (for clients without a managed-identity credential)

Any other line (empty, not UTF-8, not JSON, NaN, not an object, a name twice, an unknown
op or field, a value of the wrong type or out of range) is answered
{"error": "<what is wrong>"}, changes nothing, and the servers go on.

End of input (or a closed stdin) stops both servers: exit code 0. Exit codes otherwise:
1 stdout is closed; 2 a wrong option; 130 interrupted (Ctrl-C).
"""
