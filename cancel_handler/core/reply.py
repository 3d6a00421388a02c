"""The reply to a request that asked for one (Service Bus request/reply): pure, no I/O.

Which outcomes are answered, where a reply may go (`REPLY_TO_ALLOWED`), the reply's MessageId
(derived from the request's MessageId alone, so a redelivery's reply carries the same id) and the
reply itself: a CloudEvents 1.0 event in structured JSON whose `data` is published as JSON Schema
in `schema/cancel-outcome.v1.schema.json`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from cancel_handler.core.contract import utc_text
from cancel_handler.core.decision import Action, Reason, clip
from cancel_handler.core.outcome import Outcome, RangeReport
from cancel_handler.core.redaction import redact

#: CloudEvents `type` of every reply.
REPLY_EVENT_TYPE = "cancel-handler.outcome.v1"
#: Content type of a structured-mode CloudEvents message (CloudEvents JSON format, section 3).
REPLY_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
#: Namespace of the UUIDv5 reply MessageIds (fixed forever: changing it changes every reply id).
REPLY_ID_NAMESPACE = uuid.UUID("3b0f9d52-8a1e-5c57-9d0c-6f1e2a7b4c11")
#: A dead-letter description travels in the reply clipped to this many characters.
MAX_REPLY_DESCRIPTION = 1024


class ReplyOutcome(StrEnum):
    """The `outcome` of a reply (also its `subject`)."""

    CANCELLED = "cancelled"
    ALREADY_CANCELLED = "alreadyCancelled"
    DEAD_LETTERED = "deadLettered"
    FANNED_OUT = "fannedOut"
    PREVIEWED = "previewed"


#: Completions that are final, by the settlement reason that labels them. A completion not
#: listed here (a scheduled delayed retry) is still in progress and gets no reply. A completed
#: RangeTooLarge is a preview's: it answers what the real request would meet.
FINAL_COMPLETIONS: Mapping[Reason, ReplyOutcome] = {
    Reason.CANCELLED: ReplyOutcome.CANCELLED,
    Reason.ALREADY_CANCELLED: ReplyOutcome.ALREADY_CANCELLED,
    Reason.FANNED_OUT: ReplyOutcome.FANNED_OUT,
    Reason.PREVIEWED: ReplyOutcome.PREVIEWED,
    Reason.RANGE_TOO_LARGE: ReplyOutcome.PREVIEWED,
}


#: The outcomes whose reply lists the range's selection, children and skips.
RANGE_OUTCOMES = frozenset({ReplyOutcome.FANNED_OUT, ReplyOutcome.PREVIEWED})


def reply_outcome(outcome: Outcome) -> ReplyOutcome | None:
    """The reply's outcome for a final settlement; None for give-backs and scheduled retries."""
    settlement = outcome.settlement
    if settlement.action is Action.DEADLETTER:
        return ReplyOutcome.DEAD_LETTERED
    if settlement.action is Action.COMPLETE:
        return FINAL_COMPLETIONS.get(settlement.reason)
    return None


@dataclass(frozen=True, slots=True)
class Refused:
    """A `reply_to` the function must not answer to, and why (for the one warning line)."""

    why: str


def reply_destination(
    reply_to: str | None, allowed: Collection[str], cancel_queue: str
) -> str | Refused | None:
    """The entity to reply to (spelled as in `allowed`), :class:`Refused`, or None when the
    request asked for no reply. Service Bus entity names are compared case-insensitively."""
    if not reply_to:
        return None
    wanted = reply_to.strip().casefold()
    if cancel_queue and wanted == cancel_queue.casefold():
        return Refused("reply_to names the cancel queue itself")
    for entity in allowed:
        if entity.casefold() == wanted:
            return entity
    if not allowed:
        return Refused("replies are off (REPLY_TO_ALLOWED is empty)")
    return Refused("reply_to is not in REPLY_TO_ALLOWED")


def reply_message_id(request_message_id: str) -> str:
    """The reply's MessageId: a UUIDv5 of the delivered request's MessageId and nothing else,
    so every delivery of the same request is answered under the same id."""
    return str(uuid.uuid5(REPLY_ID_NAMESPACE, request_message_id))


def reply_source(queue_name: str) -> str:
    """CloudEvents `source`: this function and the queue it listens on."""
    return f"/cancel-handler/queues/{queue_name or 'unknown'}"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the reply needs from the request message's properties.

    `message_id` is the delivered message's MessageId (the reply id is derived from it);
    `original_message_id` the sender's id when the message is a copy this product made (delayed
    retry, resubmission); `parent_message_id` the range request a child was fanned out from."""

    message_id: str
    correlation_id: str | None = None
    reply_to_session_id: str | None = None
    original_message_id: str | None = None
    parent_message_id: str | None = None

    @property
    def request_message_id(self) -> str:
        """The MessageId the sender gave the request (the reply's CorrelationId)."""
        return self.original_message_id or self.message_id


def range_data(report: RangeReport) -> dict[str, Any]:
    """The reply `data` fields of a fanned-out or previewed range: the selected events (in
    start order, times in UTC), the child requests' MessageIds (none for a preview) and the
    listed events not selected, counted by why."""
    return {
        "events": [
            {
                "eventId": event.id,
                "start": utc_text(event.start),
                "end": utc_text(event.end),
                "type": event.type,
            }
            for event in report.selection.selected
        ],
        "childMessageIds": list(report.child_message_ids),
        "skipped": {
            str(cause): count for cause, count in report.selection.skipped.items() if count
        },
    }


class ReplyTarget(Protocol):
    """A validated request that can name its target for the reply (never the comment)."""

    def reply_target(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply message, ready to send to `entity`."""

    entity: str
    message_id: str
    correlation_id: str
    session_id: str | None
    subject: str
    application_properties: dict[str, str]
    content_type: str
    body: bytes

    def event(self) -> dict[str, Any]:
        """The CloudEvent in the body, decoded."""
        return json.loads(self.body)


def reply_data(outcome: Outcome, facts: RequestFacts, answer: ReplyOutcome) -> dict[str, Any]:
    """The CloudEvent's `data`: ids, outcome, reason, the dead-letter description (clipped),
    the request's target, Graph's status and request-id, attempts. Never the comment or a token."""
    settlement = outcome.settlement
    data: dict[str, Any] = {
        "requestMessageId": facts.request_message_id,
        "correlationId": facts.correlation_id,
        "outcome": answer.value,
        "reason": settlement.reason.value,
    }
    if answer is ReplyOutcome.DEAD_LETTERED:
        data["description"] = clip(redact(settlement.description), MAX_REPLY_DESCRIPTION)
    request: ReplyTarget | None = outcome.request
    if request is not None:
        data.update(request.reply_target())
    if outcome.event_id is not None:
        data["eventId"] = outcome.event_id  # an iCalUId request: the event the lookup found
    data["graphStatus"] = outcome.graph_status
    data["graphRequestId"] = outcome.request_id
    data["attempts"] = outcome.attempts
    if facts.parent_message_id:
        data["parentMessageId"] = facts.parent_message_id
    if outcome.range_report is not None and answer in RANGE_OUTCOMES:
        data.update(range_data(outcome.range_report))
    return {key: value for key, value in data.items() if value is not None}


def build_reply(
    outcome: Outcome,
    facts: RequestFacts,
    *,
    entity: str,
    source: str,
    now: datetime | None = None,
) -> Reply | None:
    """The reply to send to `entity` for a final `outcome`; None when the outcome is not final
    (given back, retry scheduled)."""
    answer = reply_outcome(outcome)
    if answer is None:
        return None
    message_id = reply_message_id(facts.message_id)
    when = (now or datetime.now(UTC)).astimezone(UTC)
    event = {
        "specversion": "1.0",
        "id": message_id,
        "source": source,
        "type": REPLY_EVENT_TYPE,
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subject": answer.value,
        "datacontenttype": "application/json",
        "data": reply_data(outcome, facts, answer),
    }
    return Reply(
        entity=entity,
        message_id=message_id,
        correlation_id=facts.request_message_id,
        session_id=facts.reply_to_session_id or None,
        subject=answer.value,
        application_properties={
            "outcome": answer.value,
            "reason": outcome.settlement.reason.value,
        },
        content_type=REPLY_CONTENT_TYPE,
        body=json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    )
