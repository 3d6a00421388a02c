"""Cancel by date range end to end: real received messages, the loopback identity endpoint and
Graph simulator (paged calendarView), and a Service Bus sender double holding the SDK's real
`ServiceBusMessage`/`ServiceBusMessageBatch` objects for the fanned-out child requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest

from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault, Meeting
from cancel_handler.runtime import Processor
from cancel_handler.servicebus.messages import read_markers, sealed
from tests.conftest import UPN, Loopback, process_all
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSleep, as_delivered, received_message

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
START, END = "2027-03-10T00:00:00Z", "2027-03-20T00:00:00Z"
WINDOW_START = datetime(2027, 3, 10, tzinfo=UTC)
QUEUE = "cancel-requests"


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=UTC)


def meeting(event_id: str, start: datetime, **options: object) -> Meeting:
    return Meeting(event_id, start, start + timedelta(hours=1), ical_uid=f"U-{event_id}", **options)


def range_body(start: str = START, end: str = END, **extra: object) -> dict:
    return {"userPrincipalName": UPN, "startDateTime": start, "endDateTime": end, **extra}


def processor(loopback: Loopback, bus: FakeServiceBus | None = None, *, now: datetime = NOW,
              sleep: RecordingSleep | None = None, **settings: str) -> Processor:
    """A processor wired to the loopback servers, sending children to `bus`."""
    return loopback.processor(sleep or RecordingSleep(), fan_out=bus, now=lambda: now, **settings)


def run(loopback: Loopback, message, bus: FakeServiceBus | None = None,
        actions: RecordingActions | None = None, **kwargs):
    actions = actions or RecordingActions()
    [outcome] = process_all(processor(loopback, bus, **kwargs), [message], actions)
    return actions.only, outcome


def mixed_calendar(loopback: Loopback) -> None:
    """One of each kind of event the rules tell apart, around the window 10 to 20 March."""
    state = loopback.graph.state
    state.add_meeting(UPN, meeting("SINGLE", at(11)))
    state.add_meeting(UPN, meeting("ATTENDEE-COPY", at(12), organizer=False))
    state.add_meeting(UPN, meeting("NO-ATTENDEES", at(12, 14), attendees=0))
    state.add_meeting(UPN, meeting("CANCELLED", at(13), cancelled=True))
    state.add_meeting(UPN, Meeting("ALL-DAY", at(14, 0), at(15, 0), all_day=True))
    state.add_meeting(UPN, Meeting("STRADDLES", at(9, 20), at(10, 10)))  # began before window
    state.add_meeting(UPN, meeting("BEFORE", at(5)))
    state.add_meeting(UPN, meeting("AFTER", at(25)))
    # daily at 09:00 from 8 March: occurrences 8th and 9th lie before the window, 10th to 19th in
    # it, 20th+ after; the 12th was moved to 16:00 (an exception); the series master is never
    # listed by calendarView.
    state.add_series(UPN, "DAILY", at(8), 15, exceptions={4: timedelta(hours=7)})


def test_preview_lists_the_selection_and_cancels_nothing(loopback: Loopback, caplog) -> None:
    """preview: the selection and skips by cause are reported, the message completes as
    Previewed, and Graph's cancel is never called and nothing is sent."""
    caplog.set_level("INFO", logger="cancel_handler")
    mixed_calendar(loopback)
    bus = FakeServiceBus()
    settled, outcome = run(loopback, received_message(range_body(preview=True)), bus)
    assert settled.action == "complete"
    assert outcome.settlement.reason == "Previewed"
    assert outcome.settlement.description.startswith("preview: 12 event(s) would be cancelled")
    assert outcome.settlement.description.endswith("; nothing was cancelled")
    report = outcome.range_report
    selected = [e.id for e in report.selection.selected]
    occurrences = [f"DAILY-OCC{i}" for i in range(2, 12)]
    assert sorted(selected) == sorted(["SINGLE", "ALL-DAY", *occurrences])
    assert selected[0] == "DAILY-OCC2"  # in start order
    assert {k.value: v for k, v in report.selection.skipped.items()} == {
        "notOrganizer": 1, "noAttendees": 1, "alreadyCancelled": 1, "startedBeforeWindow": 1,
    }
    assert loopback.cancels() == [] and bus.sent == []
    assert "range Previewed" in caplog.text and "selected=12" in caplog.text
    assert UPN not in caplog.text


def test_calendar_view_request_asks_for_utc_and_immutable_ids(loopback: Loopback) -> None:
    """The listing sends the window in UTC, selects the rule's properties and carries both
    Prefer headers the rules depend on."""
    run(loopback, received_message(range_body("2027-03-10T01:00:00+01:00", END, preview=True)))
    [view] = loopback.reads()
    query = dict(p.split("=", 1) for p in urlsplit(view.path).query.split("&"))
    assert unquote(query["startDateTime"]) == "2027-03-10T00:00:00Z"
    assert unquote(query["endDateTime"]) == "2027-03-20T00:00:00Z"
    assert set(unquote(query["$select"]).split(",")) == {
        "id", "type", "isOrganizer", "isCancelled", "start", "end", "attendees"}
    assert set(view.prefer) == {'IdType="ImmutableId"', 'outlook.timezone="UTC"'}


def test_events_already_begun_are_skipped(loopback: Loopback) -> None:
    """With the window already open, a meeting that started an hour ago is skipped as begun
    and the one an hour ahead is selected."""
    loopback.graph.state.add_meeting(UPN, meeting("BEGUN", at(12, 8)))
    loopback.graph.state.add_meeting(UPN, meeting("AHEAD", at(12, 10)))
    _, outcome = run(loopback, received_message(range_body(preview=True)), now=at(12, 9))
    assert [e.id for e in outcome.range_report.selection.selected] == ["AHEAD"]
    assert {k.value: v for k, v in outcome.range_report.selection.skipped.items()} == {
        "alreadyBegun": 1}


def test_every_page_is_followed(loopback: Loopback) -> None:
    """With pages of 10 events, 25 meetings take 3 calendarView calls and all are selected."""
    loopback.graph.state.max_page_size = 10
    for n in range(25):
        loopback.graph.state.add_meeting(UPN, meeting(f"M{n:02}", at(11) + timedelta(hours=n)))
    _, outcome = run(loopback, received_message(range_body(preview=True)))
    assert len(loopback.reads()) == 3 == outcome.range_report.list_calls
    assert len(outcome.range_report.selection.selected) == 25
    assert "%24skip=20" in loopback.reads()[2].path or "$skip=20" in loopback.reads()[2].path


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.2:1", "https://graph.microsoft.com.evil.example", "https://127.0.0.1"]
)
def test_next_link_to_another_host_is_never_followed(loopback: Loopback, origin: str) -> None:
    """A next link whose scheme or host differs from GRAPH_BASE_URL's dead-letters
    GraphBadRequest saying why; the token goes nowhere else and nothing is sent."""
    state = loopback.graph.state
    state.max_page_size = 2
    state.next_link_origin = origin
    for n in range(3):
        state.add_meeting(UPN, meeting(f"M{n}", at(11 + n)))
    bus = FakeServiceBus()
    settled, _ = run(loopback, received_message(range_body()), bus)
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert "nextLink" in settled.description and "not followed" in settled.description
    assert len(loopback.reads()) == 1
    assert bus.sent == [] and loopback.cancels() == []


def calendar_page(loopback: Loopback, skip: int) -> Fault:
    """A scripted calendarView answer with no events, linking to `$skip=skip`."""
    link = f"{loopback.graph.graph_base_url}/users/{UPN}/calendarView?$skip={skip}"
    body = json.dumps({"value": [], "@odata.nextLink": link}).encode()
    return Fault(200, {"Content-Type": "application/json"}, body)


def test_a_next_link_back_to_a_page_read_ends_the_listing(loopback: Loopback) -> None:
    """Every page links to the same page: the listing stops when that page would be read a
    second time, dead-letters GraphBadRequest saying why and fans nothing out."""
    loopback.graph.state.script(UPN, "calendarView", *[calendar_page(loopback, 1)] * 5)
    bus = FakeServiceBus()
    settled, _ = run(loopback, received_message(range_body()), bus)
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert settled.description == (
        "Graph's @odata.nextLink leads back to a page already read (after 2 page(s)), so the "
        "listing would never end; the listing was stopped and nothing was cancelled"
    )
    assert len(loopback.reads()) == 2
    assert bus.sent == [] and loopback.cancels() == []


@pytest.mark.parametrize(("max_events", "pages"), [("1", 20), ("100", 40)])
def test_a_listing_reads_at_most_twenty_times_the_pages_its_limit_fills(
    loopback: Loopback, max_events: str, pages: int
) -> None:
    """Pages of 100 events: RANGE_MAX_EVENTS=1 fills 1 page (+1), so 20 pages at most;
    RANGE_MAX_EVENTS=100 fills 2, so 40; a listing still going on is GraphBadRequest."""
    linked = [calendar_page(loopback, n + 1) for n in range(pages + 5)]
    loopback.graph.state.script(UPN, "calendarView", *linked)
    bus = FakeServiceBus()
    settled, _ = run(loopback, received_message(range_body()), bus, RANGE_MAX_EVENTS=max_events)
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert settled.description == (
        f"Graph's list still had a next page after {pages} pages, the most one listing reads; "
        "the listing was stopped and nothing was cancelled"
    )
    assert len(loopback.reads()) == pages
    assert bus.sent == []


def test_a_listing_longer_than_two_minutes_ends(loopback: Loopback) -> None:
    """Each page "takes" 50 s on the handler's clock: after the third page (150 s, over the
    120 s one delivery may list) the listing stops as GraphBadRequest saying so."""
    linked = [calendar_page(loopback, n + 1) for n in range(10)]
    loopback.graph.state.script(UPN, "calendarView", *linked)
    bus = FakeServiceBus()
    proc = loopback.processor(
        RecordingSleep(), fan_out=bus, now=lambda: NOW, clock=lambda: 50.0 * len(loopback.reads())
    )
    actions = RecordingActions()
    process_all(proc, [received_message(range_body())], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "GraphBadRequest")
    assert actions.only.description == (
        "Graph's list still had a next page after 3 page(s) and 150s, longer than one "
        "delivery may list (120s); the listing was stopped and nothing was cancelled; resubmit "
        "when Graph answers faster"
    )
    assert len(loopback.reads()) == 3
    assert bus.sent == []


def test_a_listing_of_exactly_two_minutes_reads_on(loopback: Loopback) -> None:
    """At 40 s a page, the third page ends at 120 s, not over the limit: a fourth page is read,
    and the listing stops after it (160 s)."""
    linked = [calendar_page(loopback, n + 1) for n in range(10)]
    loopback.graph.state.script(UPN, "calendarView", *linked)
    proc = loopback.processor(
        RecordingSleep(), fan_out=FakeServiceBus(), now=lambda: NOW,
        clock=lambda: 40.0 * len(loopback.reads()),
    )
    actions = RecordingActions()
    process_all(proc, [received_message(range_body())], actions)
    assert actions.only.description.startswith(
        "Graph's list still had a next page after 4 page(s) and 160s"
    )
    assert len(loopback.reads()) == 4


def test_too_many_events_is_range_too_large(loopback: Loopback) -> None:
    """More selected events than RANGE_MAX_EVENTS: dead-letter RangeTooLarge with the count,
    nothing cancelled, nothing sent."""
    for n in range(4):
        loopback.graph.state.add_meeting(UPN, meeting(f"M{n}", at(11 + n)))
    bus = FakeServiceBus()
    settled, _ = run(loopback, received_message(range_body()), bus, RANGE_MAX_EVENTS="3")
    assert (settled.action, settled.reason) == ("deadletter", "RangeTooLarge")
    assert settled.description.startswith("4 events to cancel; the limit is 3")
    assert bus.sent == [] and loopback.cancels() == []


def test_listing_stops_once_the_limit_is_passed(loopback: Loopback) -> None:
    """Pages of 2, 7 meetings, RANGE_MAX_EVENTS=3: after the second page 4 qualify, so the
    listing stops there and the count is given as a lower bound."""
    loopback.graph.state.max_page_size = 2
    for n in range(7):
        loopback.graph.state.add_meeting(UPN, meeting(f"M{n}", at(11 + n)))
    settled, _ = run(loopback, received_message(range_body()), FakeServiceBus(),
                     RANGE_MAX_EVENTS="3")
    assert (settled.action, settled.reason) == ("deadletter", "RangeTooLarge")
    assert settled.description.startswith("at least 4 events to cancel; the limit is 3")
    assert len(loopback.reads()) == 2


def test_listing_reads_on_while_the_count_only_reaches_the_limit(
    loopback: Loopback, caplog
) -> None:
    """Pages of 2, 7 meetings, RANGE_MAX_EVENTS=4: 4 qualifying after the second page is not
    yet too many, so a third page is read (6 qualify) before stopping; the range log line gives
    the three list calls."""
    caplog.set_level("INFO", logger="cancel_handler")
    loopback.graph.state.max_page_size = 2
    for n in range(7):
        loopback.graph.state.add_meeting(UPN, meeting(f"M{n}", at(11 + n)))
    settled, _ = run(loopback, received_message(range_body()), FakeServiceBus(),
                     RANGE_MAX_EVENTS="4")
    assert (settled.action, settled.reason) == ("deadletter", "RangeTooLarge")
    assert settled.description.startswith("at least 6 events to cancel; the limit is 4")
    assert len(loopback.reads()) == 3
    assert "range RangeTooLarge listed=6 selected=6" in caplog.text
    assert "list_calls=3" in caplog.text


def test_window_longer_than_the_setting_is_invalid(loopback: Loopback) -> None:
    """A window over RANGE_MAX_DAYS is dead-lettered InvalidMessage before Graph is called."""
    body = range_body("2027-03-10T00:00:00Z", "2027-03-20T00:00:01Z")
    settled, _ = run(loopback, received_message(body), RANGE_MAX_DAYS="10")
    assert (settled.action, settled.reason) == ("deadletter", "InvalidMessage")
    assert "limit is 10 days" in settled.description
    assert loopback.graph.state.calls == []


def test_fan_out_sends_one_child_per_event_then_completes(loopback: Loopback) -> None:
    """Each selected event becomes a v1 child request (immutable id, comment), with the parent
    id (a sealed marker), correlation id, reply_to and reply_to_session_id carried over; the
    parent completes after all were sent."""
    state = loopback.graph.state
    for n in range(3):
        state.add_meeting(UPN, meeting(f"IMM{n}", at(11 + n)))
    bus = FakeServiceBus()
    sent_at_settlement: list[int] = []
    actions = RecordingActions(on_settle=lambda _: sent_at_settlement.append(len(bus.sent)))
    parent = received_message(
        range_body(comment="On leave; please rebook."), message_id="hr-leave-42",
        correlation_id="case-7", reply_to="hr-replies", reply_to_session_id="hr-session-1",
    )
    settled, outcome = run(loopback, parent, bus, actions)
    assert (settled.action, outcome.settlement.reason) == ("complete", "FannedOut")
    assert sent_at_settlement == [3], "the parent settles once, after its 3 children"
    bodies = [json.loads(b"".join(m.body)) for m in bus.sent]
    assert bodies == [
        {"userPrincipalName": UPN, "eventId": f"IMM{n}", "comment": "On leave; please rebook."}
        for n in range(3)
    ]
    for child in bus.sent:
        assert child.application_properties["parentMessageId"] == "hr-leave-42"
        assert set(child.application_properties) == {"parentMessageId", "cancelHandlerCopyCheck"}
        assert read_markers(as_delivered(child)).parent_id == "hr-leave-42"
        assert child.correlation_id == "case-7"
        assert (child.reply_to, child.reply_to_session_id) == ("hr-replies", "hr-session-1")
        assert child.content_type == "application/json"
    ids = bus.sent_ids
    assert len(set(ids)) == 3 and all(len(i) <= 128 for i in ids)
    assert list(outcome.range_report.child_message_ids) == ids
    assert loopback.cancels() == [], "the parent cancels nothing itself"


def test_correlation_id_defaults_to_the_parent_message_id(loopback: Loopback) -> None:
    """Without a correlation id on the parent, children correlate on its MessageId."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM0", at(11)))
    bus = FakeServiceBus()
    run(loopback, received_message(range_body(), message_id="parent-1"), bus)
    [child] = bus.sent
    assert child.correlation_id == "parent-1"


def test_child_ids_are_deterministic_per_parent_and_event(loopback: Loopback) -> None:
    """The same parent MessageId gives the same child ids on a second run; another parent
    gives other ids for the same events."""
    for n in range(2):
        loopback.graph.state.add_meeting(UPN, meeting(f"IMM{n}", at(11 + n)))
    first, again, other = FakeServiceBus(), FakeServiceBus(), FakeServiceBus()
    run(loopback, received_message(range_body(), message_id="p-1"), first)
    run(loopback, received_message(range_body(), message_id="p-1", delivery_count=2), again)
    run(loopback, received_message(range_body(), message_id="p-2"), other)
    assert first.sent_ids == again.sent_ids
    assert not set(first.sent_ids) & set(other.sent_ids)


def test_parent_redelivered_after_its_children_were_sent_sends_the_same_ids(
    loopback: Loopback,
) -> None:
    """The children were sent but completing the parent failed: the invocation fails, and the
    redelivered parent sends the very same MessageIds (duplicate detection drops them)."""
    for n in range(3):
        loopback.graph.state.add_meeting(UPN, meeting(f"IMM{n}", at(11 + n)))
    bus = FakeServiceBus()
    refusing = RecordingActions(fail_on={"complete"})
    with pytest.raises(SettlementError):
        process_all(processor(loopback, bus), [received_message(
            range_body(), message_id="p-9")], refusing)
    first_ids = list(bus.sent_ids)
    settled, _ = run(loopback, received_message(range_body(), message_id="p-9",
                                                delivery_count=2), bus)
    assert settled.action == "complete"
    assert bus.sent_ids == first_ids + first_ids


def test_delayed_retry_copy_of_a_parent_keeps_the_child_ids(loopback: Loopback) -> None:
    """A scheduled retry copy has a new MessageId but carries originalMessageId (sealed by the
    function): its children get the ids the original would have sent."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM0", at(11)))
    original, copy = FakeServiceBus(), FakeServiceBus()
    run(loopback, received_message(range_body(), message_id="p-5"), original)
    markers = sealed("copy-xyz", {"originalMessageId": "p-5", "cancelHandlerRetryCount": "1"})
    run(loopback, received_message(range_body(), message_id="copy-xyz",
                                   application_properties=markers), copy)
    assert copy.sent_ids == original.sent_ids
    assert copy.sent[0].application_properties["parentMessageId"] == "p-5"


def test_a_forged_original_id_cannot_take_another_requests_child_ids(loopback: Loopback) -> None:
    """A sender who sets originalMessageId without the copy check gets children of its own
    MessageId, not the ids of the request it names (which duplicate detection would drop)."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM0", at(11)))
    victim, forger = FakeServiceBus(), FakeServiceBus()
    run(loopback, received_message(range_body(), message_id="p-5"), victim)
    run(loopback, received_message(range_body(), message_id="forged-1",
                                   application_properties={"originalMessageId": "p-5"}), forger)
    assert forger.sent_ids and not set(forger.sent_ids) & set(victim.sent_ids)
    assert forger.sent[0].application_properties["parentMessageId"] == "forged-1"


def test_a_failed_send_gives_the_parent_back(loopback: Loopback) -> None:
    """Children go out in several batches; when the second batch fails the parent is given
    back (never completed) and its redelivery sends every child under the same ids."""
    for n in range(40):
        loopback.graph.state.add_meeting(UPN, meeting(f"IMM{n:02}", at(11) + timedelta(hours=n)))
    bus = FakeServiceBus(batch_max_bytes=4096, fail_sends={2})
    settled, outcome = run(loopback, received_message(range_body(), message_id="p-3"), bus)
    assert settled.action == "abandon"
    sent_first = list(bus.sent_ids)
    assert 0 < len(sent_first) < 40
    assert f"sent {len(sent_first)} of 40" in outcome.settlement.description
    assert outcome.range_report.send_batches == 1
    assert list(outcome.range_report.child_message_ids) == sent_first
    settled, outcome = run(
        loopback, received_message(range_body(), message_id="p-3", delivery_count=2), bus)
    assert (settled.action, outcome.settlement.reason) == ("complete", "FannedOut")
    assert bus.sent_ids[: len(sent_first)] == sent_first
    assert bus.sent_ids[len(sent_first):][: len(sent_first)] == sent_first
    assert outcome.range_report.send_batches > 1


def test_without_a_sender_the_parent_is_given_back(loopback: Loopback) -> None:
    """With no Service Bus namespace to send children to, a range with meetings is never
    completed (the description names the missing settings); an empty one still completes."""
    settled, _ = run(loopback, received_message(range_body()))
    assert settled.action == "complete"
    loopback.graph.state.add_meeting(UPN, meeting("IMM0", at(11)))
    settled, outcome = run(loopback, received_message(range_body()))
    assert settled.action == "abandon"
    assert "ServiceBusConnection__fullyQualifiedNamespace" in outcome.settlement.description


def test_a_late_page_gets_its_own_retries(loopback: Loopback) -> None:
    """Throttled on the 12th page of a listing, the page is still retried after Retry-After:
    the attempt limit counts one call's attempts, not the pages before it."""
    state = loopback.graph.state
    state.max_page_size = 1
    for n in range(12):
        state.add_meeting(UPN, meeting(f"M{n:02}", at(11) + timedelta(hours=n)))
    state.script(UPN, "calendarView", *[Fault(passthrough=True)] * 11,
                 Fault(429, {"Retry-After": "1"}))
    sleep = RecordingSleep()
    proc = processor(loopback, sleep=sleep)
    [outcome] = process_all(proc, [received_message(range_body(preview=True))],
                            RecordingActions())
    assert outcome.settlement.reason == "Previewed"
    assert sleep.waits == [1]
    assert len(outcome.range_report.selection.selected) == 12


def test_empty_range_completes_with_no_children(loopback: Loopback) -> None:
    """Nothing to cancel in the window: the parent completes as FannedOut with no children."""
    bus = FakeServiceBus()
    settled, outcome = run(loopback, received_message(range_body()), bus)
    assert (settled.action, outcome.settlement.reason) == ("complete", "FannedOut")
    assert bus.sent == []


def test_children_cancel_their_events_and_a_404_is_already_cancelled(loopback: Loopback) -> None:
    """Each child cancels its event with the comment; a child whose event is gone (a duplicate,
    or the organizer was first) completes as AlreadyCancelled, even on its first delivery."""
    state = loopback.graph.state
    for n in range(2):
        state.add_meeting(UPN, meeting(f"IMM{n}", at(11 + n)))
    bus = FakeServiceBus()
    run(loopback, received_message(range_body(comment="Leave.")), bus)
    state.cancelled.add((UPN, "IMM1"))  # the organizer cancelled it meanwhile
    actions = RecordingActions()
    outcomes = process_all(processor(loopback), [as_delivered(c) for c in bus.sent], actions)
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert [o.settlement.reason for o in outcomes] == ["Cancelled", "AlreadyCancelled"]
    assert [(c.event_id, c.comment) for c in loopback.cancels()] == [
        ("IMM0", "Leave."), ("IMM1", "Leave.")]


def test_a_forged_parent_id_does_not_turn_a_404_into_already_cancelled(
    loopback: Loopback,
) -> None:
    """A sender's own parentMessageId (no copy check) is ignored: its request for an unknown
    event is dead-lettered EventNotFound on the first delivery, as any request."""
    message = received_message(
        {"userPrincipalName": UPN, "eventId": "NO-SUCH"},
        application_properties={"parentMessageId": "someone-elses-range"},
    )
    settled, _ = run(loopback, message)
    assert (settled.action, settled.reason) == ("deadletter", "EventNotFound")


def test_window_across_a_dst_change(loopback: Loopback) -> None:
    """Amsterdam's 28 March 2027 has 23 hours: 00:00+01:00 to 00:00+02:00 the next day.
    Graph gets those instants in UTC, and the meetings at 00:30 and 23:30 local time that day
    are selected while 00:30 the next day is not."""
    state = loopback.graph.state
    state.add_meeting(UPN, meeting("EARLY", datetime(2027, 3, 27, 23, 30, tzinfo=UTC)))
    state.add_meeting(UPN, meeting("LATE", datetime(2027, 3, 28, 21, 30, tzinfo=UTC)))
    state.add_meeting(UPN, meeting("NEXT-DAY", datetime(2027, 3, 28, 22, 30, tzinfo=UTC)))
    body = range_body("2027-03-28T00:00:00+01:00", "2027-03-29T00:00:00+02:00", preview=True)
    _, outcome = run(loopback, received_message(body))
    [view] = loopback.reads()
    query = dict(p.split("=", 1) for p in urlsplit(view.path).query.split("&"))
    assert unquote(query["startDateTime"]) == "2027-03-27T23:00:00Z"
    assert unquote(query["endDateTime"]) == "2027-03-28T22:00:00Z"
    assert [e.id for e in outcome.range_report.selection.selected] == ["EARLY", "LATE"]


def test_throttled_listing_honours_retry_after_in_the_budget(loopback: Loopback) -> None:
    """A 429 with Retry-After on the listing is waited out exactly and the listing resumes;
    a 503 asking for more than the budget left gives the message back, nothing sent."""
    state = loopback.graph.state
    state.max_page_size = 2
    for n in range(3):
        state.add_meeting(UPN, meeting(f"M{n}", at(11 + n)))
    state.script(UPN, "calendarView", Fault(429, {"Retry-After": "1.5"}))
    sleep = RecordingSleep()
    proc = processor(loopback, FakeServiceBus(), sleep=sleep)
    actions = RecordingActions()
    [outcome] = process_all(proc, [received_message(range_body(preview=True))], actions)
    assert outcome.settlement.reason == "Previewed"
    assert sleep.waits == [1.5]
    assert (len(loopback.reads()), outcome.range_report.list_calls) == (3, 2)

    state.script(UPN, "calendarView", Fault(503, {"Retry-After": "90"}))
    bus = FakeServiceBus()
    settled, outcome = run(loopback, received_message(range_body()), bus,
                           CANCEL_RETRY_BUDGET_SECONDS="60")
    assert settled.action == "abandon"
    assert outcome.retry_after == 90
    assert bus.sent == []
