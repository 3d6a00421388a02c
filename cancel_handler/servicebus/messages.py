"""Facts read off received Service Bus messages, shared by the function and the operator tools:
the body as bytes, application properties decoded, and the properties this product sets on the
copies it sends (delayed retries, resubmissions)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

#: Delayed-retry number of a scheduled copy (absent on an original).
RETRY_COUNT_PROPERTY = "cancelHandlerRetryCount"
#: MessageId of the first message of a chain of copies.
ORIGINAL_ID_PROPERTY = "originalMessageId"
#: How often operators resubmitted the request from the dead-letter queue.
RESUBMIT_COUNT_PROPERTY = "resubmitCount"
#: The dead-letter reason of the message a resubmitted copy was made from.
RESUBMITTED_FROM_PROPERTY = "resubmittedFromReason"
#: Dead-letter reasons after which an earlier attempt may have cancelled the event.
OUTCOME_MAY_BE_UNKNOWN = frozenset(
    {"MaxDeliveryCountExceeded", "RetriesExhausted", "DeliveriesExhausted"}
)


def message_body(message: Any) -> bytes:
    """The body as bytes (the SDK yields AMQP data as a generator of chunks); ValueError when
    the body is not AMQP data."""
    body = message.body
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


def read_retry_count(message: Any) -> int:
    """The message's delayed-retry number (0 for an original or an unreadable value)."""
    value = decoded_properties(getattr(message, "application_properties", None)).get(
        RETRY_COUNT_PROPERTY
    )
    if isinstance(value, str):
        value = int(value) if value.strip().isdigit() else 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def resubmitted_after_unknown_outcome(message: Any) -> bool:
    """True for an operator's resubmission of a message dead-lettered after attempts whose
    outcome may be unknown (delivery count or delayed retries exhausted)."""
    properties = decoded_properties(getattr(message, "application_properties", None))
    return properties.get(RESUBMITTED_FROM_PROPERTY) in OUTCOME_MAY_BE_UNKNOWN
