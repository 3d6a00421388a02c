"""Send replies to the entity a request named in `reply_to`, with the SDK's `ServiceBusSender`
and the Function's managed identity (*Azure Service Bus Data Sender* on each reply entity)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.core.reply import (
    Refused,
    RequestFacts,
    build_reply,
    reply_destination,
    reply_outcome,
    reply_source,
)
from cancel_handler.servicebus.messages import read_markers
from cancel_handler.servicebus.settle import log_field, log_safe

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.core.outcome import Outcome
    from cancel_handler.core.reply import Reply

logger = logging.getLogger("cancel_handler.replies")

def request_facts(message: Any) -> RequestFacts | None:
    """The reply-relevant properties of a received request; None without a MessageId (a reply
    could then be neither correlated nor de-duplicated)."""
    message_id = _text(message.message_id)
    if not message_id:
        return None
    # Only from a copy our tools made: a sender cannot redirect another request's answer.
    markers = read_markers(message)
    return RequestFacts(
        message_id=message_id,
        correlation_id=_text(message.correlation_id),
        reply_to_session_id=_text(message.reply_to_session_id),
        original_message_id=markers.original_id,
        parent_message_id=markers.parent_id,
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
        application_properties=dict(reply.application_properties),
    )


class ReplySender(Protocol):
    """The one method of `azure.servicebus.ServiceBusSender` used for replies."""

    def send_messages(self, message: ServiceBusMessage) -> None: ...


class Replies:
    """Answers requests that asked for a reply, before they are settled. Sends through one sync
    SDK sender per reply entity, made on first use by `sender_for(entity)` and called off the
    event loop."""

    def __init__(
        self,
        allowed: tuple[str, ...],
        cancel_queue: str,
        sender_for: Callable[[str], ReplySender],
    ) -> None:
        self.allowed = allowed
        self._cancel_queue = cancel_queue
        self._source = reply_source(cancel_queue)
        self._sender_for = sender_for
        self._senders: dict[str, ReplySender] = {}
        self._lock = threading.Lock()  # the sync senders are not thread-safe

    async def answer(self, message: Any, outcome: Outcome) -> Outcome:
        """Send the reply a final `outcome` owes the request, then return the outcome to
        settle: unchanged, or a give-back when the reply could not be sent (nothing is lost:
        the redelivery answers). A refused `reply_to` is logged once and changes nothing."""
        if reply_outcome(outcome) is None:
            return outcome
        reply_to = _text(getattr(message, "reply_to", None))
        entity = reply_destination(reply_to, self.allowed, self._cancel_queue)
        if entity is None:
            return outcome
        facts = request_facts(message)
        if isinstance(entity, Refused) or facts is None:
            why = entity.why if isinstance(entity, Refused) else "the request has no MessageId"
            self._warn(why, message, reply_to)
            return outcome
        try:
            reply = build_reply(outcome, facts, entity=entity, source=self._source)
            if reply is None:
                return outcome
            await self.send(reply)
        except Exception as exc:  # Service Bus refused it, or a defect: nothing is lost either way
            self._warn(
                f"sending failed ({type(exc).__name__}); giving the request back",
                message,
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
    def _warn(detail: str, message: Any, reply_to: str) -> None:
        """One warning line: why no reply went out, the request's id and its reply_to."""
        fields = {
            "message_id": log_safe(message.message_id),
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
        await asyncio.to_thread(self._send, reply)

    def _send(self, reply: Reply) -> None:
        message = reply_message(reply)
        with self._lock:
            sender = self._senders.get(reply.entity)
            if sender is None:
                sender = self._senders[reply.entity] = self._sender_for(reply.entity)
            sender.send_messages(message)


def servicebus_reply_senders(
    namespace: str, credential: Callable[[], Any]
) -> Callable[[str], ReplySender]:
    """Senders of the real SDK (AMQP over TLS) on one client authenticated with `credential()`.

    `get_queue_sender` serves topics as well: the SDK's sender addresses `amqps://<namespace>/
    <entity name>` whether it was made for a queue or a topic (azure-servicebus
    `ServiceBusSender.__init__`), so a `reply_to` may name either."""
    client: list[Any] = []

    def sender_for(entity: str) -> ReplySender:
        from azure.servicebus import ServiceBusClient

        if not client:
            client.append(ServiceBusClient(namespace, credential()))
        return client[0].get_queue_sender(entity)

    return sender_for


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None

