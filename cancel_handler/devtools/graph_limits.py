"""Microsoft Graph's throttling limits as one gate shared by every caller (a fleet of instances).

Pinned to Microsoft's documentation:

- Outlook service limits, per app ID and mailbox: **4 concurrent requests** and **10,000 API
  requests in a 10-minute period**; exceeding them in one mailbox does not affect another
  (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits).
- Global limit, per app across all tenants: **130,000 requests per 10 seconds**
  (https://learn.microsoft.com/graph/throttling-limits#global-limits).
- A throttled request is answered `429 Too Many Requests` with a `Retry-After` header in
  seconds (https://learn.microsoft.com/graph/throttling#what-happens-when-throttling-occurs);
  Outlook's concurrency refusal reads `ApplicationThrottled`, "Application is over its
  MailboxConcurrency limit."; the doc's sample `Retry-After` is fractional (`2.128`).
- "Avoid immediate retries, because all requests accrue against your usage limits"
  (https://learn.microsoft.com/graph/throttling#best-practices-to-handle-throttling): a refused
  request still counts toward the request windows (`count_refused`, on by default).

Unknown, and so parameters of :class:`GraphLimitRules`: the `Retry-After` Graph sends for each
limit (`concurrency_retry_after`; `window_retry_after`, by default the time until the window
admits a request again), how long Graph takes to answer a refused request
(`refusal_latency`), the order in which Graph checks its limits (here: app window, mailbox
window, mailbox concurrency), and whether the windows slide or reset (here: sliding).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

#: Outlook's per-app, per-mailbox concurrency limit.
MAILBOX_CONCURRENCY = 4
#: Outlook's per-app, per-mailbox request window: 10,000 requests per 10 minutes.
MAILBOX_WINDOW = (10_000, 600.0)
#: Graph's global per-app window: 130,000 requests per 10 seconds.
APP_WINDOW = (130_000, 10.0)

CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
MAILBOX_WINDOW_MESSAGE = "Application is over its request limit for this mailbox."
APP_WINDOW_MESSAGE = "Application is over its request limit."


@dataclass(frozen=True)
class GraphLimitRules:
    """Which limits apply and what a refusal says; `None` switches a limit off."""

    mailbox_concurrency: int | None = MAILBOX_CONCURRENCY
    mailbox_window: tuple[int, float] | None = MAILBOX_WINDOW
    app_window: tuple[int, float] | None = APP_WINDOW
    #: Refused requests count toward the windows ("all requests accrue").
    count_refused: bool = True
    #: Seconds of `Retry-After` on a concurrency refusal (Graph's value is undocumented).
    concurrency_retry_after: float = 1.0
    #: Seconds of `Retry-After` on a window refusal; None: until the window admits again.
    window_retry_after: float | None = None
    #: Seconds Graph takes to answer a refused request (undocumented; a guess).
    refusal_latency: float = 0.1

    def scaled(self, factor: float) -> GraphLimitRules:
        """The same rules with every duration multiplied by `factor` (a faster clock)."""

        def window(value: tuple[int, float] | None) -> tuple[int, float] | None:
            return None if value is None else (value[0], value[1] * factor)

        return replace(
            self,
            mailbox_window=window(self.mailbox_window),
            app_window=window(self.app_window),
            concurrency_retry_after=self.concurrency_retry_after * factor,
            refusal_latency=self.refusal_latency * factor,
            window_retry_after=(
                None if self.window_retry_after is None else self.window_retry_after * factor
            ),
        )


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused and the `Retry-After` to send, in seconds."""

    limit: str
    message: str
    retry_after: float


@dataclass
class GraphLimits:
    """Admits or refuses each request by :class:`GraphLimitRules`; thread-safe.

    `admit(mailbox)` before the work, then `release(mailbox)` once answered, admitted or
    refused (a refused request is in hand until its 429 is sent). Records the most requests
    each mailbox had in flight (admitted) and in hand at once (admitted or being refused)."""

    rules: GraphLimitRules = field(default_factory=GraphLimitRules)
    clock: Callable[[], float] = time.monotonic
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refusing: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak_in_hand: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refusals: Counter[str] = field(default_factory=Counter)
    admitted: int = 0
    _mailbox_hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _app_hits: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, mailbox: str) -> Refusal | None:
        """None when the request may proceed (then call `release`), else the refusal."""
        rules, key = self.rules, mailbox.lower()
        with self._lock:
            now = self.clock()
            running = self.in_flight[key]
            self.peak_in_hand[key] = max(
                self.peak_in_hand[key], running + self.refusing[key] + 1
            )
            windows = [
                (rules.app_window, self._app_hits, "app_window", APP_WINDOW_MESSAGE),
                (
                    rules.mailbox_window,
                    self._mailbox_hits[key],
                    "mailbox_window",
                    MAILBOX_WINDOW_MESSAGE,
                ),
            ]
            for window, hits, _, _ in windows:
                if window is not None:
                    _forget_before(hits, now - window[1])
                    if rules.count_refused:
                        hits.append(now)
            refusal = self._window_refusal(windows, now)
            if refusal is None and (
                rules.mailbox_concurrency is not None and running >= rules.mailbox_concurrency
            ):
                refusal = Refusal(
                    "mailbox_concurrency", CONCURRENCY_MESSAGE, rules.concurrency_retry_after
                )
            if refusal is not None:
                self.refusals[refusal.limit] += 1
                self.refusing[key] += 1
                return refusal
            if not rules.count_refused:
                for window, hits, _, _ in windows:
                    if window is not None:
                        hits.append(now)
            self.in_flight[key] = running + 1
            self.peak_in_flight[key] = max(self.peak_in_flight[key], running + 1)
            self.admitted += 1
            return None

    def release(self, mailbox: str, *, refused: bool = False) -> None:
        """A request for `mailbox` was answered (`refused`: with its 429)."""
        with self._lock:
            if refused:
                self.refusing[mailbox.lower()] -= 1
            else:
                self.in_flight[mailbox.lower()] -= 1

    def _window_refusal(self, windows: list, now: float) -> Refusal | None:
        counted = 1 if self.rules.count_refused else 0  # the arriving request, if appended
        for window, hits, limit, message in windows:
            if window is None or len(hits) - counted < window[0]:
                continue
            retry_after = self.rules.window_retry_after
            if retry_after is None:
                # The oldest request still counted leaves the window then.
                retry_after = max(hits[len(hits) - counted - window[0]] + window[1] - now, 0.0)
            return Refusal(limit, message, retry_after)
        return None

    def summary(self) -> dict[str, object]:
        """Counts and peaks, for a benchmark's report."""
        with self._lock:
            return {
                "admitted": self.admitted,
                "refused": dict(self.refusals),
                "max_in_flight": max(self.peak_in_flight.values(), default=0),
                "max_in_hand": max(self.peak_in_hand.values(), default=0),
            }


def _forget_before(hits: deque[float], horizon: float) -> None:
    while hits and hits[0] <= horizon:
        hits.popleft()
