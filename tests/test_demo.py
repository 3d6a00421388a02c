"""The README's demo command runs the real function on loopback and reports every message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_demo(*options: str) -> subprocess.CompletedProcess[str]:
    """`python -m cancel_handler.demo` as a newcomer runs it: none of this machine's identity,
    Graph, gRPC or OpenTelemetry settings leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IDENTITY_", "MSI_", "GRAPH_", "GRPC_VERBOSITY", "OTEL_"))
    }
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "cancel_handler.demo", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_demo_settles_every_sample_message_as_documented() -> None:
    """Each sample ends in the documented settlement, a fanned-out range's children are
    delivered and cancelled, one token serves all messages, and every sender (each child too)
    gets the matching reply on the reply queue; nothing reaches stderr."""
    result = run_demo()
    assert result.stderr == ""
    main, _, replies = result.stdout.partition("\nReplies on cancel-replies")
    rows = {}
    for line in main.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = line
    expected = {
        1: ("202", "complete", "Cancelled"),
        2: ("400", "deadletter", "NotOrganizer"),
        3: ("(not called)", "deadletter", "InvalidMessage"),
        4: ("404", "deadletter", "EventNotFound"),
        5: ("429 → 202", "complete", "Cancelled"),
        6: ("404", "complete", "AlreadyCancelled"),
        7: ("403", "deadletter", "GraphForbidden"),
        8: ("200 → 202", "complete", "Cancelled"),
        9: ("200", "complete", "Previewed"),
        10: ("200", "complete", "FannedOut"),
        11: ("202", "complete", "Cancelled"),
        12: ("202", "complete", "Cancelled"),
        13: ("202", "complete", "Cancelled"),
    }
    assert sorted(rows) == sorted(expected)
    for number, parts in expected.items():
        for part in parts:
            assert f"  {part}  " in rows[number] or rows[number].endswith(f"  {part}"), (
                part,
                rows[number],
            )
    assert "child request: AAMkWeekly=-OCC1" in rows[11]
    # The leave's children went through the children queue's session trigger, all in the
    # organizer's session (its hash, shortened; never the address).
    sessions = {re.search(r"\(session ([0-9a-f]{6})…\)", rows[n]).group(1) for n in (11, 12, 13)}
    assert len(sessions) == 1
    assert all("alex" not in rows[n] for n in (11, 12, 13))
    assert "#9 Previewed: listed 6, selected 3" in result.stdout
    assert "#10 FannedOut: listed 6, selected 3" in result.stdout
    assert "3 child request(s) sent" in result.stdout
    assert "1 token request(s) for 13 messages" in result.stdout
    assert "on 1 connection(s)" in result.stdout
    answered = dict(
        line.strip().split(":", 1) for line in replies.splitlines() if line.startswith("  #")
    )
    expected_replies = {
        1: "cancelled reason=Cancelled",
        2: "deadLettered reason=NotOrganizer",
        3: "deadLettered reason=InvalidMessage",
        4: "deadLettered reason=EventNotFound",
        5: "cancelled reason=Cancelled",
        6: "alreadyCancelled reason=AlreadyCancelled",
        7: "deadLettered reason=GraphForbidden",
        8: "cancelled reason=Cancelled",
        9: "previewed reason=Previewed graphStatus=200 attempts=1 events=3 children=0",
        10: "fannedOut reason=FannedOut graphStatus=200 attempts=1 events=3 children=3",
        11: "cancelled reason=Cancelled graphStatus=202 attempts=1 parent=#10",
        12: "cancelled reason=Cancelled graphStatus=202 attempts=1 parent=#10",
        13: "cancelled reason=Cancelled graphStatus=202 attempts=1 parent=#10",
    }
    assert sorted(answered, key=lambda n: int(n[1:])) == [f"#{n}" for n in expected_replies]
    for number, text in expected_replies.items():
        assert " ".join(answered[f"#{number}"].split()).startswith(text), answered[f"#{number}"]


def test_demo_shows_the_spans_on_request() -> None:
    """`--spans` prints one line per span: a consumer span per message, Graph client spans by
    route template, the fan-out's children under the parent's producer span; no UPN."""
    result = run_demo("--spans")
    spans = [line.split() for line in result.stdout.splitlines() if line.startswith("  span ")]
    consumers = [s for s in spans if s[5] == "consumer"]
    assert len(consumers) == 13
    assert {" ".join(s[6:8]) for s in spans if s[5] == "client"} == {
        "POST /users/{id}/events/{id}/cancel",
        "GET /users/{id}/events",
        "GET /users/{id}/calendarView",
    }
    [fan_out] = [s for s in spans if s[5] == "producer" and "messaging.batch.message_count=3" in s]
    children = [s for s in consumers if s[4] == fan_out[2]]
    assert len(children) == 3 and all(s[1] == fan_out[1] for s in children)
    assert "@" not in "\n".join(" ".join(s) for s in spans)
