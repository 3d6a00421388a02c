"""Cancel by iCalUId end to end: real received messages, azure-identity against the loopback
identity endpoint, httpx against the Graph simulator's `/events?$filter=iCalUId eq '…'`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cancel_handler.devtools.graph_simulator import Fault, Meeting
from cancel_handler.graph.lookup import ical_uid_filter, lookup_url
from tests.conftest import UPN, Loopback, process_all
from tests.helpers import RecordingActions, RecordingSleep, received_message

SOON = datetime.now(UTC) + timedelta(days=3)


def meeting(event_id: str, ical_uid: str, **options: object) -> Meeting:
    """A meeting three days from now."""
    return Meeting(event_id, SOON, SOON + timedelta(hours=1), ical_uid=ical_uid, **options)


def by_uid(ical_uid: str, **extra: object) -> dict:
    """A request body naming the event by its iCalUId."""
    return {"userPrincipalName": UPN, "iCalUId": ical_uid, **extra}


def run(loopback: Loopback, body: dict, *, sleep: RecordingSleep | None = None,
        delivery_count: int = 1, **settings: str):
    """Process one message; return (settlement, outcome)."""
    actions = RecordingActions()
    message = received_message(body, delivery_count=delivery_count)
    [outcome] = process_all(loopback.processor(sleep, **settings), [message], actions)
    return actions.only, outcome


def test_one_organizer_match_is_cancelled_through_the_cancel_call(loopback: Loopback) -> None:
    """The lookup asks for immutable ids and four properties, then the found id is cancelled
    with the comment and the message completes."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-1", "UID-1"))
    settled, outcome = run(loopback, by_uid("UID-1", comment="Room closed."))
    assert settled.action == "complete"
    assert outcome.event_id == "IMM-1"
    [lookup] = loopback.reads()
    assert 'IdType="ImmutableId"' in lookup.prefer
    query = urlsplit(lookup.path).query
    assert "$select=id%2CisOrganizer%2CisCancelled%2Ctype" in query
    [cancel] = loopback.cancels()
    assert (cancel.event_id, cancel.comment) == ("IMM-1", "Room closed.")


def test_quotes_in_an_icaluid_are_doubled_and_the_query_percent_encoded(
    loopback: Loopback,
) -> None:
    """A UID with single and double quotes, spaces, '&', '#', '+' and '/' still matches exactly
    its event; on the wire no quote, space, slash or delimiter of the value is left raw."""
    uid = "O'Brien's \"party\" & co #1 + 'x'/2"
    loopback.graph.state.add_meeting(UPN, meeting("IMM-Q", uid))
    settled, _ = run(loopback, by_uid(uid))
    assert settled.action == "complete"
    [lookup] = loopback.reads()
    raw_filter = urlsplit(lookup.path).query.split("&")[0]
    assert raw_filter.startswith("$filter=")
    assert not re.search(r"['\" &#+/]", raw_filter.removeprefix("$filter="))
    assert unquote(raw_filter.removeprefix("$filter=")) == (
        "iCalUId eq 'O''Brien''s \"party\" & co #1 + ''x''/2'"
    )
    assert [c.event_id for c in loopback.cancels()] == ["IMM-Q"]


def test_no_value_widens_the_filter(loopback: Loopback) -> None:
    """A UID written to end the literal and add a condition matches nothing: the events it
    tries to reach stay untouched and nothing is cancelled."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-A", "A"))
    loopback.graph.state.add_meeting(UPN, meeting("IMM-B", "B"))
    settled, _ = run(loopback, by_uid("A' or iCalUId ne 'A"))
    assert (settled.action, settled.reason) == ("deadletter", "EventNotFound")
    assert loopback.cancels() == []


@given(st.text(min_size=1, max_size=60))
def test_filter_literal_round_trips_any_uid(uid: str) -> None:
    """For any UID the filter is exactly one OData equality whose literal decodes to the UID,
    and the query carries it percent-encoded with nothing left raw but the parameter names."""
    match = re.fullmatch(r"iCalUId eq '((?:[^']|'')*)'", ical_uid_filter(uid))
    assert match is not None
    assert match.group(1).replace("''", "'") == uid
    query = urlsplit(lookup_url("https://graph.microsoft.com/v1.0", "a@b.c", uid)).query
    names = [pair.split("=", 1)[0] for pair in query.split("&")]
    assert names == ["$filter", "$select"]


def test_no_match_on_a_first_delivery_is_event_not_found(loopback: Loopback) -> None:
    """No event with the UID on a first delivery: dead-letter EventNotFound, no cancel call."""
    settled, _ = run(loopback, by_uid("UNKNOWN"))
    assert (settled.action, settled.reason) == ("deadletter", "EventNotFound")
    assert "iCalUId" in settled.description
    assert loopback.cancels() == []


def test_no_match_on_a_redelivery_is_already_cancelled(loopback: Loopback, caplog) -> None:
    """On a redelivery the event may have been cancelled by the earlier attempt: complete."""
    caplog.set_level("INFO", logger="cancel_handler")
    settled, outcome = run(loopback, by_uid("UNKNOWN"), delivery_count=2)
    assert settled.action == "complete"
    assert outcome.settlement.reason == "AlreadyCancelled"


def test_a_read_that_timed_out_does_not_count_as_a_cancel(loopback: Loopback) -> None:
    """A lookup whose connection was reset is retried; its unknown outcome cannot have
    cancelled anything, so no match afterwards is still EventNotFound on a first delivery."""
    loopback.graph.state.script(UPN, "events", Fault(reset=True))
    settled, outcome = run(loopback, by_uid("UNKNOWN"), sleep=RecordingSleep())
    assert (settled.action, settled.reason) == ("deadletter", "EventNotFound")
    assert outcome.attempts == 2


def test_cancelled_match_completes_without_a_cancel_call(loopback: Loopback) -> None:
    """One match that isCancelled: complete as AlreadyCancelled, Graph's cancel not called."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-C", "UID-C", cancelled=True))
    settled, outcome = run(loopback, by_uid("UID-C"))
    assert (settled.action, outcome.settlement.reason) == ("complete", "AlreadyCancelled")
    assert outcome.event_id == "IMM-C"  # the reply names the event the lookup found
    assert loopback.cancels() == []


def lookup_page(loopback: Loopback, ids: list[str], next_skip: int | None) -> Fault:
    """A scripted lookup answer listing organizer events `ids`, linking to `$skip=next_skip`."""
    page: dict = {
        "value": [
            {"id": event_id, "isOrganizer": True, "isCancelled": False, "type": "singleInstance"}
            for event_id in ids
        ]
    }
    if next_skip is not None:
        link = f"{loopback.graph.graph_base_url}/users/{UPN}/events?$skip={next_skip}"
        page["@odata.nextLink"] = link
    return Fault(200, {"Content-Type": "application/json"}, json.dumps(page).encode())


def test_a_second_match_on_the_next_page_is_ambiguous(loopback: Loopback) -> None:
    """One match on a page that links to a page with another: the lookup reads both, then
    dead-letters AmbiguousEvent naming both ids, cancels nothing and names no event as found."""
    loopback.graph.state.script(
        UPN, "events", lookup_page(loopback, ["IMM-P1"], 1), lookup_page(loopback, ["IMM-P2"], 2)
    )
    settled, outcome = run(loopback, by_uid("UID-P"))
    assert (settled.action, settled.reason) == ("deadletter", "AmbiguousEvent")
    assert settled.description == (
        "at least 2 events share that iCalUId in the mailbox and are not cancelled; nothing "
        "was cancelled; send the eventId of the one to cancel: IMM-P1, IMM-P2"
    )
    assert len(loopback.reads()) == 2
    assert outcome.event_id is None
    assert loopback.cancels() == []


def test_a_match_after_an_empty_page_is_found_and_cancelled(loopback: Loopback) -> None:
    """A filtered list may answer an empty page with a next link: the lookup reads on and
    cancels the one match of the last page (not EventNotFound)."""
    loopback.graph.state.add_event(UPN, "IMM-E2")
    loopback.graph.state.script(
        UPN, "events", lookup_page(loopback, [], 1), lookup_page(loopback, ["IMM-E2"], None)
    )
    settled, outcome = run(loopback, by_uid("UID-E"))
    assert (settled.action, outcome.settlement.reason) == ("complete", "Cancelled")
    assert len(loopback.reads()) == 2
    assert [cancel.event_id for cancel in loopback.cancels()] == ["IMM-E2"]


def test_a_lookup_page_linking_to_itself_is_read_once_more_then_dead_lettered(
    loopback: Loopback,
) -> None:
    """Empty pages that all link to the same page end after that page is asked for the second
    time: GraphBadRequest saying why, no cancel."""
    loopback.graph.state.script(UPN, "events", *[lookup_page(loopback, [], 1)] * 5)
    settled, _ = run(loopback, by_uid("UID-L"))
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert settled.description == (
        "Graph's @odata.nextLink leads back to a page already read (after 2 page(s)), so the "
        "listing would never end; the listing was stopped and nothing was cancelled"
    )
    assert len(loopback.reads()) == 2
    assert loopback.cancels() == []


def test_a_lookup_reads_at_most_twenty_pages(loopback: Loopback) -> None:
    """Empty pages each linking to a new page: the lookup stops after 20 pages
    (GraphBadRequest, no cancel)."""
    pages = [lookup_page(loopback, [], n + 1) for n in range(25)]
    loopback.graph.state.script(UPN, "events", *pages)
    settled, _ = run(loopback, by_uid("UID-M"))
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert settled.description == (
        "Graph's list still had a next page after 20 pages, the most one listing reads; the "
        "listing was stopped and nothing was cancelled"
    )
    assert len(loopback.reads()) == 20


def test_the_live_match_beside_a_cancelled_one_is_cancelled(loopback: Loopback) -> None:
    """Two events share the UID and one is cancelled already: the other one is cancelled and
    named in the outcome."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-OLD", "UID-2", cancelled=True))
    loopback.graph.state.add_meeting(UPN, meeting("IMM-NEW", "UID-2"))
    settled, outcome = run(loopback, by_uid("UID-2"))
    assert (settled.action, outcome.settlement.reason) == ("complete", "Cancelled")
    assert outcome.event_id == "IMM-NEW"
    assert [cancel.event_id for cancel in loopback.cancels()] == ["IMM-NEW"]


def test_two_cancelled_matches_complete_as_already_cancelled(loopback: Loopback) -> None:
    """Every match cancelled: AlreadyCancelled, no cancel call, no event named."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-C1", "UID-3", cancelled=True))
    loopback.graph.state.add_meeting(UPN, meeting("IMM-C2", "UID-3", cancelled=True))
    settled, outcome = run(loopback, by_uid("UID-3"))
    assert (settled.action, outcome.settlement.reason) == ("complete", "AlreadyCancelled")
    assert outcome.event_id is None
    assert loopback.cancels() == []


def test_attendee_copy_is_not_organizer_without_a_cancel_call(loopback: Loopback) -> None:
    """One match the mailbox does not organize: dead-letter NotOrganizer, cancel not called."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-N", "UID-N", organizer=False))
    settled, _ = run(loopback, by_uid("UID-N"))
    assert (settled.action, settled.reason) == ("deadletter", "NotOrganizer")
    assert "IMM-N" in settled.description
    assert loopback.cancels() == []


def test_several_matches_are_ambiguous_and_nothing_is_cancelled(loopback: Loopback) -> None:
    """Two events share the UID: dead-letter AmbiguousEvent naming the count and both ids."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-D1", "UID-D"))
    loopback.graph.state.add_meeting(UPN, meeting("IMM-D2", "UID-D"))
    settled, _ = run(loopback, by_uid("UID-D"))
    assert (settled.action, settled.reason) == ("deadletter", "AmbiguousEvent")
    assert settled.description.startswith("2 events share that iCalUId")
    assert "IMM-D1" in settled.description and "IMM-D2" in settled.description
    assert loopback.cancels() == []


def test_series_master_uid_cancels_the_series(loopback: Loopback) -> None:
    """A series master's UID finds the master (not its occurrences): the master id is
    cancelled, which cancels the series."""
    loopback.graph.state.add_series(UPN, "SERIES", SOON, 3)
    settled, outcome = run(loopback, by_uid("UID-SERIES"))
    assert settled.action == "complete"
    assert [c.event_id for c in loopback.cancels()] == ["SERIES"] == [outcome.event_id]


def test_unknown_mailbox_is_mailbox_not_found(loopback: Loopback) -> None:
    """A 404 on the lookup itself means no such mailbox: dead-letter MailboxNotFound."""
    loopback.graph.state.missing_mailboxes.add(UPN)
    settled, _ = run(loopback, by_uid("UID-1"))
    assert (settled.action, settled.reason) == ("deadletter", "MailboxNotFound")
    assert "ErrorInvalidUser" in settled.description


def test_forbidden_lookup_is_graph_forbidden(loopback: Loopback) -> None:
    """A 403 on the lookup: dead-letter GraphForbidden, as for the cancel call."""
    loopback.graph.state.forbidden_mailboxes.add(UPN)
    settled, _ = run(loopback, by_uid("UID-1"))
    assert (settled.action, settled.reason) == ("deadletter", "GraphForbidden")


def test_bad_request_lookup_is_graph_bad_request(loopback: Loopback) -> None:
    """A 400 on the lookup: dead-letter GraphBadRequest naming Graph's error code, never
    retried."""
    body = b'{"error": {"code": "ErrorInvalidProperty", "message": "Invalid filter."}}'
    loopback.graph.state.script(UPN, "events", Fault(400, body=body))
    settled, _ = run(loopback, by_uid("UID-1"))
    assert (settled.action, settled.reason) == ("deadletter", "GraphBadRequest")
    assert "ErrorInvalidProperty" in settled.description
    assert len(loopback.reads()) == 1


def test_throttled_lookup_honours_retry_after_then_cancels(loopback: Loopback) -> None:
    """A 429 with a fractional Retry-After on the lookup is waited out exactly, then the
    event is found and cancelled."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-T", "UID-T"))
    loopback.graph.state.script(UPN, "events", Fault(429, {"Retry-After": "2.5"}))
    sleep = RecordingSleep()
    settled, outcome = run(loopback, by_uid("UID-T"), sleep=sleep)
    assert settled.action == "complete"
    assert sleep.waits == [2.5]
    assert outcome.attempts == 3  # lookup, lookup again, cancel


def test_lookup_and_cancel_share_one_wait_budget(loopback: Loopback) -> None:
    """40 s waited for the lookup leave 20 s of a 60 s budget: a cancel asking for 30 s more
    gives the message back instead of waiting past the budget."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-B", "UID-B"))
    loopback.graph.state.script(UPN, "events", Fault(503, {"Retry-After": "40"}))
    loopback.graph.state.script(UPN, "IMM-B", Fault(503, {"Retry-After": "30"}))
    sleep = RecordingSleep()
    settled, outcome = run(
        loopback, by_uid("UID-B"), sleep=sleep, CANCEL_RETRY_BUDGET_SECONDS="60"
    )
    assert settled.action == "abandon"
    assert sleep.waits == [40]
    assert outcome.retry_after == 30


def test_rejected_token_on_the_lookup_is_refreshed_once(loopback: Loopback) -> None:
    """A 401 on the lookup fetches a genuinely new token from the identity endpoint and the
    lookup is repeated without waiting; then the event is cancelled."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-R", "UID-R"))
    loopback.graph.state.script(UPN, "events", Fault(401))
    sleep = RecordingSleep()
    settled, _ = run(loopback, by_uid("UID-R"), sleep=sleep)
    assert settled.action == "complete"
    assert sleep.waits == []
    first, second = (call.token for call in loopback.reads())
    assert first != second
    assert loopback.cancels()[0].token == second


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_transient_lookup_answers_are_retried(loopback: Loopback, status: int) -> None:
    """408 and 5xx on the lookup are retried with backoff, then the event is cancelled."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-5", "UID-5"))
    loopback.graph.state.script(UPN, "events", Fault(status))
    sleep = RecordingSleep()
    settled, _ = run(loopback, by_uid("UID-5"), sleep=sleep)
    assert settled.action == "complete"
    assert len(sleep.waits) == 1 and 0.25 <= sleep.waits[0] <= 0.5
    assert [c.status for c in loopback.reads()] == [status, 200]


@pytest.mark.parametrize("body", [b'{"unexpected": true}', b"[]"])
def test_a_lookup_answer_without_a_value_list_is_retried(loopback: Loopback, body: bytes) -> None:
    """A 200 lookup answer that is not a list of events (an object without `value`, or a JSON
    array) is retried like a 5xx; the next, proper answer finds the event and it is cancelled."""
    loopback.graph.state.add_meeting(UPN, meeting("IMM-G", "UID-G"))
    loopback.graph.state.script(UPN, "events", Fault(200, body=body))
    settled, outcome = run(loopback, by_uid("UID-G"), sleep=RecordingSleep())
    assert settled.action == "complete"
    assert outcome.attempts == 3  # lookup, lookup again, cancel
    assert [c.event_id for c in loopback.cancels()] == ["IMM-G"]


def test_lookup_answers_that_never_hold_a_list_give_the_message_back_saying_so(
    loopback: Loopback,
) -> None:
    """When every lookup answer lacks the event list the message is given back, and the
    description says Graph answered 200 without the list (not a crash's text)."""
    garbage = [Fault(200, body=b'{"unexpected": true}') for _ in range(12)]
    loopback.graph.state.script(UPN, "events", *garbage)
    settled, outcome = run(loopback, by_uid("UID-G"), sleep=RecordingSleep())
    assert settled.action == "abandon"
    assert outcome.settlement.description.startswith(
        "Graph answered 200 but Graph's answer has no 'value' list of events; gave up after"
    )
    assert loopback.cancels() == []
