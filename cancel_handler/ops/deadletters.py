"""Read the dead-letter queue without touching it: peek (never receive), page by sequence number,
filter by reason and enqueued time, and describe each message with its request fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cancel_handler.core.decision import DEADLETTER_REASONS
from cancel_handler.servicebus.messages import decoded_properties
from cancel_handler.servicebus.messages import message_body as received_body

#: Reasons Service Bus itself gives when it dead-letters a message.
SERVICE_BUS_REASONS = ("MaxDeliveryCountExceeded", "TTLExpiredException")
#: Every reason `--reason` accepts: the function's vocabulary, then Service Bus's.
KNOWN_REASONS = (*sorted(reason.value for reason in DEADLETTER_REASONS), *SERVICE_BUS_REASONS)
#: Application properties Service Bus adds when dead-lettering (dropped on resubmit).
DEADLETTER_PROPERTY_PREFIX = "DeadLetter"
PEEK_PAGE_SIZE = 100


#: The request's fields a dead letter shows, by the contract's names.
_REQUEST_FIELDS = {
    "user_principal_name": "userPrincipalName",
    "event_id": "eventId",
    "comment": "comment",
    "ical_uid": "iCalUId",
    "start_date_time": "startDateTime",
    "end_date_time": "endDateTime",
}


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as the operator sees it."""

    sequence_number: int
    message_id: str | None
    correlation_id: str | None
    enqueued_time: datetime | None
    delivery_count: int | None
    reason: str | None
    description: str | None
    user_principal_name: str | None = None
    event_id: str | None = None
    comment: str | None = None
    ical_uid: str | None = None
    start_date_time: str | None = None
    end_date_time: str | None = None
    application_properties: dict[str, Any] = field(default_factory=dict)
    body_text: str = ""

    @classmethod
    def from_message(cls, message: Any) -> DeadLetter:
        """Describe a peeked or received `ServiceBusReceivedMessage` (any body is accepted)."""
        body = message_body(message)
        fields = _request_fields(body)
        return cls(
            sequence_number=message.sequence_number,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            enqueued_time=message.enqueued_time_utc,
            delivery_count=message.delivery_count,
            reason=message.dead_letter_reason,
            description=message.dead_letter_error_description,
            application_properties=decoded_properties(message.application_properties),
            body_text=body.decode("utf-8", "replace"),
            **{name: fields.get(key) for name, key in _REQUEST_FIELDS.items()},
        )

    @property
    def target(self) -> str | None:
        """What the request named: its eventId, `iCalUId <uid>`, or `<start>/<end>` for a range."""
        if self.event_id is not None:
            return self.event_id
        if self.ical_uid is not None:
            return f"iCalUId {self.ical_uid}"
        if self.start_date_time is not None or self.end_date_time is not None:
            return f"{self.start_date_time or '?'}/{self.end_date_time or '?'}"
        return None

    def to_json(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready fields; `detail` adds the comment, application properties and body."""
        data: dict[str, Any] = {
            "sequenceNumber": self.sequence_number,
            "messageId": self.message_id,
            "correlationId": self.correlation_id,
            "enqueuedTime": self.enqueued_time.isoformat() if self.enqueued_time else None,
            "deliveryCount": self.delivery_count,
            "deadLetterReason": self.reason,
            "deadLetterErrorDescription": self.description,
            "userPrincipalName": self.user_principal_name,
            "eventId": self.event_id,
        }
        for name, value in (
            ("iCalUId", self.ical_uid),
            ("startDateTime", self.start_date_time),
            ("endDateTime", self.end_date_time),
        ):
            if value is not None:
                data[name] = value
        if detail:
            data["comment"] = self.comment
            data["applicationProperties"] = {
                k: v if isinstance(v, str | int | float | bool) or v is None else repr(v)
                for k, v in self.application_properties.items()
            }
            data["body"] = self.body_text
        return data


@dataclass(frozen=True)
class Selection:
    """Which dead-lettered messages to act on; empty parts match everything. `since` is
    inclusive, `until` exclusive (enqueued time, UTC)."""

    reasons: frozenset[str] = frozenset()
    sequence_numbers: frozenset[int] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reasons) - set(KNOWN_REASONS))
        if unknown:
            raise ValueError(f"unknown reason(s) {', '.join(unknown)}; known: {KNOWN_REASONS}")

    def matches(self, letter: DeadLetter) -> bool:
        """True when `letter` passes every filter."""
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.sequence_numbers and letter.sequence_number not in self.sequence_numbers:
            return False
        when = letter.enqueued_time
        if self.since is not None and (when is None or when < self.since):
            return False
        return not (self.until is not None and (when is None or when >= self.until))


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def peek_dead_letters(
    client: Any,
    queue_name: str,
    selection: Selection | None = None,
    *,
    limit: int | None = None,
    page_size: int = PEEK_PAGE_SIZE,
) -> Iterator[DeadLetter]:
    """Yield matching dead-lettered messages in sequence-number order, paging with peek until
    the queue is exhausted or `limit` matches were yielded. Nothing is locked or removed."""
    from azure.servicebus import ServiceBusSubQueue

    selection = selection or Selection()
    if limit is not None and limit <= 0:
        return
    found = 0
    receiver = client.get_queue_receiver(queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    with receiver:
        next_sequence = min(selection.sequence_numbers, default=0)
        while True:
            page = receiver.peek_messages(page_size, sequence_number=next_sequence)
            if not page:
                return
            for message in sorted(page, key=lambda m: m.sequence_number):
                letter = DeadLetter.from_message(message)
                if selection.matches(letter):
                    yield letter
                    found += 1
                    if limit is not None and found >= limit:
                        return
            next_sequence = max(m.sequence_number for m in page) + 1
            if selection.sequence_numbers and next_sequence > max(selection.sequence_numbers):
                return


def peek_one(client: Any, queue_name: str, sequence_number: int) -> DeadLetter | None:
    """The dead-lettered message with this sequence number, or None."""
    from azure.servicebus import ServiceBusSubQueue

    receiver = client.get_queue_receiver(queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER)
    with receiver:
        page = receiver.peek_messages(1, sequence_number=sequence_number)
    # Peek returns the next message at or after the number: check it is this one.
    if page and page[0].sequence_number == sequence_number:
        return DeadLetter.from_message(page[0])
    return None


def message_body(message: Any) -> bytes:
    """The body as bytes; a non-data body is shown as its repr rather than hidden."""
    try:
        return received_body(message)
    except ValueError:
        return repr(message.body).encode("utf-8")


def _request_fields(body: bytes) -> dict[str, str]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    names = ("userPrincipalName", "eventId", "iCalUId", "startDateTime", "endDateTime", "comment")
    return {k: document[k] for k in names if isinstance(document.get(k), str)}
