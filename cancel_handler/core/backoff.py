"""Pure retry timing: the retry policy of each tier as data, parse Retry-After, keep the wait
budget. One backoff rule serves both tiers (:meth:`RetryPolicy.backoff`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One tier of retries as data: at most `max_tries` tries, and before retry number n
    (1-based), when the server named no wait, half to all of min(cap, base·2^(n-1)) (the
    jitter picks where), never less than `floor_seconds`."""

    base_seconds: float
    cap_seconds: float
    max_tries: int
    floor_seconds: float = 0.0

    def backoff(self, retry: int, jitter: float) -> float:
        """The wait before retry number `retry`; `jitter` in [0, 1] (clamped) spreads the
        waits of messages that failed together."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (retry - 1))
        spread = 0.5 + max(0.0, min(1.0, jitter)) / 2
        return max(self.floor_seconds, ceiling * spread)

    def clamp(self, seconds: float) -> float:
        """A wait the server named, kept within [floor, cap]."""
        return max(self.floor_seconds, min(self.cap_seconds, seconds))


#: Inside one invocation, for each Graph call of a message: at most 10 attempts, 0.5 s doubling
#: to 8 s (the total wait is CANCEL_RETRY_BUDGET_SECONDS's, see :class:`WaitBudget`).
IN_INVOCATION = RetryPolicy(base_seconds=0.5, cap_seconds=8.0, max_tries=10)
#: Delayed retries, copies scheduled on the queue: 30 s doubling, from 1 s to 1 h (a Retry-After
#: clamped to that too); how many is the app setting DELAYED_RETRY_MAX_COUNT.
DELAYED = RetryPolicy(base_seconds=30.0, cap_seconds=3600.0, max_tries=0, floor_seconds=1.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds (fractional allowed, as Graph
    sends) or an HTTP-date. None when absent or unreadable; never negative."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


@dataclass
class WaitBudget:
    """How much more one invocation may wait between retries."""

    seconds: float
    spent: float = field(default=0.0)

    @property
    def remaining(self) -> float:
        """Seconds still available."""
        return max(0.0, self.seconds - self.spent)

    def allows(self, delay: float) -> bool:
        """True when waiting `delay` more seconds stays within the budget."""
        return delay <= self.remaining

    def spend(self, delay: float) -> None:
        """Record a wait."""
        self.spent += delay
