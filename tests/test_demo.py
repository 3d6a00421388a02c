"""The README's demo command runs the real function on loopback and reports every message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_settles_every_sample_message_as_documented() -> None:
    """Each sample ends in the documented settlement, with one token for all messages, and its
    sender gets the matching reply on the reply queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "MSI_", "GRAPH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "cancel_handler.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
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
    }
    assert sorted(rows) == sorted(expected)
    for number, parts in expected.items():
        for part in parts:
            assert f"  {part}  " in rows[number] or rows[number].endswith(f"  {part}"), (
                part,
                rows[number],
            )
    assert "1 token request(s) for 7 messages" in result.stdout
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
    }
    assert sorted(answered) == [f"#{n}" for n in expected_replies]
    for number, text in expected_replies.items():
        assert " ".join(answered[f"#{number}"].split()).startswith(text), answered[f"#{number}"]
