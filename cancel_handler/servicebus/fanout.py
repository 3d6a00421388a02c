"""Fan a date range out: one child cancel request per selected event, sent to the cancel queue,
or, with CHILD_QUEUE_NAME, to the session-enabled children queue with one SessionId per organizer
(`sessions.child_session_id`), so that Service Bus keeps each organizer within Graph's
concurrent requests across every instance.

Each child is an ordinary version 1 request (`userPrincipalName`, the event's immutable
`eventId`, `comment`) whose MessageId is derived from the parent's and the event id, so a
redelivered parent sends the same ids and the queue's duplicate detection drops the repeats.
Children carry the parent's MessageId in `parentMessageId` (a marker sealed with the copy check,
see `messages`), its correlation id (or MessageId) as correlation id, and its `reply_to` and
`reply_to_session_id`, so each meeting's outcome is answered too. The parent is completed only
after every batch was sent; if a send fails, it is given back and its redelivery sends the same
children again.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.core.outcome import FanOutPlan, Outcome
from cancel_handler.servicebus.batches import fill_batches
from cancel_handler.servicebus.messages import PARENT_ID_PROPERTY, sealed
from cancel_handler.servicebus.sessions import child_session_id
from cancel_handler.servicebus.tracecontext import trace_properties

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.servicebus.delivery import Delivery
    from cancel_handler.servicebus.senders import SenderPool

logger = logging.getLogger("cancel_handler.servicebus.fanout")

#: Namespace of the child MessageIds (UUID version 5 of `parent id | event id`).
CHILD_ID_NAMESPACE = uuid.UUID("3b0c2f3e-8a8e-4f4f-9d0b-6f3f4e2a9c71")
CONTENT_TYPE = "application/json"
#: Event ids written into the text of a range's log line (all of them are in its fields).
MAX_IDS_LOGGED = 50


class MissingSenderError(RuntimeError):
    """Raised when a range has children to send but no sender can be made."""


def child_message_id(parent_id: str, event_id: str) -> str:
    """The child's MessageId: the same for the same parent and event, different otherwise."""
    return str(uuid.uuid5(CHILD_ID_NAMESPACE, f"{parent_id}|{event_id}"))


def build_child(
    parent: Delivery, parent_id: str, request: CancelRequest, session_id: str | None = None
) -> ServiceBusMessage:
    """The child message for one event (`request` names it by `event_id`), in session
    `session_id` when given."""
    from azure.servicebus import ServiceBusMessage

    assert request.event_id is not None
    body = json.dumps(request.to_json(), ensure_ascii=False).encode("utf-8")
    message_id = child_message_id(parent_id, request.event_id)
    return ServiceBusMessage(
        body,
        message_id=message_id,
        correlation_id=parent.correlation_id or parent_id,
        reply_to=parent.reply_to,
        reply_to_session_id=parent.reply_to_session_id,
        content_type=CONTENT_TYPE,
        session_id=session_id,
        application_properties=sealed(message_id, {PARENT_ID_PROPERTY: parent_id})
        | trace_properties(),
    )


class FanOutSender(Protocol):
    """The methods of `azure.servicebus.ServiceBusSender` used here."""

    def create_message_batch(self) -> Any: ...

    def send_messages(self, message: Any) -> None: ...


class FanOut:
    """Sends a :class:`FanOutPlan`'s children to the cancel queue `queue` through `senders`,
    or to the session-enabled `child_queue` when one is named, in the organizer's session
    `child_session_id(session_key, organizer)`. Without senders (no namespace
    configured) a range with children is given back; an empty one still completes."""

    def __init__(
        self,
        senders: SenderPool | None,
        queue: str,
        *,
        child_queue: str = "",
        session_key: str = "",
    ) -> None:
        self._senders = senders
        self._queue = child_queue or queue
        self._session_key = session_key if child_queue else None

    def _session(self, organizer: str) -> str | None:
        if self._session_key is None:
            return None
        return child_session_id(self._session_key, organizer)

    async def send(self, delivery: Delivery, plan: FanOutPlan) -> Outcome:
        """Send every child, then return the parent's `FannedOut` completion; return a
        give-back naming how far it got when any send fails (nothing is lost: the redelivery
        sends the same MessageIds)."""
        report = plan.outcome.range_report
        assert report is not None, "a fan-out plan carries its selection"
        # The id the request was first sent under: a sender cannot make its request's children
        # take another request's ids (`Delivery.request_message_id`).
        parent_id = delivery.request_message_id
        upn, comment = plan.request.user_principal_name, plan.request.comment
        session = self._session(upn)
        children = [
            build_child(
                delivery, parent_id, CancelRequest(upn, event_id=e.id, comment=comment), session
            )
            for e in report.selection.selected
        ]
        batches: list[list[str]] = []  # ids of each sent batch, so a failure knows how far it got
        try:
            if children:
                if self._senders is None:
                    raise MissingSenderError(
                        "no Service Bus sender: set "
                        "ServiceBusConnection__fullyQualifiedNamespace and CANCEL_QUEUE_NAME"
                    )
                await self._senders.use(
                    self._queue, lambda sender: _send_all(sender, children, batches)
                )
        except Exception as exc:
            sent = [message_id for batch in batches for message_id in batch]
            logger.warning(
                "fan-out stopped after %d of %d child request(s) (%s); giving the parent back",
                len(sent),
                len(children),
                type(exc).__name__,
                extra={"cancel_handler": {"error": type(exc).__name__, "sent": len(sent)}},
            )
            # Our own error says which settings are missing; the SDK's may name the namespace.
            cause = f": {exc}" if isinstance(exc, MissingSenderError) else ""
            detail = (
                f"sent {len(sent)} of {len(children)} child request(s), then sending failed "
                f"({type(exc).__name__}{cause}); a redelivery sends the same MessageIds"
            )
            settlement = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, clip(detail))
            return replace(
                plan.outcome,
                settlement=settlement,
                range_report=replace(
                    report, child_message_ids=tuple(sent), send_batches=len(batches)
                ),
            )
        detail = (
            f"sent {len(children)} child request(s) in {len(batches)} batch(es); skipped: "
            f"{report.selection.describe_skipped()}"
        )
        return replace(
            plan.outcome,
            settlement=Settlement(Action.COMPLETE, Reason.FANNED_OUT, clip(detail)),
            range_report=replace(
                report,
                child_message_ids=tuple(child.message_id for child in children),
                send_batches=len(batches),
            ),
        )


def _send_all(
    sender: FanOutSender, children: list[ServiceBusMessage], batches: list[list[str]]
) -> None:
    """Send `children` in as few batches as fit, appending each sent batch's MessageIds to
    `batches`."""
    for batch, members in fill_batches(children, lambda child: child, sender.create_message_batch):
        sender.send_messages(batch)
        batches.append([child.message_id for child in members])


def log_range(delivery: Delivery, outcome: Outcome) -> None:
    """One line for a date range's selection: counts by cause and the selected event ids (and
    child MessageIds once sent). No mailbox name, no comment."""
    report = outcome.range_report
    if report is None:
        return
    selection = report.selection
    fields = {
        "message_id": delivery.message_id,
        "reason": outcome.settlement.reason.value,
        "listed": selection.listed,
        "selected": len(selection.selected),
        "skipped": {cause.value: count for cause, count in selection.skipped.items()},
        "list_calls": report.list_calls,
        "event_ids": [event.id for event in selection.selected],
        "child_message_ids": list(report.child_message_ids),
    }
    ids = fields["event_ids"]
    shown = ",".join(ids[:MAX_IDS_LOGGED]) + (
        f",…+{len(ids) - MAX_IDS_LOGGED}" if len(ids) > MAX_IDS_LOGGED else ""
    )
    logger.info(
        "range %s listed=%d selected=%d skipped=%s list_calls=%d children=%d events=%s",
        fields["reason"],
        selection.listed,
        len(selection.selected),
        selection.describe_skipped(),
        report.list_calls,
        len(report.child_message_ids),
        shown or "-",
        extra={"cancel_handler": fields},
    )
