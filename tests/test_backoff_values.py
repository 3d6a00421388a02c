"""Retry timing against the README's published values: backoff from 0.5 s doubling to 8 s with
half-to-full jitter, Retry-After read as Graph sends it, and the wait budget's exact edge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cancel_handler.core.backoff import DELAYED, IN_INVOCATION, WaitBudget, parse_retry_after


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (10, 8.0), (40, 8.0)],
)
def test_backoff_doubles_from_half_a_second_to_eight(attempt: int, ceiling: float) -> None:
    """Retry n waits between half and all of min(8 s, 0.5 s · 2^(n-1)), as the README says."""
    assert IN_INVOCATION.backoff(attempt, 0.0) == ceiling / 2
    assert IN_INVOCATION.backoff(attempt, 1.0) == ceiling
    assert IN_INVOCATION.backoff(attempt, 0.5) == ceiling * 0.75


def test_ten_attempts_inside_one_invocation() -> None:
    """The README: at most 10 attempts per Graph call inside one invocation."""
    assert IN_INVOCATION.max_tries == 10


@pytest.mark.parametrize(
    ("retry", "jitter", "seconds"),
    [(1, 1.0, 30.0), (1, 0.0, 15.0), (2, 1.0, 60.0), (7, 1.0, 1920.0), (8, 1.0, 3600.0),
     (8, 0.0, 1800.0), (40, 1.0, 3600.0), (1, -5.0, 15.0), (1, 5.0, 30.0)],
)
def test_delayed_retries_double_from_thirty_seconds_to_an_hour(
    retry: int, jitter: float, seconds: float
) -> None:
    """Delayed retry n waits half to all of min(1 h, 30 s · 2^(n-1)); jitter is clamped."""
    assert DELAYED.backoff(retry, jitter) == seconds


@pytest.mark.parametrize(("named", "kept"), [(0.2, 1.0), (1.0, 1.0), (86400.0, 3600.0)])
def test_a_named_delayed_wait_is_kept_between_a_second_and_an_hour(
    named: float, kept: float
) -> None:
    assert DELAYED.clamp(named) == kept


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1.5", 1.5),
        ("\t30\r\n", 30.0),
        ("0.001", 0.001),
        ("-0.5", 0.0),
        ("-inf", None),
        ("", None),
        ("   ", None),
        # HTTP-date without a zone is read as UTC (RFC 9110 dates are always GMT).
        ("Thu, 01 Jan 2026 12:00:30", 30.0),
        ("Thu, 01 Jan 2026 12:00:30 +0100", 0.0),
        ("Thu, 01 Jan 2026 13:00:30 +0100", 30.0),
        ("Thu, 32 Jan 2026 12:00:30 GMT", None),
    ],
)
def test_retry_after_values(header: str, seconds: float | None) -> None:
    """Delay-seconds (with whitespace), HTTP-dates with and without a zone, junk ignored."""
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


def test_retry_after_date_uses_the_current_time_by_default() -> None:
    """Without `now`, an HTTP-date is measured from the real clock: a date in 2000 is past."""
    assert parse_retry_after("Sat, 01 Jan 2000 00:00:00 GMT") == 0.0
    later = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert later is not None and later > 365 * 24 * 3600


def test_budget_allows_a_wait_of_exactly_what_remains() -> None:
    """A wait equal to the remaining budget is allowed; a hair more is not."""
    budget = WaitBudget(60.0)
    budget.spend(20.0)
    budget.spend(15.5)
    assert budget.spent == 35.5 and budget.remaining == 24.5
    assert budget.allows(24.5) and not budget.allows(24.5001)


def test_an_overspent_budget_has_nothing_left() -> None:
    """Once spent past its size the budget reports 0 remaining, never a negative number."""
    budget = WaitBudget(1.0)
    budget.spend(3.0)
    assert budget.remaining == 0.0 and budget.allows(0.0) and not budget.allows(0.1)
