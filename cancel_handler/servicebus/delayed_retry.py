"""Delayed retries: when Graph asks for a longer wait than the invocation may spend (or the
in-process budget is spent), schedule a copy of the message for later instead of burning a
delivery, then complete the original.

Order matters: the copy is scheduled first and the original completed only after that succeeded;
if scheduling fails the original is abandoned (given back), so the request is never lost. The copy
gets a new MessageId (duplicate detection silently drops a repeated one) and carries the original's
id in `originalMessageId`, its retry number in `cancelHandlerRetryCount` and the copy check that
lets the function trust both (see `servicebus/messages.py`).
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from cancel_handler.core.backoff import DELAYED, RetryPolicy
from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.servicebus.messages import (
    ORIGINAL_ID_PROPERTY,
    RETRY_COUNT_PROPERTY,
    kept_fields,
    sealed,
)
from cancel_handler.servicebus.tracecontext import trace_properties

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.core.outcome import Outcome
    from cancel_handler.servicebus.delivery import Delivery
    from cancel_handler.servicebus.senders import SenderPool

logger = logging.getLogger("cancel_handler.servicebus.delayed_retry")



@dataclass(frozen=True, slots=True)
class Schedule:
    """Schedule a copy `delay_seconds` from now; the copy is delayed retry number `retry_count`."""

    delay_seconds: float
    retry_count: int


def plan(
    outcome: Outcome,
    *,
    retry_count: int,
    max_count: int,
    jitter: float = 1.0,
    policy: RetryPolicy = DELAYED,
) -> Schedule | Settlement | None:
    """What to do with a message the handler gave back: None (abandon as before, delayed retries
    off or not a give-back), a :class:`Schedule`, or a `RetriesExhausted` dead-letter. The delay
    is Graph's Retry-After, or `policy`'s backoff (`jitter` in [0, 1]), within its bounds."""
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
        delay = policy.clamp(outcome.retry_after)
    else:
        delay = policy.backoff(retry_count + 1, jitter)
    return Schedule(delay, retry_count + 1)


def build_copy(delivery: Delivery, schedule: Schedule, when: datetime) -> ServiceBusMessage:
    """The copy to schedule: same body, content type, correlation id, subject, reply address
    (`reply_to`, `reply_to_session_id`: the copy owes the sender its answer) and application
    properties (markers only if ours), plus the retry number, original id and copy check, under a
    new MessageId."""
    from azure.servicebus import ServiceBusMessage

    properties = delivery.carried_properties()
    original_id = properties.get(ORIGINAL_ID_PROPERTY) or delivery.message_id
    properties[RETRY_COUNT_PROPERTY] = schedule.retry_count
    properties[ORIGINAL_ID_PROPERTY] = original_id
    message_id = str(uuid.uuid4())
    return ServiceBusMessage(
        delivery.body or b"",
        # With telemetry on, the copy continues this delivery's trace, not the sender's.
        application_properties=sealed(message_id, properties) | trace_properties(),
        session_id=delivery.session_id,
        message_id=message_id,
        scheduled_enqueue_time_utc=when,
        **kept_fields(delivery),
    )


class RetrySender(Protocol):
    """The one method of `azure.servicebus.ServiceBusSender` used here."""

    def schedule_messages(
        self, messages: Sequence[ServiceBusMessage], schedule_time_utc: datetime
    ) -> list[int]: ...


class DelayedRetries:
    """Applies :func:`plan` to the handler's outcome and schedules copies on the cancel queue
    `queue` through `senders`."""

    def __init__(
        self,
        max_count: int,
        senders: SenderPool,
        queue: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.max_count = max_count
        self._senders = senders
        self._queue = queue
        self._now = now
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    async def apply(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """The outcome to settle for a delivery (delayed retry number
        `delivery.markers.retry_count`): unchanged, a `RetriesExhausted` dead-letter, or a
        completion after a copy was scheduled; unchanged (abandon) when scheduling fails."""
        step = plan(
            outcome,
            retry_count=delivery.markers.retry_count,
            max_count=self.max_count,
            jitter=self._rng.random(),
        )
        if not isinstance(step, Schedule):
            return outcome if step is None else replace(outcome, settlement=step)
        when = self._now() + timedelta(seconds=step.delay_seconds)
        copy = build_copy(delivery, step, when)
        try:
            await self._senders.use(
                self._queue, lambda sender: sender.schedule_messages([copy], when)
            )
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
        return outcome.settled(Action.COMPLETE, Reason.RETRY_SCHEDULED, detail)

