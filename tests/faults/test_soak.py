"""The randomized soak (see tests/faults/soak.py): SOAK_MESSAGES requests (default 5,000), seed
SOAK_SEED; every message ends cancelled, dead-lettered with a documented reason, or (in between)
back on the queue, and the counts per end state are printed."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from tests.conftest import Loopback
from tests.faults.soak import run_soak

COUNT = int(os.environ.get("SOAK_MESSAGES", "5000"))
SEED = int(os.environ.get("SOAK_SEED", "6"))


@pytest.mark.timeout(600)
def test_soak_every_message_ends_in_one_visible_state(loopback: Loopback) -> None:
    """Seeded mix of all faults and bad input: every invariant holds for every delivery and
    every request; prints the end-state counts."""
    report = asyncio.run(run_soak(loopback, count=COUNT, seed=SEED))
    stats, ends = report["stats"], report["ends"]
    print(f"\nsoak: {COUNT} requests, seed {SEED}")
    print(json.dumps({"ends": dict(sorted(ends.items())), "stats": dict(sorted(stats.items()))},
                     indent=2, ensure_ascii=False))  # fmt: skip
    assert sum(v for k, v in ends.items() if not k.startswith("(")) >= COUNT
    assert ends["complete:Cancelled"] > COUNT // 2
    assert stats["delayed-retries-scheduled"] > 0 and stats["settlement-refused:complete"] > 0
