"""Facts read off received Service Bus messages: the body as bytes, decoded application
properties, the delayed-retry number and the resubmission marker. Messages are the SDK's real
ServiceBusReceivedMessage where the shape allows it."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from cancel_handler.servicebus.messages import (
    carried_properties,
    copy_check,
    decoded_properties,
    message_body,
    read_markers,
    sealed,
)
from tests.helpers import received_message

NOT_DATA = "message body must be AMQP data (bytes) holding UTF-8 JSON"


class Body:
    """A message with only a body (the shapes the SDK's `body` property can take)."""

    def __init__(self, body: object) -> None:
        self.body = body


def test_the_sdk_message_body_is_joined_from_its_data_chunks() -> None:
    """A real received message's body (a generator of data sections) comes back as bytes."""
    assert message_body(received_message(b'{"a": 1}')) == b'{"a": 1}'


@pytest.mark.parametrize(
    ("make_body", "expected"),
    [
        (lambda: b"raw", b"raw"),
        (lambda: bytearray(b"array"), b"array"),
        (lambda: "tekst ✓", "tekst ✓".encode()),
        (lambda: [b"ab", bytearray(b"cd"), b""], b"abcd"),
        (lambda: (chunk for chunk in [b"x", b"y"]), b"xy"),
        (lambda: [], b""),
    ],
)
def test_data_bodies_become_bytes(make_body: Callable[[], object], expected: bytes) -> None:
    """bytes, bytearray, str (as UTF-8) and sequences of data chunks all give bytes."""
    result = message_body(Body(make_body()))
    assert result == expected and type(result) is bytes


@pytest.mark.parametrize("body", [42, None, [b"ok", "text"], [{"a": 1}], {"a": 1}])
def test_value_and_sequence_bodies_are_refused(body: object) -> None:
    """AMQP value or sequence bodies (numbers, maps, lists of non-bytes) raise ValueError with
    the contract's wording."""
    with pytest.raises(ValueError) as caught:
        message_body(Body(body))
    assert str(caught.value) == NOT_DATA


def test_properties_are_decoded_to_text() -> None:
    """Bytes keys and UTF-8 bytes values become str; other values and undecodable bytes stay."""
    properties = {b"source": b"rooms", "plain": "x", b"n": 7, b"raw": b"\xff\xfe", 5: b"v"}
    assert decoded_properties(properties) == {
        "source": "rooms",
        "plain": "x",
        "n": 7,
        "raw": b"\xff\xfe",
        "5": "v",
    }


def test_no_properties_decode_to_an_empty_dict() -> None:
    """A message without application properties has none."""
    assert decoded_properties(None) == {} and decoded_properties({}) == {}


def test_an_undecodable_key_is_kept_readable() -> None:
    """A key that is not UTF-8 is decoded with replacement characters, not dropped."""
    assert decoded_properties({b"k\xff": 1}) == {"k\ufffd": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"4", 4),
        (b" 12 ", 12),
        ("3", 3),
        (1, 1),
        (100, 100),
        (0, 0),
        (b"0", 0),
        (-2, 0),
        (b"-2", 0),
        (b"+2", 0),
        (b"2.0", 0),
        (2.0, 0),
        (True, 0),
        (False, 0),
        (b"", 0),
        (None, 0),
        (b"999999999", 999999999),
        (b"1000000000", 0),
    ],
)
def test_retry_count_is_a_positive_whole_number_or_zero(value: object, expected: int) -> None:
    """cancelHandlerRetryCount of a copy our tools sealed, as the broker hands it over (str or
    int); anything that is not a positive whole number (as text, at most nine characters)
    counts as an original (0)."""
    message = _sealed_copy({"cancelHandlerRetryCount": _as_sent(value)})
    assert read_markers(message).retry_count == expected


def test_a_message_without_properties_is_an_original() -> None:
    """No application properties at all (not even the attribute) → retry number 0."""
    markers = read_markers(Body(b"{}"))
    assert markers.retry_count == 0
    assert markers.after_earlier_attempt is False


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (b"MaxDeliveryCountExceeded", True),
        (b"RetriesExhausted", True),
        ("RetriesExhausted", True),
        (b"DeliveriesExhausted", True),
        (b"EventNotFound", False),
        (b"GraphForbidden", False),
        (b"retriesexhausted", False),
        (None, False),
    ],
)
def test_resubmissions_after_an_unknown_outcome_are_recognised(
    reason: object, expected: bool
) -> None:
    """Only copies resubmitted from MaxDeliveryCountExceeded, RetriesExhausted or
    DeliveriesExhausted may find their event already cancelled."""
    properties = {} if reason is None else {"resubmittedFromReason": _as_sent(reason)}
    message = _sealed_copy(properties)
    assert read_markers(message).after_earlier_attempt is expected


def _as_sent(value: object) -> object:
    """A property value as a sender's SDK sends it (bytes arrive as text)."""
    return value.decode() if isinstance(value, bytes) else value


def _sealed_copy(properties: dict) -> object:
    """A received copy whose markers carry the copy check our tools add."""
    return received_message(
        b"{}", message_id="copy-1", application_properties=sealed("copy-1", properties)
    )


def test_a_copy_sealed_by_this_release_keeps_verifying() -> None:
    """Delayed-retry copies wait in the queue across upgrades: the check of a known copy is
    pinned, so a change to the digest's input or format fails here before it strands them."""
    properties = {"cancelHandlerRetryCount": 1, "originalMessageId": "orig-1"}
    assert copy_check("copy-1", properties) == "15db40fbcd7fadf01791a3bafbc995a1"


def test_a_message_object_without_properties_carries_none() -> None:
    """A message object with no application_properties attribute starts a copy with none."""
    assert carried_properties(SimpleNamespace(message_id="m-1")) == {}


def test_markers_on_a_message_object_without_an_id_are_ignored_not_a_crash() -> None:
    """Reserved properties on an object with no message_id attribute cannot match a copy
    check: they are reported as ignored and the message reads as an original."""
    markers = read_markers(SimpleNamespace(application_properties={"cancelHandlerRetryCount": 1}))
    assert (markers.retry_count, markers.ignored) == (0, ("cancelHandlerRetryCount",))


def test_a_resubmission_reason_that_is_not_text_is_no_reason() -> None:
    """A sealed copy whose resubmittedFromReason is a number names no dead-letter reason."""
    message = _sealed_copy({"resubmittedFromReason": 7})
    assert read_markers(message).resubmitted_from is None


def test_a_copy_keeps_the_correlation_content_type_subject_and_reply_address() -> None:
    """kept_fields reads the same five fields off a received message, a sent one or a Delivery,
    named as ServiceBusMessage takes them; nothing else (no ids, no session, no properties)."""
    from azure.servicebus import ServiceBusMessage

    from cancel_handler.servicebus.delivery import delivery_of
    from cancel_handler.servicebus.messages import kept_fields

    received = received_message(
        b"{}",
        message_id="m-1",
        correlation_id="c-1",
        subject="s",
        reply_to="replies",
        reply_to_session_id="r-1",
        content_type="application/json",
        application_properties={"k": "v"},
    )
    expected = {
        "correlation_id": "c-1",
        "content_type": "application/json",
        "subject": "s",
        "reply_to": "replies",
        "reply_to_session_id": "r-1",
    }
    assert kept_fields(received) == expected
    assert kept_fields(delivery_of(received)) == expected
    assert kept_fields(ServiceBusMessage(b"{}", message_id="m-2", **expected)) == expected


def test_a_delivery_says_why_its_body_cannot_be_read_and_keeps_only_whole_counts() -> None:
    """A body that is not AMQP data, properties that are not a map and a delivery count that is
    not a whole number are read as absent, and the body's problem is kept to say so."""
    from types import SimpleNamespace

    from cancel_handler.servicebus.delivery import delivery_of

    def message(**fields: object) -> SimpleNamespace:
        return SimpleNamespace(body=b'{"a": 1}', application_properties=None, **fields)

    unreadable = delivery_of(SimpleNamespace(body=12345, application_properties=[("a", 1)]))
    assert (unreadable.body, unreadable.body_problem) == (
        None, "message body must be AMQP data (bytes) holding UTF-8 JSON")
    assert unreadable.properties == {}
    readable = delivery_of(message(delivery_count=3))
    assert (readable.body, readable.body_problem, readable.delivery_count) == (
        b'{"a": 1}', None, 3)
    for count in (True, "3", 3.0, None):
        assert delivery_of(message(delivery_count=count)).delivery_count is None
