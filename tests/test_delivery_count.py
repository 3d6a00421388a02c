"""Redeliveries recognised on the host's real bytes: the delivery count the binding extension
1.0.0b2 drops is kept (cancel_handler/servicebus/delivery_count.py), and the settlement table's
404 rows hold for messages as the worker hands them over."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest
from azure.servicebus import ServiceBusReceivedMessage
from azurefunctions.extensions.bindings.servicebus import utils as extension_utils

from cancel_handler.core.decision import is_redelivery
from cancel_handler.core.outcome import Outcome
from cancel_handler.devtools.functions_host import settlement_host
from cancel_handler.devtools.host_message import (
    decode_as_worker,
    host_delivered_message,
    host_message_content,
)
from cancel_handler.servicebus import delivery_count
from tests.conftest import Loopback, cancel_body
from tests.data import servicebus_sample as sample


def _extension_alone(content: bytes) -> ServiceBusReceivedMessage:
    """The message as extension 1.0.0b2's own decoder makes it, without the workaround."""
    return ServiceBusReceivedMessage(extension_utils.get_decoded_message(content), receiver=None)


def test_extension_decoder_still_drops_the_delivery_count() -> None:
    """Pin of the workaround: the extension's own decoder loses the header of Microsoft's sample
    (delivery-count 1). When this fails, the extension reads the count itself: delete
    cancel_handler/servicebus/delivery_count.py, its call in runtime.py and this test."""
    assert version("azurefunctions-extensions-bindings-servicebus") == "1.0.0b2", (
        "extension upgraded: check whether it still drops the AMQP header, then update "
        "PINNED_EXTENSION_VERSION or remove the delivery-count workaround"
    )
    message = _extension_alone(sample.SERVICEBUS_SAMPLE_CONTENT)
    assert message.delivery_count is None, (
        "the binding extension now returns the delivery count: remove the workaround in "
        "cancel_handler/servicebus/delivery_count.py"
    )
    assert message.message_id == sample.MESSAGE_ID  # the rest did decode


def test_worker_decoded_sample_carries_its_delivery_count() -> None:
    """Through the extension's converter, as the worker calls it, Microsoft's sample now says
    delivery count 1 (its header's value) and keeps its other fields."""
    message = decode_as_worker(sample.SERVICEBUS_SAMPLE_CONTENT)
    assert message.delivery_count == 1
    assert message.lock_token == sample.LOCK_TOKEN
    assert message.sequence_number == 12
    assert message.time_to_live == timedelta(days=14)


@pytest.mark.parametrize("count", [1, 2, 10, 4000])
def test_worker_decoded_message_carries_the_host_count(count: int) -> None:
    """Whatever delivery count the host writes in the header reaches the function."""
    assert host_delivered_message(b"{}", delivery_count=count).delivery_count == count


def test_message_without_header_has_no_count() -> None:
    """A message whose AMQP header is absent decodes with no delivery count (not 0, not 1)."""
    assert host_delivered_message(b"{}", delivery_count=None).delivery_count is None


def test_unreadable_content_is_left_to_the_extension() -> None:
    """Bytes after the lock token that are not AMQP fail exactly as the extension alone fails
    on them (the worker then reports the invocation as failed and the host redelivers)."""
    content = uuid.uuid4().bytes_le + b"x-opt-lock-token" + b"not amqp"
    with pytest.raises(ValueError, match="Failed to decode ServiceBus content"):
        decode_as_worker(content)


def test_workaround_changes_nothing_but_the_header() -> None:
    """Every other field the product reads is what the extension alone decodes."""
    content = host_message_content(
        b'{"eventId": "AAMk="}',
        lock_token=uuid.uuid4(),
        message_id="req-9",
        delivery_count=4,
        sequence_number=77,
        enqueued_time=datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
        correlation_id="corr-9",
        subject="cancel",
        session_id="room-9",
        application_properties={"resubmitCount": 1, "DeadLetterReason": "EventNotFound"},
    )
    alone, kept = _extension_alone(content), decode_as_worker(content)
    assert b"".join(alone.body) == b"".join(kept.body)
    for field in (
        "message_id",
        "correlation_id",
        "content_type",
        "subject",
        "session_id",
        "application_properties",
        "dead_letter_reason",
        "enqueued_time_utc",
        "sequence_number",
        "locked_until_utc",
        "lock_token",
    ):
        assert getattr(alone, field) == getattr(kept, field), field
    assert (alone.delivery_count, kept.delivery_count) == (None, 4)


def test_workaround_is_applied_once() -> None:
    """Applying it again (a second import path) does not wrap the decoder twice."""
    from azurefunctions.extensions.bindings.servicebus import serviceBusReceivedMessage

    before = serviceBusReceivedMessage.get_decoded_message
    assert delivery_count.keep_delivery_count() is True
    assert serviceBusReceivedMessage.get_decoded_message is before


def test_workaround_refuses_another_extension_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """On any extension version but 1.0.0b2 the decoder is left as it is."""
    from azurefunctions.extensions.bindings.servicebus import serviceBusReceivedMessage

    monkeypatch.setattr(delivery_count, "version", lambda _name: "1.0.0b3")
    monkeypatch.setattr(
        serviceBusReceivedMessage, "get_decoded_message", extension_utils.get_decoded_message
    )
    assert delivery_count.keep_delivery_count() is False
    assert serviceBusReceivedMessage.get_decoded_message is extension_utils.get_decoded_message


def test_workaround_installs_on_the_extensions_own_decoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From the extension's untouched decoder (importing the runtime installed the workaround
    long before this test), installing it makes the worker's decoding keep the count, once;
    content the whole-message decoder cannot read still goes to the extension's decoder."""
    from azurefunctions.extensions.bindings.servicebus import serviceBusReceivedMessage

    monkeypatch.setattr(
        serviceBusReceivedMessage, "get_decoded_message", extension_utils.get_decoded_message
    )
    assert decode_as_worker(sample.SERVICEBUS_SAMPLE_CONTENT).delivery_count is None
    assert delivery_count.keep_delivery_count() is True
    installed = serviceBusReceivedMessage.get_decoded_message
    assert installed is not extension_utils.get_decoded_message
    assert decode_as_worker(sample.SERVICEBUS_SAMPLE_CONTENT).delivery_count == 1
    assert host_delivered_message(b"{}", delivery_count=3).delivery_count == 3
    assert delivery_count.keep_delivery_count() is True
    assert serviceBusReceivedMessage.get_decoded_message is installed
    # Only the extension's decoder says "Failed to decode ServiceBus content".
    content = uuid.uuid4().bytes_le + b"x-opt-lock-token" + b"not amqp"
    with pytest.raises(ValueError, match="Failed to decode ServiceBus content"):
        decode_as_worker(content)


def test_another_extension_version_is_named_in_the_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator learns which version was found and which one the workaround needs."""
    from azurefunctions.extensions.bindings.servicebus import serviceBusReceivedMessage

    monkeypatch.setattr(delivery_count, "version", lambda _name: "1.0.0b3")
    monkeypatch.setattr(
        serviceBusReceivedMessage, "get_decoded_message", extension_utils.get_decoded_message
    )
    with caplog.at_level("WARNING", logger="cancel_handler.servicebus.delivery_count"):
        delivery_count.keep_delivery_count()
    assert caplog.messages == [
        "azurefunctions-extensions-bindings-servicebus 1.0.0b3 is not 1.0.0b2: the "
        "delivery-count workaround is not applied"
    ]


@pytest.mark.parametrize(
    ("count", "expected"), [(None, False), (0, False), (1, False), (2, True), (11, True)]
)
def test_redelivery_rule(count: int | None, expected: bool) -> None:
    """Only a count above 1 is a redelivery; 1 (first delivery), 0 and a missing count are not."""
    assert is_redelivery(count) is expected


def _settle_over_grpc(loopback: Loopback, message) -> tuple[str, str, str]:
    """Run the production Processor on `message`, settling over the loopback gRPC service;
    returns the settlement RPC, its lock token and the logged reason."""
    processor = loopback.processor()
    with settlement_host() as (host, actions):

        async def run() -> Outcome:
            try:
                return await processor.process(message, actions)
            finally:
                await processor.aclose()

        outcome = asyncio.run(run())
    [(action, lock, _reason, _description)] = host.calls
    return action, lock, outcome.settlement.reason


@pytest.mark.parametrize(
    ("count", "action", "reason"),
    [
        (1, "deadletter", "EventNotFound"),
        (2, "complete", "AlreadyCancelled"),
        (None, "deadletter", "EventNotFound"),
    ],
)
def test_404_on_host_bytes_settles_by_delivery_count(
    loopback: Loopback, count: int | None, action: str, reason: str
) -> None:
    """Graph 404 for a message in the host's format: first delivery → dead-letter
    EventNotFound; redelivery (count 2) → complete as AlreadyCancelled; a missing count is
    treated as a first delivery. Settled over gRPC with the lock token of the first 16 bytes."""
    token = uuid.uuid4()
    message = host_delivered_message(
        cancel_body("GONE-404"), lock_token=token, delivery_count=count
    )
    assert _settle_over_grpc(loopback, message) == (action, str(token), reason)
    assert [c.status for c in loopback.graph.state.calls] == [404]


def test_header_without_count_is_a_first_delivery(loopback: Loopback) -> None:
    """A header that carries a ttl but no delivery-count (AMQP's default 0) is a first
    delivery: a 404 is dead-lettered, never completed unseen."""
    content = host_message_content(
        b'{"userPrincipalName": "adele.vance@contoso.com", "eventId": "GONE-TTL"}',
        lock_token=uuid.uuid4(),
        message_id="m-ttl",
        delivery_count=None,
        sequence_number=5,
        enqueued_time=datetime(2026, 1, 1, tzinfo=UTC),
        time_to_live=timedelta(days=14),
    )
    message = decode_as_worker(content)
    action, _lock, reason = _settle_over_grpc(loopback, message)
    assert (action, reason) == ("deadletter", "EventNotFound")


def test_lock_token_comes_from_the_first_16_bytes_when_the_annotation_is_missing() -> None:
    """An AMQP message (built with uamqp, the extension's own AMQP library) that carries no
    `x-opt-lock-token` annotation still settles: the lock token is read from the host's 16-byte
    prefix, as the extension reads it."""
    import uamqp

    amqp = uamqp.Message(
        body=b"{}",
        header=uamqp.message.MessageHeader(),
        properties=uamqp.message.MessageProperties(message_id="m-1"),
    )
    amqp.header.delivery_count = 2
    lock_token = uuid.uuid4()
    message = decode_as_worker(lock_token.bytes_le + amqp.encode_message())
    assert (message.lock_token, message.delivery_count, message.message_id) == (
        lock_token,
        2,
        "m-1",
    )


def test_content_after_the_lock_token_that_is_not_amqp_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The operator reads why the count is unknown; the extension's decoder then decides."""
    content = uuid.uuid4().bytes_le + b"x-opt-lock-token" + b"not amqp"
    with (
        caplog.at_level("WARNING", logger="cancel_handler.servicebus.delivery_count"),
        pytest.raises(ValueError, match="Failed to decode ServiceBus content"),
    ):
        decode_as_worker(content)
    assert caplog.messages == [
        "message after the lock token is not AMQP; its delivery count is unknown"
    ]


@pytest.mark.parametrize("size", [1, 15, 16])
def test_content_no_longer_than_a_lock_token_goes_to_the_extension_silently(
    size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing follows the lock token, so there is nothing to decode and nothing to warn about:
    the extension's decoder refuses the bytes as it would without the workaround."""
    with (
        caplog.at_level("WARNING", logger="cancel_handler.servicebus.delivery_count"),
        pytest.raises(ValueError, match="Failed to decode ServiceBus content"),
    ):
        decode_as_worker(uuid.uuid4().bytes_le[:size])
    assert caplog.messages == []
