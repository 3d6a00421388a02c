"""One received message, read once: the frozen value every stage of the pipeline takes.

The SDK's `ServiceBusReceivedMessage` is translated at the edge (`delivery_of`), so that no stage
sees the SDK type, decodes properties or checks the copy markers again. Ids and addresses are
text: AMQP may carry them as UTF-8 bytes (decoded, bad bytes as U+FFFD) or, from non-.NET
senders, as a uuid or an integer (written as text, as the .NET SDK renders them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cancel_handler.servicebus.messages import (
    MARKER_PROPERTIES,
    RESERVED_PROPERTIES,
    CopyMarkers,
    as_text,
    decoded_properties,
    markers_of,
    message_body,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the function reads off one delivery of a message."""

    #: The body; None when it is not AMQP data (`body_problem` says why).
    body: bytes | None
    message_id: str | None = None
    correlation_id: str | None = None
    content_type: str | None = None
    subject: str | None = None
    session_id: str | None = None
    reply_to: str | None = None
    reply_to_session_id: str | None = None
    #: 1 on a first delivery; None when the host did not say.
    delivery_count: int | None = None
    #: Application properties, names and UTF-8 values decoded.
    properties: Mapping[str, Any] = field(default_factory=dict)
    markers: CopyMarkers = field(default_factory=CopyMarkers)
    body_problem: str | None = None

    @property
    def request_message_id(self) -> str:
        """The MessageId the request was first sent under: the verified `originalMessageId` of
        a copy our tools made, else this message's own MessageId (never another request's)."""
        return self.markers.original_id or self.message_id or ""

    def carried_properties(self) -> dict[str, Any]:
        """The application properties a copy of this message starts from: the sender's own,
        plus our markers only when this message carries them as our tools set them."""
        carried = {k: v for k, v in self.properties.items() if k not in RESERVED_PROPERTIES}
        if not self.markers.ignored:
            carried |= {k: self.properties[k] for k in MARKER_PROPERTIES if k in self.properties}
        return carried


def delivery_of(message: Any) -> Delivery:
    """Read a received message (the SDK's, or anything with its attributes) once."""
    try:
        body, problem = message_body(message), None
    except ValueError as exc:
        body, problem = None, str(exc)
    raw = getattr(message, "application_properties", None)
    properties = decoded_properties(raw) if isinstance(raw, Mapping) else {}
    message_id = as_text(getattr(message, "message_id", None))
    count = getattr(message, "delivery_count", None)
    return Delivery(
        body=body,
        message_id=message_id,
        correlation_id=as_text(getattr(message, "correlation_id", None)),
        content_type=as_text(getattr(message, "content_type", None)),
        subject=as_text(getattr(message, "subject", None)),
        session_id=as_text(getattr(message, "session_id", None)),
        reply_to=as_text(getattr(message, "reply_to", None)),
        reply_to_session_id=as_text(getattr(message, "reply_to_session_id", None)),
        delivery_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        properties=properties,
        markers=markers_of(message_id, properties),
        body_problem=problem,
    )
