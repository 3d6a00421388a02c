"""Retry timing: Retry-After parsing, jittered backoff bounds, the wait budget."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from cancel_handler.core.backoff import IN_INVOCATION, WaitBudget, parse_retry_after

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        ("2.128", 2.128),
        (" 0 ", 0.0),
        ("-3", 0.0),
        ("Thu, 01 Jan 2026 12:00:07 GMT", 7.0),
        ("Thu, 01 Jan 2026 11:59:00 GMT", 0.0),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_forms(header: str | None, seconds: float | None) -> None:
    """Seconds (fractional too) and HTTP-dates are understood; junk is ignored, never negative."""
    assert parse_retry_after(header, now=NOW) == seconds


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    """Each delay lies in [half, all] of min(cap, 0.5·2^(n-1)); jitter spreads the values."""
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        delays = {IN_INVOCATION.backoff(attempt, rng.random()) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_wait_budget() -> None:
    """The budget allows waits until the total would pass it."""
    budget = WaitBudget(10)
    assert budget.allows(10)
    budget.spend(6)
    assert budget.allows(4) and not budget.allows(4.01)
    assert budget.remaining == 4
