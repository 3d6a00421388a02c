"""The host-format builder against Microsoft's own sample of the host's bytes, and what the
binding extension makes of them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cancel_handler.devtools.host_message import (
    decode_as_worker,
    host_delivered_message,
    host_message_content,
)
from tests.data import servicebus_sample as sample


def _sample_rebuilt() -> bytes:
    return host_message_content(
        sample.BODY,
        lock_token=sample.LOCK_TOKEN,
        message_id=sample.MESSAGE_ID,
        delivery_count=sample.DELIVERY_COUNT,
        sequence_number=sample.SEQUENCE_NUMBER,
        enqueued_time=sample.ENQUEUED_TIME,
        locked_until=sample.LOCKED_UNTIL,
        time_to_live=sample.TIME_TO_LIVE,
        content_type=None,
    )


def test_builder_reproduces_microsofts_sample_byte_for_byte() -> None:
    """Given the sample's lock token, ids, times and body, the builder writes exactly the bytes
    of SERVICEBUS_SAMPLE_CONTENT from the extension's own tests."""
    assert _sample_rebuilt() == sample.SERVICEBUS_SAMPLE_CONTENT


def test_content_starts_with_the_little_endian_lock_token() -> None:
    """The first 16 bytes are the lock token in .NET Guid byte order, and the whole AMQP message
    (starting with its header section, descriptor 0x70) follows at once."""
    token = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    content = host_message_content(
        b"{}",
        lock_token=token,
        message_id="m",
        delivery_count=2,
        sequence_number=1,
        enqueued_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert content[:16] == bytes.fromhex("33221100554477668899aabbccddeeff")
    assert content[16:19] == b"\x00\x53\x70"


def test_sample_decodes_like_the_rebuilt_bytes() -> None:
    """Decoded by the extension as the worker does, the sample and the builder's bytes give the
    same message, field by field."""
    fields = (
        "message_id",
        "correlation_id",
        "content_type",
        "sequence_number",
        "enqueued_time_utc",
        "locked_until_utc",
        "lock_token",
        "delivery_count",
        "application_properties",
    )
    from_sample = decode_as_worker(sample.SERVICEBUS_SAMPLE_CONTENT)
    rebuilt = decode_as_worker(_sample_rebuilt())
    assert b"".join(from_sample.body) == b"".join(rebuilt.body) == b"hello"
    for field in fields:
        assert getattr(from_sample, field) == getattr(rebuilt, field), field
    assert from_sample.message_id == "f00d2a33551440389d68e299d31adc7c"
    assert str(from_sample.lock_token) == "fc53a15f-dd66-494f-825d-ee1b7c343cfb"
    assert from_sample.sequence_number == 12


def test_every_field_the_product_reads_survives_the_extension() -> None:
    """Body, message id, correlation id, content type, subject, session id, application
    properties, enqueued time, sequence number, lock token and dead-letter reason come out of
    the extension as they went into the host's bytes."""
    token = uuid.uuid4()
    enqueued = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)
    message = host_delivered_message(
        b'{"eventId": "AAMk="}',
        lock_token=token,
        message_id="req-17",
        sequence_number=2**40,
        enqueued_time=enqueued,
        correlation_id="corr-17",
        subject="cancel",
        session_id="room-4",
        application_properties={"tenant": "contoso", "resubmitCount": 2, "DeadLetterReason": "X"},
    )
    assert b"".join(message.body) == b'{"eventId": "AAMk="}'
    assert (message.message_id, message.correlation_id) == ("req-17", "corr-17")
    assert (message.content_type, message.subject) == ("application/json", "cancel")
    assert message.session_id == "room-4"
    assert message.application_properties == {
        b"tenant": b"contoso",
        b"resubmitCount": 2,
        b"DeadLetterReason": b"X",
    }
    assert message.dead_letter_reason == "X"
    assert message.enqueued_time_utc == enqueued
    assert message.sequence_number == 2**40
    assert message.lock_token == token
