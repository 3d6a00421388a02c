"""Exact values of a date range's fan-out: the child body's bytes, the parent's settlement
descriptions and log lines word for word, and the id of a request that arrived without one.
Runs the production path (`Processor.process`, loopback Graph simulator, the Service Bus double
holding the SDK's real `ServiceBusMessageBatch`)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus._pyamqp.message import Header, Message, Properties

from cancel_handler.devtools.graph_simulator import Meeting
from cancel_handler.servicebus.fanout import request_message_id
from tests.conftest import UPN, Loopback, process_all
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSleep, received_message

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
START, END = "2027-03-10T00:00:00Z", "2027-03-20T00:00:00Z"
FANOUT_LOGGER = "cancel_handler.servicebus.fanout"
#: A comment of 2100 characters: a child carrying it is over 2100 bytes, so two children never
#: fit in one 4096-byte batch while one does.
LONG_COMMENT = "x" * 2100
#: What the function says when it has children to send but no namespace to send them to.
NO_SENDER = (
    "no Service Bus sender: set ServiceBusConnection__fullyQualifiedNamespace and CANCEL_QUEUE_NAME"
)


def add_meetings(
    loopback: Loopback, count: int, *, prefix: str = "IMM", first: int = 0
) -> list[str]:
    """`count` meetings an hour apart, the first `first` hours after 11 March 09:00 UTC; their
    ids in start order."""
    ids = [f"{prefix}{n:02}" for n in range(count)]
    for n, event_id in enumerate(ids, start=first):
        start = datetime(2027, 3, 11, 9, tzinfo=UTC) + timedelta(hours=n)
        loopback.graph.state.add_meeting(UPN, Meeting(event_id, start, start + timedelta(hours=1)))
    return ids


def fan_out(loopback: Loopback, bus: FakeServiceBus | None, **body: object):
    """Process one range request (10 to 20 March) as `parent-1`; its settlement and outcome."""
    message = received_message(
        {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END, **body},
        message_id="parent-1",
    )
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), fan_out=bus, now=lambda: NOW)
    [outcome] = process_all(processor, [message], actions)
    return actions.only, outcome


def fanout_records(caplog, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == FANOUT_LOGGER and r.levelno == level]


def test_a_child_keeps_a_non_ascii_comment_as_utf8_bytes(loopback: Loopback) -> None:
    """The parent's comment with accents, a dash and an emoji is in the child's body as the same
    UTF-8 bytes (no \\u escapes), so the child reads and weighs like the request sent."""
    add_meetings(loopback, 1)
    bus = FakeServiceBus()
    comment = "Cong\u00e9 \u2013 \u00e0 bient\u00f4t \U0001f334"
    fan_out(loopback, bus, comment=comment)
    [child] = bus.sent
    body = b"".join(child.body)
    assert b"Cong\xc3\xa9 \xe2\x80\x93 \xc3\xa0 bient\xc3\xb4t \xf0\x9f\x8c\xb4" in body
    assert b"\\u" not in body
    assert json.loads(body) == {"userPrincipalName": UPN, "eventId": "IMM00", "comment": comment}


def test_a_message_without_a_message_id_counts_as_the_empty_id() -> None:
    """A request that arrived without a MessageId (AMQP 1.0 makes it optional) counts as the
    empty id, not an invented one that another request could carry."""
    amqp = Message(
        header=Header(delivery_count=1),
        properties=Properties(),  # AMQP 1.0 makes message-id optional
        delivery_annotations={b"x-opt-lock-token": uuid.uuid4()},
        message_annotations={b"x-opt-sequence-number": 1},
        data=[b"{}"],
    )
    received = ServiceBusReceivedMessage(amqp, receiver=None)
    assert received.message_id is None
    assert request_message_id(received) == ""


def test_without_a_sender_the_description_names_the_missing_settings(
    loopback: Loopback, caplog
) -> None:
    """No namespace configured and one meeting to cancel: the parent is given back as
    TransientFailure with the whole text naming both settings, and the warning says so."""
    caplog.set_level("INFO", logger="cancel_handler")
    add_meetings(loopback, 1)
    settled, outcome = fan_out(loopback, None)
    assert (settled.action, outcome.settlement.reason) == ("abandon", "TransientFailure")
    assert outcome.settlement.description == (
        f"sent 0 of 1 child request(s), then sending failed (MissingSenderError: {NO_SENDER}); "
        "a redelivery sends the same MessageIds"
    )
    [warning] = fanout_records(caplog, logging.WARNING)
    assert warning.getMessage() == (
        "fan-out stopped after 0 of 1 child request(s) (MissingSenderError); giving the parent back"
    )
    assert warning.cancel_handler == {"error": "MissingSenderError", "sent": 0}


def test_a_failed_third_batch_is_described_and_logged_exactly(loopback: Loopback, caplog) -> None:
    """Three children of one batch each, the third send fails: the parent is given back saying
    2 of 3 were sent and which error stopped it (not its text), and the warning carries the
    same counts and error name in its fields."""
    caplog.set_level("INFO", logger="cancel_handler")
    add_meetings(loopback, 3)
    bus = FakeServiceBus(batch_max_bytes=4096, fail_sends={3})
    settled, outcome = fan_out(loopback, bus, comment=LONG_COMMENT)
    assert (settled.action, outcome.settlement.reason) == ("abandon", "TransientFailure")
    assert outcome.settlement.description == (
        "sent 2 of 3 child request(s), then sending failed (ConnectionError); "
        "a redelivery sends the same MessageIds"
    )
    assert len(bus.sent) == 2
    assert outcome.range_report.send_batches == 2
    assert list(outcome.range_report.child_message_ids) == bus.sent_ids
    [warning] = fanout_records(caplog, logging.WARNING)
    assert warning.getMessage() == (
        "fan-out stopped after 2 of 3 child request(s) (ConnectionError); giving the parent back"
    )
    assert warning.cancel_handler == {"error": "ConnectionError", "sent": 2}


def test_a_completed_fan_out_describes_its_batches_and_skips(loopback: Loopback) -> None:
    """Three children of one batch each and a meeting only attended: the parent completes as
    FannedOut, saying 3 children in 3 batches and the one notOrganizer skip."""
    add_meetings(loopback, 3)
    invited = datetime(2027, 3, 15, 9, tzinfo=UTC)
    loopback.graph.state.add_meeting(
        UPN, Meeting("INVITED", invited, invited + timedelta(hours=1), organizer=False)
    )
    bus = FakeServiceBus(batch_max_bytes=4096)
    settled, outcome = fan_out(loopback, bus, comment=LONG_COMMENT)
    assert (settled.action, outcome.settlement.reason) == ("complete", "FannedOut")
    assert outcome.settlement.description == (
        "sent 3 child request(s) in 3 batch(es); skipped: notOrganizer=1"
    )
    assert [event for event, _ in bus.events] == ["send", "send", "send"]
    assert outcome.range_report.send_batches == 3


def test_the_range_log_line_lists_counts_and_events(loopback: Loopback, caplog) -> None:
    """A fanned-out range logs one line with its reason, counts, skips, list calls, children
    and event ids, and the same values (with the child MessageIds as sent) in its fields."""
    caplog.set_level("INFO", logger="cancel_handler")
    add_meetings(loopback, 2)
    invited = datetime(2027, 3, 15, 9, tzinfo=UTC)
    loopback.graph.state.add_meeting(
        UPN, Meeting("INVITED", invited, invited + timedelta(hours=1), organizer=False)
    )
    bus = FakeServiceBus()
    fan_out(loopback, bus)
    [line] = fanout_records(caplog, logging.INFO)
    assert line.getMessage() == (
        "range FannedOut listed=3 selected=2 skipped=notOrganizer=1 list_calls=1 children=2 "
        "events=IMM00,IMM01"
    )
    assert line.cancel_handler == {
        "message_id": "parent-1",
        "reason": "FannedOut",
        "listed": 3,
        "selected": 2,
        "skipped": {"notOrganizer": 1},
        "list_calls": 1,
        "event_ids": ["IMM00", "IMM01"],
        "child_message_ids": bus.sent_ids,
    }


def test_an_empty_range_logs_a_dash_for_its_events(loopback: Loopback, caplog) -> None:
    """A range with nothing in it logs `events=-` and no children."""
    caplog.set_level("INFO", logger="cancel_handler")
    fan_out(loopback, FakeServiceBus())
    [line] = fanout_records(caplog, logging.INFO)
    assert line.getMessage() == (
        "range FannedOut listed=0 selected=0 skipped=none list_calls=1 children=0 events=-"
    )


def test_the_log_line_shows_fifty_event_ids_then_counts_the_rest(
    loopback: Loopback, caplog
) -> None:
    """With 50 selected events every id is in the text; with 52 the first 50 are, then `…+2`
    (the fields always hold all of them)."""
    caplog.set_level("INFO", logger="cancel_handler")
    ids = add_meetings(loopback, 50)
    fan_out(loopback, None, preview=True)
    [line] = fanout_records(caplog, logging.INFO)
    assert line.getMessage().endswith(" events=" + ",".join(ids))

    caplog.clear()
    more = add_meetings(loopback, 2, prefix="ZZ", first=50)
    fan_out(loopback, None, preview=True)
    [line] = fanout_records(caplog, logging.INFO)
    assert line.getMessage().endswith(" events=" + ",".join(ids) + ",…+2")
    assert line.cancel_handler["event_ids"] == ids + more
