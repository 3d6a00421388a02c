"""The way one message goes, in order, in one place:

    read once → handle → fan out → delayed retry → last delivery → reply → settle

Each stage takes the :class:`Delivery` read off the message and the outcome so far, and
returns the outcome to go on with; only the first and the last touch the SDK's message.
`cancel_handler.telemetry.pipeline.TracedPipeline` wraps the same stages in spans.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.deliveries import on_last_delivery
from cancel_handler.core.outcome import FanOutPlan, Outcome
from cancel_handler.handler import CancelHandler
from cancel_handler.servicebus.delayed_retry import DelayedRetries
from cancel_handler.servicebus.delivery import Delivery, delivery_of
from cancel_handler.servicebus.fanout import FanOut, log_range
from cancel_handler.servicebus.replies import Replies
from cancel_handler.servicebus.settle import MessageActions, log_safe, settle

logger = logging.getLogger("cancel_handler")


@dataclass
class Pipeline:
    """Processes one message end to end with the adapters the composition root built."""

    handler: CancelHandler
    fan_out: FanOut
    delayed_retries: DelayedRetries | None
    replies: Replies
    #: The queue's maxDeliveryCount (MAX_DELIVERY_COUNT); 0 turns the last-delivery rule off.
    max_delivery_count: int

    async def process(self, message: Any, actions: MessageActions) -> Outcome:
        """Decide, answer and settle one `ServiceBusReceivedMessage`: exactly one settlement
        call, after the reply when the request asked for one. Raises only when settling failed
        (the host then redelivers), or when the invocation was cancelled, after giving the
        message back."""
        return await self.run(message, actions, delivery_of(message))

    async def run(self, message: Any, actions: MessageActions, delivery: Delivery) -> Outcome:
        """Every stage after reading the message, the settlement included."""
        try:
            outcome = await self.decide(delivery)
        except asyncio.CancelledError:
            await self.settle(
                message, actions, delivery, given_back("invocation cancelled (shutdown)")
            )
            raise
        await self.settle(message, actions, delivery, outcome)
        return outcome

    async def decide(self, delivery: Delivery) -> Outcome:
        """Every stage before the settlement, in order. A defect in the first three gives the
        message back (Service Bus dead-letters it after MaxDeliveryCount) rather than fail
        without settling."""
        try:
            decided = await self.handle(delivery)
            outcome = await self.send_children(delivery, decided)
            outcome = await self.delay_retry(delivery, outcome)
        except Exception as exc:
            outcome = _defect(delivery, exc)
        outcome = self.last_delivery(delivery, outcome)
        return await self.reply(delivery, outcome)

    async def handle(self, delivery: Delivery) -> Outcome | FanOutPlan:
        """The cancel path: validate the body, find the event(s), call Graph, decide."""
        if delivery.body is None:
            problem = delivery.body_problem or "no body"
            return Outcome(Settlement(Action.DEADLETTER, Reason.INVALID_MESSAGE, problem))
        if delivery.markers.ignored:
            logger.warning(
                "message %s carries %s, reserved for the copies cancel-handler's tools make, "
                "but not as they set them; ignored (see docs/integrate.md)",
                log_safe(delivery.message_id),
                ", ".join(delivery.markers.ignored),
            )
        return await self.handler.handle(
            delivery.body,
            delivery_count=delivery.delivery_count,
            may_be_cancelled_already=delivery.markers.may_be_cancelled_already,
        )

    async def send_children(self, delivery: Delivery, decided: Outcome | FanOutPlan) -> Outcome:
        """A date range to cancel: send one child request per meeting; log every range."""
        outcome = (
            await self.fan_out.send(delivery, decided)
            if isinstance(decided, FanOutPlan)
            else decided
        )
        log_range(delivery, outcome)
        return outcome

    async def delay_retry(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """A give-back, when delayed retries are on: schedule a copy and complete instead."""
        if self.delayed_retries is None:
            return outcome
        return await self.delayed_retries.apply(delivery, outcome)

    def last_delivery(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """A give-back on the queue's last delivery: dead-letter DeliveriesExhausted instead."""
        return on_last_delivery(
            outcome,
            delivery_count=delivery.delivery_count,
            max_delivery_count=self.max_delivery_count,
        )

    async def reply(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """Answer the sender when it asked; a reply that could not be sent gives the request
        back, and on the queue's last delivery ends it as DeliveriesExhausted naming what was
        decided (answered once more with that, in case Service Bus now takes a reply)."""
        answered = await self.replies.answer(delivery, outcome)
        final = self.last_delivery(delivery, answered)
        if final is not answered:
            await self.replies.answer(delivery, final)
        return final

    async def settle(
        self, message: Any, actions: MessageActions, delivery: Delivery, outcome: Outcome
    ) -> None:
        """Complete, dead-letter or abandon the message as `outcome` says, and log it."""
        await settle(message, actions, delivery, outcome)


def given_back(detail: str) -> Outcome:
    """A give-back for a reason of the function's own (not Graph's)."""
    return Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, detail))


def _defect(delivery: Delivery, exc: Exception) -> Outcome:
    # Type and stack frames only: an exception's text may hold a URL and so a UPN.
    logger.error(
        "unexpected %s while processing message %s; giving it back\n%s",
        type(exc).__name__,
        log_safe(delivery.message_id),
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )
    return given_back(f"unexpected error: {type(exc).__name__}")
