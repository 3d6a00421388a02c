"""A Service Bus message as the Functions host hands it to the Python worker, and as the binding
extension decodes it there.

The host (the Service Bus extension's
`ServiceBusExtensionConfigProvider.ConvertReceivedMessageToBindingData`, Azure/azure-sdk-for-net)
sends model binding data with source `AzureServiceBusReceivedMessage`
and content type `application/octet-stream` whose content is the lock token as 16 bytes (.NET
`Guid.ToByteArray()`, little-endian) followed by the **whole** AMQP message
(`message.GetRawAmqpMessage().ToBytes()`), sections in AMQP order: header (ttl, delivery-count),
delivery annotations (`x-opt-lock-token`), message annotations (`x-opt-enqueued-time`,
`x-opt-sequence-number`, `x-opt-locked-until`), properties, application properties, data.
`host_message_content` reproduces Microsoft's own sample of those bytes byte for byte
(`SERVICEBUS_SAMPLE_CONTENT` of the extension's tests; see tests/test_host_message.py).

This is the one module that touches the Service Bus SDK's private AMQP encoder (`_pyamqp`): each
section is encoded on its own and the sections are joined in AMQP order (the SDK's own
`encode_payload` writes delivery annotations last, which the host does not).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus._pyamqp.types import AMQPTypes
from azurefunctions.extensions.base import Datum
from azurefunctions.extensions.bindings.servicebus import (
    ServiceBusConverter,
    ServiceBusReceivedMessage,
)

from cancel_handler.servicebus.messages import kept_fields

#: Service Bus's default lock duration: `x-opt-locked-until` is this long after delivery.
DEFAULT_LOCK_DURATION = timedelta(minutes=1)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the worker protocol's `ModelBindingData` that the extension reads."""

    content: bytes
    version: str = "1.0"
    source: str = "AzureServiceBusReceivedMessage"
    content_type: str = "application/octet-stream"


def host_message_content(
    body: bytes,
    *,
    lock_token: uuid.UUID,
    message_id: str,
    delivery_count: int | None,
    sequence_number: int,
    enqueued_time: datetime,
    locked_until: datetime | None = None,
    time_to_live: timedelta | None = None,
    correlation_id: str | None = None,
    content_type: str | None = "application/json",
    subject: str | None = None,
    session_id: str | None = None,
    reply_to: str | None = None,
    reply_to_session_id: str | None = None,
    application_properties: Mapping[str, Any] | None = None,
) -> bytes:
    """The model binding content the host sends for one received message: the 16-byte
    little-endian lock token, then the whole AMQP message in section order.

    `delivery_count` is the header's count as the host writes it (1 on a first delivery); None
    leaves it out. With `time_to_live` the header carries the ttl and the properties a creation
    time (the enqueued time) and an absolute expiry time, as in Microsoft's sample.
    Application property values keep their type: `str` is an AMQP string, `bytes` binary."""
    if locked_until is None:
        locked_until = enqueued_time + DEFAULT_LOCK_DURATION
    sections: list[Message] = []
    ttl_ms = _milliseconds(time_to_live) if time_to_live is not None else None
    if delivery_count is not None or ttl_ms is not None:
        sections.append(Message(header=Header(ttl=ttl_ms, delivery_count=delivery_count)))
    sections.append(Message(delivery_annotations={b"x-opt-lock-token": lock_token}))
    sections.append(
        Message(
            message_annotations={
                b"x-opt-enqueued-time": _timestamp(enqueued_time),
                b"x-opt-sequence-number": {"TYPE": AMQPTypes.long, "VALUE": sequence_number},
                b"x-opt-locked-until": _timestamp(locked_until),
            }
        )
    )
    created = _milliseconds(enqueued_time - _EPOCH) if ttl_ms is not None else None
    sections.append(
        Message(
            properties=Properties(
                message_id=message_id,
                subject=subject,
                correlation_id=correlation_id,
                content_type=content_type,
                group_id=session_id,
                reply_to=reply_to,
                reply_to_group_id=reply_to_session_id,
                absolute_expiry_time=created + ttl_ms if created is not None else None,
                creation_time=created,
            )
        )
    )
    if application_properties:
        sections.append(Message(application_properties=dict(application_properties)))
    sections.append(Message(data=[body]))
    amqp = b"".join(bytes(encode_payload(bytearray(), section)) for section in sections)
    return lock_token.bytes_le + amqp


def decode_as_worker(content: bytes) -> Any:
    """What the function receives for `content`: model binding data decoded by the binding
    extension's own `ServiceBusConverter`, as the worker calls it."""
    datum = Datum(value=ModelBindingData(content), type="model_binding_data")
    return ServiceBusConverter.decode(
        datum, trigger_metadata=None, pytype=ServiceBusReceivedMessage
    )


def host_delivered_message(
    body: bytes | dict,
    *,
    lock_token: uuid.UUID | None = None,
    message_id: str | None = None,
    delivery_count: int | None = 1,
    sequence_number: int = 1,
    enqueued_time: datetime | None = None,
    **fields: Any,
) -> Any:
    """The `azure.servicebus.ServiceBusReceivedMessage` the function receives for a message
    built by `host_message_content` (a dict body is sent as JSON); the lock token and message
    id are fresh UUIDs unless given, the enqueued time is now."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    content = host_message_content(
        raw,
        lock_token=lock_token or uuid.uuid4(),
        message_id=message_id or str(uuid.uuid4()),
        delivery_count=delivery_count,
        sequence_number=sequence_number,
        enqueued_time=enqueued_time or datetime.now(UTC),
        **fields,
    )
    return decode_as_worker(content)


def delivered_copy(
    sent: Any,
    *,
    delivery_count: int | None = 1,
    message_id: str | None = None,
    application_properties: Mapping[str, Any] | None = None,
) -> Any:
    """A `ServiceBusMessage` this product sent to its own queue (a delayed retry, a resubmission,
    a date range's child request) as the function later receives it: body, ids, reply address
    and application properties as sent; `message_id` or `application_properties` replace the
    sent ones."""
    properties = application_properties
    if properties is None:
        properties = sent.application_properties or {}
    return host_delivered_message(
        b"".join(sent.body),
        message_id=message_id or sent.message_id,
        delivery_count=delivery_count,
        session_id=sent.session_id,
        application_properties={
            _text(key): _text(value) for key, value in properties.items()
        },
        **kept_fields(sent),
    )


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _timestamp(moment: datetime) -> dict[str, Any]:
    return {"TYPE": AMQPTypes.timestamp, "VALUE": _milliseconds(moment - _EPOCH)}


def _milliseconds(span: timedelta) -> int:
    return span // timedelta(milliseconds=1)
