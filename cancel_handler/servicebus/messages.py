"""Facts read off received Service Bus messages, shared by the function and the operator tools:
the body as bytes, application properties decoded, and the markers this product sets on the
copies it sends (delayed retries, resubmissions) and on a date range's child requests.

A marker changes how the function reads Graph's 404 (an earlier attempt may have cancelled the
event), so it is honoured only on a copy our tools made: they add `cancelHandlerCopyCheck`, a
digest of the copy's MessageId and marker values. A sender who sets a marker, or copies the
properties of one of our copies onto another message, does not match it; the markers are then
ignored (and not carried into later copies). The digest has no secret: it keeps markers from
being set by accident or carried along with other properties, not from a sender who reproduces
this code on purpose, who could send any cancel request anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

#: Delayed-retry number of a scheduled copy (absent on an original).
RETRY_COUNT_PROPERTY = "cancelHandlerRetryCount"
#: MessageId of the first message of a chain of copies.
ORIGINAL_ID_PROPERTY = "originalMessageId"
#: How often operators resubmitted the request from the dead-letter queue.
RESUBMIT_COUNT_PROPERTY = "resubmitCount"
#: The dead-letter reason of the message a resubmitted copy was made from.
RESUBMITTED_FROM_PROPERTY = "resubmittedFromReason"
#: On a date range's child request: the MessageId of the range request it was fanned out from.
PARENT_ID_PROPERTY = "parentMessageId"
#: Ties a copy's markers to its MessageId; set only by this product's tools.
COPY_CHECK_PROPERTY = "cancelHandlerCopyCheck"
#: The markers, in the order the check digests them.
MARKER_PROPERTIES = (
    RETRY_COUNT_PROPERTY,
    ORIGINAL_ID_PROPERTY,
    RESUBMIT_COUNT_PROPERTY,
    RESUBMITTED_FROM_PROPERTY,
    PARENT_ID_PROPERTY,
)
#: Application properties senders must not set (documented in docs/integrate.md).
RESERVED_PROPERTIES = (*MARKER_PROPERTIES, COPY_CHECK_PROPERTY)
#: Dead-letter reasons after which an earlier attempt may have cancelled the event.
OUTCOME_MAY_BE_UNKNOWN = frozenset(
    {"MaxDeliveryCountExceeded", "RetriesExhausted", "DeliveriesExhausted"}
)
#: The fields every copy this product makes of a message keeps as they are: the sender's
#: correlation, the body's content type, the subject and the reply address (the copy owes the
#: sender its answer).
KEPT_FIELDS = ("correlation_id", "content_type", "subject", "reply_to", "reply_to_session_id")


@dataclass(frozen=True, slots=True)
class CopyMarkers:
    """The markers of a received message as the function may use them: all empty unless the
    message is a copy our tools made. `ignored` names reserved properties present but not
    honoured (set by a sender, or changed since our tools made the copy)."""

    retry_count: int = 0
    resubmitted_from: str | None = None
    #: MessageId of the first message of the chain of copies this one belongs to.
    original_id: str | None = None
    #: A date range's child request: the MessageId of the range request it was fanned out from.
    parent_id: str | None = None
    ignored: tuple[str, ...] = ()

    @property
    def after_earlier_attempt(self) -> bool:
        """True for a copy sent after attempts whose outcome may be unknown: a delayed retry, or
        a resubmission of a message whose retries ran out."""
        return self.retry_count > 0 or self.resubmitted_from in OUTCOME_MAY_BE_UNKNOWN

    @property
    def may_be_cancelled_already(self) -> bool:
        """True when Graph's 404 most likely means the event was cancelled already: after an
        earlier attempt, or on a range's child (its event was listed moments before, so a
        duplicate child or the organizer got there first)."""
        return self.after_earlier_attempt or self.parent_id is not None


def message_body(message: Any) -> bytes:
    """The body as bytes (the SDK yields AMQP data as a generator of chunks); ValueError when
    the body is not AMQP data."""
    body = getattr(message, "body", None)
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    try:
        chunks = list(body)
    except TypeError:
        raise ValueError("message body must be AMQP data (bytes) holding UTF-8 JSON") from None
    if not all(isinstance(chunk, bytes | bytearray) for chunk in chunks):
        raise ValueError("message body must be AMQP data (bytes) holding UTF-8 JSON")
    return b"".join(chunks)


def as_text(value: Any) -> str | None:
    """A message property or id as text: UTF-8 bytes decoded (bad bytes as U+FFFD), a uuid or
    number written out as the .NET SDK renders it; None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def decoded_properties(properties: dict | None) -> dict[str, Any]:
    """Application properties with bytes keys and UTF-8 bytes values decoded to str."""
    decoded: dict[str, Any] = {}
    for key, value in (properties or {}).items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if isinstance(value, bytes):
            with suppress(UnicodeDecodeError):
                value = value.decode("utf-8")
        decoded[name] = value
    return decoded


def copy_check(message_id: str | None, properties: Mapping[str, Any]) -> str:
    """The `cancelHandlerCopyCheck` value for a copy with this MessageId and these markers."""
    values = [as_text(properties.get(name)) for name in MARKER_PROPERTIES]
    canonical = json.dumps(["cancel-handler copy v1", message_id, *values])
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def sealed(message_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    """`properties` of a copy our tools send as `message_id`, with its copy check added."""
    return {**properties, COPY_CHECK_PROPERTY: copy_check(message_id, properties)}


def read_markers(message: Any) -> CopyMarkers:
    """The markers the function may honour on a received `message` (see the module docs)."""
    properties = decoded_properties(getattr(message, "application_properties", None))
    return markers_of(as_text(getattr(message, "message_id", None)), properties)


def markers_of(message_id: str | None, properties: Mapping[str, Any]) -> CopyMarkers:
    """The markers the function may honour on a message with this MessageId and these decoded
    application properties (see the module docs)."""
    present = tuple(name for name in RESERVED_PROPERTIES if name in properties)
    if not present:
        return CopyMarkers()
    if properties.get(COPY_CHECK_PROPERTY) != copy_check(message_id, properties):
        return CopyMarkers(ignored=present)
    reason = properties.get(RESUBMITTED_FROM_PROPERTY)
    return CopyMarkers(
        retry_count=_count(properties.get(RETRY_COUNT_PROPERTY)),
        resubmitted_from=reason if isinstance(reason, str) else None,
        original_id=as_text(properties.get(ORIGINAL_ID_PROPERTY)),
        parent_id=as_text(properties.get(PARENT_ID_PROPERTY)),
    )


def kept_fields(message: Any) -> dict[str, Any]:
    """The :data:`KEPT_FIELDS` of `message` (received, sent, or a `Delivery`), as keyword
    arguments for the `ServiceBusMessage` that copies it."""
    return {name: getattr(message, name) for name in KEPT_FIELDS}


def carried_properties(message: Any) -> dict[str, Any]:
    """The application properties a copy of `message` starts from: the sender's own, plus our
    markers only when `message` carries them as our tools set them (without the old check)."""
    properties = decoded_properties(getattr(message, "application_properties", None))
    carried = {k: v for k, v in properties.items() if k not in RESERVED_PROPERTIES}
    if not read_markers(message).ignored:
        carried |= {k: properties[k] for k in MARKER_PROPERTIES if k in properties}
    return carried


def _count(value: Any) -> int:
    """A non-negative count from an int or a digit string; 0 for anything else."""
    if isinstance(value, str):
        value = int(value) if value.strip().isdigit() and len(value) < 10 else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


