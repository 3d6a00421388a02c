"""Replies to iCalUId and date-range requests, through the production path: host-format
messages, `Processor.process`, the loopback Graph simulator and identity endpoint, child requests
sent to the Service Bus double's cancel queue and replies to its session-enabled reply queue.
Every reply is checked against the published schema (`reply_event`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancel_handler.devtools.graph_simulator import Meeting
from tests.conftest import UPN, Loopback, process_all
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSleep, as_delivered, received_message
from tests.reply_schema import reply_event

REPLIES = "cancel-replies"
SESSION = "hr-run-12"
PARENT_ID = "leave-2027-03-alex"
NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
START, END = "2027-03-10T00:00:00+01:00", "2027-03-20T00:00:00+01:00"


@pytest.fixture
def bus() -> FakeServiceBus:
    """The cancel queue (children go there) and a session-enabled reply queue."""
    fake = FakeServiceBus()
    fake.add_entity(REPLIES, sessions=True)
    return fake


def leave(loopback: Loopback) -> None:
    """Two meetings to cancel in the window, one Alex only attends, one without attendees."""
    state = loopback.graph.state
    state.add_meeting(UPN, Meeting("REVIEW", at(11, 9), at(11, 10)))
    state.add_meeting(UPN, Meeting("PLANNING", at(12, 14), at(12, 15, 30), type="exception"))
    state.add_meeting(UPN, Meeting("INVITED", at(13, 9), at(13, 10), organizer=False))
    state.add_meeting(UPN, Meeting("FOCUS", at(14, 9), at(14, 11), attendees=0))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=UTC)


def ask(body: dict, message_id: str = PARENT_ID) -> Any:
    """A request asking for a reply in the sender's session of the reply queue."""
    return received_message(
        body, message_id=message_id, reply_to=REPLIES, reply_to_session_id=SESSION
    )


def process(loopback: Loopback, bus: FakeServiceBus, *messages: Any) -> RecordingActions:
    """Run the messages through one processor that replies and fans out to `bus`."""
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), replies=bus, fan_out=bus, now=lambda: NOW, REPLY_TO_ALLOWED=REPLIES
    )
    process_all(processor, list(messages), actions)
    return actions


def replies(bus: FakeServiceBus) -> list[tuple[Any, dict]]:
    """Every reply sent so far with its CloudEvent (each validated against the schema)."""
    return [(message, reply_event(message)) for message in bus.entities[REPLIES].messages]


SELECTED = [
    {"eventId": "REVIEW", "start": "2027-03-11T09:00:00Z", "end": "2027-03-11T10:00:00Z",
     "type": "singleInstance"},
    {"eventId": "PLANNING", "start": "2027-03-12T14:00:00Z", "end": "2027-03-12T15:30:00Z",
     "type": "exception"},
]


def test_fanned_out_range_replies_with_its_events_children_and_skips(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A fanned-out range is answered `fannedOut` before it is completed: the range it named,
    the selected meetings in UTC, the children's MessageIds as sent, and the skip counts."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END,
            "comment": "Alex is on leave."}
    actions = process(loopback, bus, ask(body))
    assert actions.only.action == "complete"
    [(message, event)] = replies(bus)
    assert (message.subject, message.correlation_id, message.session_id) == (
        "fannedOut", PARENT_ID, SESSION)
    assert message.application_properties == {"outcome": "fannedOut", "reason": "FannedOut"}
    children = [child.message_id for child in bus.sent]
    assert len(children) == 2
    assert event["data"] == {
        "requestMessageId": PARENT_ID,
        "outcome": "fannedOut",
        "reason": "FannedOut",
        "userPrincipalName": UPN,
        "startDateTime": START,
        "endDateTime": END,
        "graphStatus": 200,
        "graphRequestId": event["data"]["graphRequestId"],
        "attempts": 1,
        "events": SELECTED,
        "childMessageIds": children,
        "skipped": {"notOrganizer": 1, "noAttendees": 1},
    }
    assert "comment" not in event["data"] and b"on leave" not in b"".join(message.body)


def test_each_child_replies_with_its_parent(loopback: Loopback, bus: FakeServiceBus) -> None:
    """The children inherit reply_to and the session: each meeting gets its own `cancelled`
    reply carrying parentMessageId = the range request's MessageId."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END}
    process(loopback, bus, ask(body))
    children = list(bus.sent)
    actions = process(loopback, bus, *[as_delivered(child) for child in children])
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    child_replies = replies(bus)[1:]
    assert [m.correlation_id for m, _ in child_replies] == [c.message_id for c in children]
    assert {m.session_id for m, _ in child_replies} == {SESSION}
    assert [(e["data"]["outcome"], e["data"]["eventId"], e["data"]["parentMessageId"])
            for _, e in child_replies] == [
        ("cancelled", "REVIEW", PARENT_ID), ("cancelled", "PLANNING", PARENT_ID)]


def test_previewed_range_replies_with_its_selection(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A preview is answered `previewed` with the selection and skips, no children, nothing
    sent and nothing cancelled."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END,
            "preview": True}
    actions = process(loopback, bus, ask(body))
    assert actions.only.action == "complete"
    [(message, event)] = replies(bus)
    data = event["data"]
    assert (message.subject, data["outcome"], data["reason"]) == (
        "previewed", "previewed", "Previewed")
    assert (data["startDateTime"], data["endDateTime"], data["preview"]) == (START, END, True)
    assert data["events"] == SELECTED
    assert data["childMessageIds"] == []
    assert data["skipped"] == {"notOrganizer": 1, "noAttendees": 1}
    assert bus.sent == [] and loopback.cancels() == []


def test_range_too_large_is_answered_dead_lettered_without_a_selection(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """RangeTooLarge is a dead-letter reply naming the range and the count; it lists no events
    (nothing was selected for cancelling)."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END}
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), replies=bus, fan_out=bus, now=lambda: NOW,
        REPLY_TO_ALLOWED=REPLIES, RANGE_MAX_EVENTS="1",
    )
    process_all(processor, [ask(body)], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "RangeTooLarge")
    [(_, event)] = replies(bus)
    data = event["data"]
    assert (data["outcome"], data["reason"]) == ("deadLettered", "RangeTooLarge")
    assert "2 events to cancel; the limit is 1" in data["description"]
    assert data["startDateTime"] == START
    assert not {"events", "childMessageIds", "skipped"} & set(data)


def test_a_preview_too_large_is_answered_previewed_and_not_dead_lettered(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A preview of a range over RANGE_MAX_EVENTS completes (no dead-letter, so no alert) and
    is answered `previewed` with reason RangeTooLarge and the meetings it found."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END,
            "preview": True}
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), replies=bus, fan_out=bus, now=lambda: NOW,
        REPLY_TO_ALLOWED=REPLIES, RANGE_MAX_EVENTS="1",
    )
    [outcome] = process_all(processor, [ask(body)], actions)
    assert actions.only.action == "complete"
    assert outcome.settlement.description == (
        "preview: 2 events to cancel; the limit is 1 (RANGE_MAX_EVENTS): split the range into "
        "shorter ones; nothing was cancelled; skipped: notOrganizer=1, noAttendees=1"
    )
    [(message, event)] = replies(bus)
    data = event["data"]
    assert (message.subject, data["outcome"], data["reason"]) == (
        "previewed", "previewed", "RangeTooLarge")
    assert data["events"] == SELECTED
    assert "description" not in data
    assert bus.sent == [] and loopback.cancels() == []


@pytest.mark.parametrize("preview", [False, True], ids=["request", "preview"])
@pytest.mark.parametrize("calendar", ["empty", "leave"])
def test_with_ranges_off_every_range_is_refused_before_graph_is_asked(
    loopback: Loopback, bus: FakeServiceBus, preview: bool, calendar: str
) -> None:
    """RANGE_MAX_EVENTS=0: a range is refused with the same text whatever the calendar holds,
    without any Graph call; a request is dead-lettered and answered `deadLettered`, a preview
    completes and is answered `previewed`, both with reason RangeTooLarge."""
    if calendar == "leave":
        leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END}
    if preview:
        body["preview"] = True
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), replies=bus, fan_out=bus, now=lambda: NOW,
        REPLY_TO_ALLOWED=REPLIES, RANGE_MAX_EVENTS="0",
    )
    [outcome] = process_all(processor, [ask(body)], actions)
    refusal = (
        "date ranges are off (RANGE_MAX_EVENTS=0); the calendar was not read and nothing was "
        "cancelled; send one request per meeting (eventId or iCalUId)"
    )
    assert outcome.settlement.reason == "RangeTooLarge"
    assert loopback.graph.state.calls == []
    [(_, event)] = replies(bus)
    data = event["data"]
    if preview:
        assert actions.only.action == "complete"
        assert outcome.settlement.description == f"preview: {refusal}"
        assert (data["outcome"], data["reason"]) == ("previewed", "RangeTooLarge")
    else:
        assert (actions.only.action, actions.only.description) == ("deadletter", refusal)
        assert (data["outcome"], data["reason"], data["description"]) == (
            "deadLettered", "RangeTooLarge", refusal)
    assert bus.sent == []


def test_ical_uid_reply_names_the_uid_and_the_event_found(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """An iCalUId request's `cancelled` reply names the iCalUId it was sent with and the
    organizer's event the lookup found."""
    uid = "room-booking-4711-'Board room'@contoso.com"
    start = NOW + timedelta(days=3)
    loopback.graph.state.add_meeting(
        UPN, Meeting("ORGANIZERS-COPY", start, start + timedelta(hours=1), ical_uid=uid)
    )
    actions = process(loopback, bus, ask({"userPrincipalName": UPN, "iCalUId": uid}, "room-1"))
    assert actions.only.action == "complete"
    [(_, event)] = replies(bus)
    data = event["data"]
    assert (data["outcome"], data["iCalUId"], data["eventId"]) == (
        "cancelled", uid, "ORGANIZERS-COPY")
    assert data["attempts"] == 2, "the lookup and the cancel"


def test_ambiguous_ical_uid_is_answered_with_the_uid(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """Several events with one UID: an `AmbiguousEvent` dead-letter reply naming the UID, with
    no eventId (none was chosen)."""
    start = NOW + timedelta(days=3)
    for event_id in ("COPY-A", "COPY-B"):
        loopback.graph.state.add_meeting(
            UPN, Meeting(event_id, start, start + timedelta(hours=1), ical_uid="UID-2")
        )
    process(loopback, bus, ask({"userPrincipalName": UPN, "iCalUId": "UID-2"}, "room-2"))
    [(_, event)] = replies(bus)
    data = event["data"]
    assert (data["outcome"], data["reason"], data["iCalUId"]) == (
        "deadLettered", "AmbiguousEvent", "UID-2")
    assert "eventId" not in data
    assert "COPY-A" in data["description"] and "COPY-B" in data["description"]
