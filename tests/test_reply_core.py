"""The pure parts of replies: which outcomes are answered, where a reply may go, the reply id,
the last-delivery rule, the range fields, and the published reply schema itself."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from cancel_handler.core.contract import CancelRequest, TimeWindow
from cancel_handler.core.decision import DEADLETTER_REASONS, Action, Reason, Settlement
from cancel_handler.core.deliveries import on_last_delivery
from cancel_handler.core.outcome import Outcome, RangeReport
from cancel_handler.core.reply import (
    Refused,
    RequestFacts,
    build_reply,
    reply_destination,
    reply_message_id,
    reply_outcome,
    reply_source,
)
from cancel_handler.core.selection import CalendarEvent, RangeSelection, Skip
from tests.reply_schema import validator

GIVE_BACK = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph answered 503")


@pytest.mark.parametrize(
    ("action", "reason", "expected"),
    [
        (Action.COMPLETE, Reason.CANCELLED, "cancelled"),
        (Action.COMPLETE, Reason.ALREADY_CANCELLED, "alreadyCancelled"),
        (Action.COMPLETE, Reason.RETRY_SCHEDULED, None),
        (Action.ABANDON, Reason.TRANSIENT_FAILURE, None),
        *[(Action.DEADLETTER, reason, "deadLettered") for reason in sorted(DEADLETTER_REASONS)],
        (Action.COMPLETE, Reason.FANNED_OUT, "fannedOut"),
        (Action.COMPLETE, Reason.PREVIEWED, "previewed"),
    ],
)
def test_final_outcomes_are_answered(action: Action, reason, expected: str | None) -> None:
    """Completions that end the request and every dead-letter are answered; give-backs and
    scheduled retries (still in progress) are not."""
    outcome = Outcome(Settlement(action, reason, "d"))
    answer = reply_outcome(outcome)
    assert (answer.value if answer else None) == expected


@pytest.mark.parametrize(
    ("reply_to", "allowed", "expected"),
    [
        (None, ("replies",), None),
        ("", ("replies",), None),
        ("replies", ("replies",), "replies"),
        ("REPLIES", ("Replies",), "Replies"),
        ("other", ("replies",), Refused("reply_to is not in REPLY_TO_ALLOWED")),
        ("replies", (), Refused("replies are off (REPLY_TO_ALLOWED is empty)")),
        (
            "Meeting-Cancellations",
            ("meeting-cancellations",),
            Refused("reply_to names the cancel queue itself"),
        ),
    ],
)
def test_reply_destination(reply_to, allowed, expected) -> None:
    """Only listed entities (case-insensitively, Service Bus names are) and never the cancel
    queue, even if listed."""
    assert reply_destination(reply_to, allowed, "meeting-cancellations") == expected


def test_reply_id_depends_on_the_request_message_id_alone() -> None:
    """Same request MessageId → same UUIDv5 reply id whatever the outcome or time; another
    MessageId → another."""
    first = reply_message_id("req-1")
    assert first == reply_message_id("req-1")
    assert uuid.UUID(first).version == 5
    assert first != reply_message_id("req-2")
    facts = RequestFacts("req-1", reply_to_session_id="s")
    ids = {
        build_reply(Outcome(settlement), facts, entity="r", source="/s", now=now).message_id
        for settlement, now in [
            (Settlement(Action.COMPLETE, Reason.CANCELLED), datetime(2026, 1, 1, tzinfo=UTC)),
            (Settlement(Action.COMPLETE, Reason.ALREADY_CANCELLED), datetime.now(UTC)),
            (Settlement(Action.DEADLETTER, Reason.EVENT_NOT_FOUND, "x"), datetime.now(UTC)),
        ]
    }
    assert ids == {first}


@pytest.mark.parametrize(
    ("settlement", "delivery_count", "max_count", "deadletters"),
    [
        (GIVE_BACK, 10, 10, True),
        (GIVE_BACK, 11, 10, True),
        (GIVE_BACK, 9, 10, False),
        (GIVE_BACK, 1, 1, True),
        (GIVE_BACK, None, 10, False),
        (GIVE_BACK, 0, 10, False),
        (GIVE_BACK, 10, 0, False),
        (GIVE_BACK, True, 1, False),
        (Settlement(Action.COMPLETE, Reason.CANCELLED), 10, 10, False),
        (Settlement(Action.DEADLETTER, Reason.NOT_ORGANIZER, "x"), 10, 10, False),
    ],
    ids=["last", "beyond", "before", "max-1", "unknown", "zero", "off", "bool", "completed", "dlq"],
)
def test_last_delivery_rule(settlement, delivery_count, max_count, deadletters) -> None:
    """Only a give-back on delivery ≥ MAX_DELIVERY_COUNT becomes DeliveriesExhausted; an
    unknown count or the rule off changes nothing."""
    outcome = Outcome(settlement, attempts=3, graph_status=503)
    after = on_last_delivery(outcome, delivery_count=delivery_count, max_delivery_count=max_count)
    if not deadletters:
        assert after == outcome
        return
    assert (after.settlement.action, after.settlement.reason) == (
        Action.DEADLETTER,
        Reason.DELIVERIES_EXHAUSTED,
    )
    assert after.settlement.description == (
        f"still failing on delivery {delivery_count} (MAX_DELIVERY_COUNT={max_count}, the "
        "queue's last); last error: Graph answered 503"
    )
    assert (after.attempts, after.graph_status) == (3, 503)


def test_last_delivery_description_fits_service_bus() -> None:
    """A long last error is cut so the DeliveriesExhausted description stays within Service
    Bus's 4096-character limit, its start intact."""
    long_error = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "x" * 5000)
    after = on_last_delivery(Outcome(long_error), delivery_count=10, max_delivery_count=10)
    description = after.settlement.description
    assert len(description) == 4096
    assert description.startswith(
        "still failing on delivery 10 (MAX_DELIVERY_COUNT=10, the queue's last); last error: xxx"
    )
    assert description.endswith("x …[truncated]")


def _range_reply(reason: str) -> dict:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    selected = CalendarEvent(
        "AAMk1=",
        is_organizer=True,
        is_cancelled=False,
        type="occurrence",
        start=start,
        attendees=2,
        end=start.replace(hour=10),
    )
    skipped = {Skip.NOT_ORGANIZER: 2, Skip.ALREADY_CANCELLED: 1, Skip.NO_ATTENDEES: 0}
    report = RangeReport(
        RangeSelection((selected,), skipped, listed=4),
        list_calls=1,
        child_message_ids=("child-1",) if reason == "FannedOut" else (),
    )
    window = TimeWindow(start, start.replace(day=9), "2026-03-02T09:00:00Z", "2026-03-09T09:00Z")
    outcome = Outcome(
        Settlement(Action.COMPLETE, Reason(reason)),
        attempts=1,
        graph_status=200,
        request=CancelRequest(
            "adele.vance@contoso.com", window=window, preview=reason == "Previewed"
        ),
        range_report=report,
    )
    reply = build_reply(
        outcome, RequestFacts("range-1"), entity="r", source="/cancel-handler/queues/q"
    )
    assert reply is not None
    return reply.event()


@pytest.mark.parametrize("reason", ["FannedOut", "Previewed"])
def test_range_outcomes_plug_into_the_reply(reason: str) -> None:
    """A range's selected events, children's MessageIds and skip counts go into `data` and
    the result matches the published schema."""
    event = _range_reply(reason)
    validator().validate(event)
    data = event["data"]
    assert data["outcome"] == reason[0].lower() + reason[1:]
    assert data["events"] == [
        {
            "eventId": "AAMk1=",
            "start": "2026-03-02T09:00:00Z",
            "end": "2026-03-02T10:00:00Z",
            "type": "occurrence",
        }
    ]
    assert data["skipped"] == {"notOrganizer": 2, "alreadyCancelled": 1}
    assert data["childMessageIds"] == (["child-1"] if reason == "FannedOut" else [])
    assert (data["startDateTime"], data["endDateTime"]) == (
        "2026-03-02T09:00:00Z",
        "2026-03-09T09:00Z",
    )
    assert data.get("preview", False) is (reason == "Previewed")
    assert "eventId" not in data


def test_child_reply_names_its_parent() -> None:
    """A request fanned out from a range carries parentMessageId into its reply."""
    reply = build_reply(
        Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED), attempts=1, graph_status=202),
        RequestFacts("child-1", parent_message_id="range-1"),
        entity="r",
        source="/cancel-handler/queues/q",
    )
    assert reply is not None
    event = reply.event()
    validator().validate(event)
    assert event["data"]["parentMessageId"] == "range-1"


def test_long_dead_letter_description_is_clipped_in_the_reply() -> None:
    """A 4096-character dead-letter description travels clipped to 1024 characters."""
    outcome = Outcome(Settlement(Action.DEADLETTER, Reason.GRAPH_REJECTED, "x" * 4096))
    reply = build_reply(outcome, RequestFacts("m"), entity="r", source="/cancel-handler/queues/q")
    assert reply is not None
    description = reply.event()["data"]["description"]
    assert len(description) == 1024
    assert description.endswith("[truncated]")


def _valid_event() -> dict:
    reply = build_reply(
        Outcome(Settlement(Action.DEADLETTER, Reason.NOT_ORGANIZER, "Graph 400"), attempts=1),
        RequestFacts("m-1", correlation_id="c-1"),
        entity="r",
        source="/cancel-handler/queues/q",
    )
    assert reply is not None
    return json.loads(reply.body)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e["data"].update(comment="secret"),
        lambda e: e["data"].pop("description"),
        lambda e: e["data"].update(outcome="cancelledish"),
        lambda e: e.update(specversion="0.3"),
        lambda e: e.update(id="not-a-uuid"),
        lambda e: e["data"].update(reason="Whatever"),
        lambda e: (e["data"].update(outcome="cancelled"), None),
    ],
    ids=[
        "comment",
        "no-description",
        "bad-outcome",
        "specversion",
        "id",
        "reason",
        "description-on-cancelled",
    ],
)
def test_schema_rejects_what_a_reply_must_not_be(breakage) -> None:
    """The schema the tests validate replies with does reject a comment, a missing or a
    surplus description, unknown outcomes and reasons, and non-CloudEvents 1.0 envelopes."""
    event = _valid_event()
    validator().validate(event)
    broken = copy.deepcopy(event)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(broken)


@pytest.mark.parametrize("meetings", [500, 800], ids=["default", "ceiling"])
def test_a_fanned_out_reply_of_the_limit_fits_a_standard_namespace(meetings: int) -> None:
    """A `fannedOut` reply for as many meetings as RANGE_MAX_EVENTS allows (500 by default, at
    most 800) with Graph-sized immutable ids stays under the 256 KB message limit of Service Bus
    Standard, so the parent is never given back for a reply too large to send."""
    start = datetime(2027, 3, 1, tzinfo=UTC)
    selected = tuple(
        CalendarEvent(
            f"AAMkAGI1{'x' * 144}{n:04}=",
            is_organizer=True,
            is_cancelled=False,
            type="occurrence",
            start=start,
            attendees=1,
            end=start,
        )
        for n in range(meetings)
    )
    report = RangeReport(
        RangeSelection(selected), child_message_ids=tuple(str(uuid.uuid4()) for _ in selected)
    )
    window = TimeWindow(
        start, start.replace(month=12), "2027-03-01T00:00:00Z", "2027-12-01T00:00:00Z"
    )
    outcome = Outcome(
        Settlement(Action.COMPLETE, Reason.FANNED_OUT),
        attempts=5,
        request=CancelRequest("a@contoso.com", window=window),
        range_report=report,
    )
    reply = build_reply(outcome, RequestFacts("m-1"), entity="r", source="/cancel-handler/queues/q")
    assert reply is not None and len(reply.event()["data"]["events"]) == meetings
    assert len(reply.body) < 256 * 1024


#: An instant given with the offset of Central European Time (UTC+01:00).
CET_MORNING = datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))


def test_reply_body_is_compact_utf8_json(host_three_hours_west: None) -> None:
    """The whole body, byte for byte: compact JSON, non-ASCII text as UTF-8 (not \\u escapes),
    the time in UTC with milliseconds and `Z` whatever the offset given and the host's zone,
    and the reply id fixed for `req-7f3a` forever."""
    outcome = Outcome(
        Settlement(Action.COMPLETE, Reason.CANCELLED),
        attempts=1,
        graph_status=202,
        request_id="rid-202",
    )
    reply = build_reply(
        outcome,
        RequestFacts("req-7f3a", correlation_id="Buchung-Zürich-4711"),
        entity="cancel-replies",
        source="/cancel-handler/queues/cancel-requests",
        now=CET_MORNING,
    )
    assert reply is not None
    assert (
        reply.body
        == (
            '{"specversion":"1.0","id":"79a3a015-3136-5a3f-97bd-44978bcdacaf",'
            '"source":"/cancel-handler/queues/cancel-requests","type":"cancel-handler.outcome.v1",'
            '"time":"2026-03-02T09:30:15.123Z","subject":"cancelled",'
            '"datacontenttype":"application/json","data":{"requestMessageId":"req-7f3a",'
            '"correlationId":"Buchung-Zürich-4711","outcome":"cancelled","reason":"Cancelled",'
            '"graphStatus":202,"graphRequestId":"rid-202","attempts":1}}'
        ).encode()
    )


def test_range_event_times_are_utc_whatever_the_host_zone(host_three_hours_west: None) -> None:
    """Selected events whose times Graph gave with an offset are listed in UTC with `Z`, also
    on a host whose local zone is not UTC."""
    selected = CalendarEvent(
        "AAMk2=",
        is_organizer=True,
        is_cancelled=False,
        type="singleInstance",
        start=CET_MORNING,
        attendees=3,
        end=CET_MORNING + timedelta(hours=1),
    )
    report = RangeReport(RangeSelection((selected,), {}, listed=1), list_calls=1)
    outcome = Outcome(
        Settlement(Action.COMPLETE, Reason.PREVIEWED), attempts=1, range_report=report
    )
    reply = build_reply(outcome, RequestFacts("range-2"), entity="r", source="/s", now=CET_MORNING)
    assert reply is not None
    assert reply.event()["data"]["events"] == [
        {
            "eventId": "AAMk2=",
            "start": "2026-03-02T09:30:15.123456Z",
            "end": "2026-03-02T10:30:15.123456Z",
            "type": "singleInstance",
        }
    ]


def test_reply_source_names_the_cancel_queue_or_unknown() -> None:
    """The CloudEvents `source` names the queue the function listens on, and `unknown` when
    CANCEL_QUEUE_NAME is not set (it must never be empty)."""
    assert reply_source("cancel-requests") == "/cancel-handler/queues/cancel-requests"
    assert reply_source("") == "/cancel-handler/queues/unknown"


def test_settled_replaces_only_the_settlement_and_clips_its_description() -> None:
    """Outcome.settled keeps attempts, status and the rest, and cuts the description to Service
    Bus's 4096 characters as the stages that re-settle an outcome need."""
    before = Outcome(
        Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph 503"),
        attempts=3,
        graph_status=503,
        event_id="AAMk1=",
    )
    after = before.settled(Action.COMPLETE, Reason.RETRY_SCHEDULED, "y" * 5000)
    assert (after.settlement.action, after.settlement.reason) == (
        Action.COMPLETE,
        Reason.RETRY_SCHEDULED,
    )
    assert len(after.settlement.description) == 4096
    assert (after.attempts, after.graph_status, after.event_id) == (3, 503, "AAMk1=")
    assert before.settled(Action.COMPLETE, Reason.RETRY_SCHEDULED, "short").settlement == (
        Settlement(Action.COMPLETE, Reason.RETRY_SCHEDULED, "short")
    )
