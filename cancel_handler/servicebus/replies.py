"""Send replies to the entity a request named in `reply_to`, with the SDK's `ServiceBusSender`
and the Function's managed identity (*Azure Service Bus Data Sender* on each reply entity)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.core.reply import (
    Refused,
    RequestFacts,
    build_reply,
    reply_destination,
    reply_outcome,
    reply_source,
)
from cancel_handler.servicebus.settle import log_field, log_safe
from cancel_handler.servicebus.tracecontext import trace_properties

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.core.outcome import Outcome
    from cancel_handler.core.reply import Reply
    from cancel_handler.servicebus.delivery import Delivery
    from cancel_handler.servicebus.senders import SenderPool

logger = logging.getLogger("cancel_handler.replies")

def request_facts(delivery: Delivery) -> RequestFacts | None:
    """The reply-relevant properties of a received request; None without a MessageId (a reply
    could then be neither correlated nor de-duplicated)."""
    if not delivery.message_id:
        return None
    # Markers only from a copy our tools made: a sender cannot redirect another's answer.
    return RequestFacts(
        message_id=delivery.message_id,
        correlation_id=delivery.correlation_id,
        reply_to_session_id=delivery.reply_to_session_id,
        original_message_id=delivery.markers.original_id,
        parent_message_id=delivery.markers.parent_id,
    )


def reply_message(reply: Reply) -> ServiceBusMessage:
    """The SDK message carrying `reply`."""
    from azure.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        reply.body,
        message_id=reply.message_id,
        correlation_id=reply.correlation_id,
        session_id=reply.session_id,
        subject=reply.subject,
        content_type=reply.content_type,
        application_properties=dict(reply.application_properties) | trace_properties(),
    )


class ReplySender(Protocol):
    """The one method of `azure.servicebus.ServiceBusSender` used for replies."""

    def send_messages(self, message: ServiceBusMessage) -> None: ...


class Replies:
    """Answers requests that asked for a reply, before they are settled, through `senders`
    (one sender per reply entity)."""

    def __init__(self, allowed: tuple[str, ...], cancel_queue: str, senders: SenderPool) -> None:
        self.allowed = allowed
        self._cancel_queue = cancel_queue
        self._source = reply_source(cancel_queue)
        self._senders = senders

    async def answer(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """Send the reply a final `outcome` owes the request, then return the outcome to
        settle: unchanged, or a give-back when the reply could not be sent (nothing is lost:
        the redelivery answers). A refused `reply_to` is logged once and changes nothing."""
        if reply_outcome(outcome) is None:
            return outcome
        reply_to = delivery.reply_to
        entity = reply_destination(reply_to, self.allowed, self._cancel_queue)
        if entity is None:
            return outcome
        facts = request_facts(delivery)
        if isinstance(entity, Refused) or facts is None:
            why = entity.why if isinstance(entity, Refused) else "the request has no MessageId"
            self._warn(why, delivery, reply_to or "")
            return outcome
        try:
            reply = build_reply(outcome, facts, entity=entity, source=self._source)
            if reply is None:
                return outcome
            await self.send(reply)
        except Exception as exc:  # Service Bus refused it, or a defect: nothing is lost either way
            self._warn(
                f"sending failed ({type(exc).__name__}); giving the request back",
                delivery,
                entity,
            )
            detail = (
                f"reply to {entity!r} not sent ({type(exc).__name__}) after it was decided: "
                f"{outcome.settlement.reason.value}"
            )
            return replace(
                outcome,
                settlement=Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, clip(detail)),
            )
        return outcome

    @staticmethod
    def _warn(detail: str, delivery: Delivery, reply_to: str) -> None:
        """One warning line: why no reply went out, the request's id and its reply_to."""
        fields = {
            "message_id": log_safe(delivery.message_id),
            "reply_to": log_safe(reply_to),
            "detail": detail,
        }
        logger.warning(
            "reply not sent: %s message_id=%s reply_to=%s",
            detail,
            log_field(fields["message_id"]),
            log_field(fields["reply_to"]),
            extra={"cancel_handler": fields},
        )

    async def send(self, reply: Reply) -> None:
        """Send `reply`; raises whatever the SDK raises when Service Bus refuses it."""
        message = reply_message(reply)
        await self._senders.use(reply.entity, lambda sender: sender.send_messages(message))


