"""Delayed retries: when Graph asks for a longer wait than the invocation may spend (or the
in-process budget is spent), schedule a copy of the message for later instead of burning a
delivery, then complete the original.

Order matters: the copy is scheduled first and the original completed only after that succeeded;
if scheduling fails the original is abandoned (given back), so the request is never lost. The copy
gets a new MessageId (duplicate detection silently drops a repeated one) and carries the original's
id in `originalMessageId` and its retry number in `cancelHandlerRetryCount`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.servicebus.messages import (
    ORIGINAL_ID_PROPERTY,
    RETRY_COUNT_PROPERTY,
    decoded_properties,
)

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.core.outcome import Outcome

logger = logging.getLogger("cancel_handler.servicebus.delayed_retry")

#: Backoff of the n-th delayed retry when Graph named no wait: 30 s, 60 s, 120 s, … (jittered).
DELAY_BASE_SECONDS = 30.0
#: No copy is scheduled sooner than this or later than the cap (a Retry-After is clamped to it).
DELAY_MIN_SECONDS = 1.0
DELAY_CAP_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Schedule:
    """Schedule a copy `delay_seconds` from now; the copy is delayed retry number `retry_count`."""

    delay_seconds: float
    retry_count: int


def plan(
    outcome: Outcome, *, retry_count: int, max_count: int, jitter: float = 1.0
) -> Schedule | Settlement | None:
    """What to do with a message the handler gave back: None (abandon as before, delayed retries
    off or not a give-back), a :class:`Schedule`, or a `RetriesExhausted` dead-letter.
    `jitter` in [0, 1] spreads backoffs of messages that failed together (not Retry-After)."""
    settlement = outcome.settlement
    if settlement.action is not Action.ABANDON or max_count <= 0:
        return None
    if retry_count >= max_count:
        description = (
            f"gave up after {retry_count} delayed retr{'y' if retry_count == 1 else 'ies'} "
            f"(DELAYED_RETRY_MAX_COUNT={max_count}); last error: {settlement.description}"
        )
        return Settlement(Action.DEADLETTER, Reason.RETRIES_EXHAUSTED, clip(description))
    if outcome.retry_after is not None:
        delay = outcome.retry_after
    else:
        delay = DELAY_BASE_SECONDS * 2**retry_count * (0.5 + max(0.0, min(1.0, jitter)) / 2)
    delay = max(DELAY_MIN_SECONDS, min(DELAY_CAP_SECONDS, delay))
    return Schedule(delay, retry_count + 1)


def build_copy(message: Any, body: bytes, schedule: Schedule, when: datetime) -> ServiceBusMessage:
    """The copy to schedule: same body, content type, correlation id, subject and application
    properties, plus the retry number and original id, under a new MessageId (the SDK gives
    every `ServiceBusMessage` built without one a fresh UUID)."""
    from azure.servicebus import ServiceBusMessage

    properties = decoded_properties(message.application_properties)
    original_id = properties.get(ORIGINAL_ID_PROPERTY) or _text(message.message_id)
    properties[RETRY_COUNT_PROPERTY] = schedule.retry_count
    properties[ORIGINAL_ID_PROPERTY] = original_id
    return ServiceBusMessage(
        body,
        application_properties=properties,
        content_type=_text(message.content_type),
        correlation_id=_text(message.correlation_id),
        subject=_text(message.subject),
        session_id=_text(message.session_id),
        scheduled_enqueue_time_utc=when,
    )


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RetrySender(Protocol):
    """The one method of `azure.servicebus.ServiceBusSender` used here."""

    def schedule_messages(
        self, messages: Sequence[ServiceBusMessage], schedule_time_utc: datetime
    ) -> list[int]: ...


class DelayedRetries:
    """Applies :func:`plan` to the handler's outcome and schedules copies through a sender made
    on first use by `sender_factory` (the sync SDK sender, called off the event loop)."""

    def __init__(
        self,
        max_count: int,
        sender_factory: Callable[[], RetrySender],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.max_count = max_count
        self._factory = sender_factory
        self._sender: RetrySender | None = None
        self._lock = threading.Lock()  # the sync sender is not thread-safe
        self._now = now
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def apply(
        self, message: Any, body: bytes, outcome: Outcome, retry_count: int
    ) -> Outcome:
        """The outcome to settle for a message that is delayed retry number `retry_count`:
        unchanged, a `RetriesExhausted` dead-letter, or a completion after a copy was scheduled;
        unchanged (abandon) when scheduling fails."""
        step = plan(
            outcome, retry_count=retry_count, max_count=self.max_count, jitter=self._rng.random()
        )
        if not isinstance(step, Schedule):
            return outcome if step is None else replace(outcome, settlement=step)
        when = self._now() + timedelta(seconds=step.delay_seconds)
        copy = build_copy(message, body, step, when)
        try:
            await asyncio.to_thread(self._schedule, copy, when)
        except Exception as exc:
            logger.warning(
                "delayed retry not scheduled (%s); giving the message back instead",
                type(exc).__name__,
                extra={"cancel_handler": {"error": type(exc).__name__}},
            )
            return outcome
        detail = (
            f"delayed retry {step.retry_count}/{self.max_count} scheduled for "
            f"{when.isoformat(timespec='seconds')} as message {copy.message_id}; "
            f"{outcome.settlement.description}"
        )
        return replace(
            outcome, settlement=Settlement(Action.COMPLETE, Reason.RETRY_SCHEDULED, clip(detail))
        )

    def _schedule(self, copy: ServiceBusMessage, when: datetime) -> None:
        with self._lock:
            if self._sender is None:
                self._sender = self._factory()
            self._sender.schedule_messages([copy], when)


def servicebus_sender_factory(
    namespace: str, queue_name: str, credential: Callable[[], Any]
) -> Callable[[], RetrySender]:
    """A factory of the real sender (sync SDK, AMQP over TLS), authenticated with
    `credential()`: the Function's identity needs *Azure Service Bus Data Sender* on the queue."""

    def make() -> RetrySender:
        from azure.servicebus import ServiceBusClient

        client = ServiceBusClient(namespace, credential())
        return client.get_queue_sender(queue_name)

    return make
