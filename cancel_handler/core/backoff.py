"""Pure retry timing: parse Retry-After, compute jittered backoff, keep the wait budget."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
MAX_ATTEMPTS = 10


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


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Jittered exponential delay before retry number `attempt` (1-based) when Graph named none:
    half to all of min(cap, base * 2**(attempt-1))."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return ceiling * (0.5 + rng.random() / 2)


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
