"""The pure range rules and Graph's event JSON, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cancel_handler.core.contract import TimeWindow
from cancel_handler.core.decision import Settlement
from cancel_handler.core.selection import CalendarEvent, Skip, decide_ical_matches, select_range
from cancel_handler.graph.events import calendar_event, event_list

START = datetime(2027, 5, 1, tzinfo=UTC)
END = START + timedelta(days=7)
WINDOW = TimeWindow(START, END, "2027-05-01T00:00:00Z", "2027-05-08T00:00:00Z")
NOW = START - timedelta(days=1)


def event(event_id: str, start: datetime | None, **options: object) -> CalendarEvent:
    return CalendarEvent(
        event_id,
        options.pop("organizer", True),
        options.pop("cancelled", False),
        start=start,
        attendees=options.pop("attendees", 1),
        **options,
    )


def test_window_bounds_are_start_inclusive_end_exclusive() -> None:
    """A meeting starting exactly at startDateTime is selected; one a microsecond earlier is
    'started before the window'; one at endDateTime is outside it."""
    selection = select_range(
        [
            event("AT-START", START),
            event("EARLIER", START - timedelta(microseconds=1)),
            event("AT-END", END),
        ],
        WINDOW,
        NOW,
    )
    assert [e.id for e in selection.selected] == ["AT-START"]
    assert selection.skipped == {Skip.STARTED_BEFORE_WINDOW: 1, Skip.AFTER_WINDOW: 1}


def test_each_event_counts_once_under_its_first_cause() -> None:
    """A cancelled attendee copy counts as cancelled only; a repeated id counts once."""
    selection = select_range(
        [
            event("X", START, cancelled=True, organizer=False),
            event("Y", START),
            event("Y", START),
            event("M", START, type="seriesMaster"),
            event("BAD/ID", START),
            event("NO-START", None),
        ],
        WINDOW,
        NOW,
    )
    assert [e.id for e in selection.selected] == ["Y"]
    assert selection.listed == 5
    assert selection.skipped == {
        Skip.ALREADY_CANCELLED: 1,
        Skip.SERIES_MASTER: 1,
        Skip.UNREADABLE: 2,
    }
    assert selection.describe_skipped() == "unreadable=2, alreadyCancelled=1, seriesMaster=1"


def test_graph_utc_times_with_seven_fraction_digits_are_read() -> None:
    """Graph's `dateTimeTimeZone` in UTC (seven fraction digits) becomes an aware instant;
    another time zone is not guessed."""
    item = {
        "id": "E",
        "isOrganizer": True,
        "isCancelled": False,
        "type": "occurrence",
        "start": {"dateTime": "2027-05-02T09:30:00.1234567", "timeZone": "UTC"},
        "attendees": [{}, {}],
    }
    parsed = calendar_event(item)
    assert parsed.start == datetime(2027, 5, 2, 9, 30, 0, 123456, tzinfo=UTC)
    assert (parsed.attendees, parsed.type) == (2, "occurrence")
    item["start"] = {
        "dateTime": "2027-05-02T09:30:00.0000000",
        "timeZone": "W. Europe Standard Time",
    }
    assert calendar_event(item).start is None


def test_a_list_without_value_is_refused() -> None:
    """An answer that is not a list of events raises instead of reading as 'no events'."""
    for document in (None, {}, {"value": {}}, {"value": [], "@odata.nextLink": 5}):
        try:
            event_list(document)
        except ValueError:
            continue
        raise AssertionError(f"accepted {document!r}")


def test_a_lookup_stopped_with_pages_left_is_ambiguous() -> None:
    """A lookup that stopped before Graph's last page (`more`) says "at least"."""
    found = decide_ical_matches(
        [event("E1", None), event("E2", None)], may_be_cancelled_already=False, more=True
    )
    assert isinstance(found, Settlement)
    assert found.reason == "AmbiguousEvent"
    assert found.description.startswith("at least 2 events share that iCalUId")
    assert decide_ical_matches([event("E1", None)], may_be_cancelled_already=False) == "E1"


def test_a_next_link_that_is_not_a_string_is_named() -> None:
    """A non-string `@odata.nextLink` is refused with a message naming that member."""
    with pytest.raises(ValueError) as caught:
        event_list({"value": [], "@odata.nextLink": 5})
    assert str(caught.value) == "Graph's '@odata.nextLink' is not a string"


def test_an_event_that_is_not_an_object_reads_as_unreadable() -> None:
    """A list item that is not a JSON object becomes an event with no id, flags or times."""
    assert calendar_event("E1") == CalendarEvent(
        "", is_organizer=False, is_cancelled=False, type=None, start=None, attendees=0, end=None
    )


def test_members_of_the_wrong_type_are_not_used() -> None:
    """A numeric id, a numeric type and attendees that are not a list are read as absent."""
    parsed = calendar_event({"id": 7, "type": 3, "attendees": {"a": 1}, "isOrganizer": True})
    assert (parsed.id, parsed.type, parsed.attendees, parsed.is_organizer) == ("", None, 0, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-05-02T09:30:00", datetime(2027, 5, 2, 9, 30, tzinfo=UTC)),
        ("2027-05-02T09:30:00.5", datetime(2027, 5, 2, 9, 30, 0, 500000, tzinfo=UTC)),
        ("2027-05-02T09:30:00.000001", datetime(2027, 5, 2, 9, 30, 0, 1, tzinfo=UTC)),
        ("2027-05-02T09:30:00.5.5", None),
        ("2027-05-02T09:30:00.5x", None),
        ("2027-05-02T09:30:00+02:00", None),
        ("2027-05-02T09:30:00.5+02:00", None),
    ],
)
def test_utc_date_times_are_read_exactly_or_not_at_all(text: str, expected: object) -> None:
    """A UTC `dateTime` without or with a short fraction is read to the microsecond; a second
    dot, a non-digit fraction or an offset make it unreadable rather than guessed."""
    item = {"id": "E", "start": {"dateTime": text, "timeZone": "UTC"}}
    assert calendar_event(item).start == expected


def test_every_member_of_a_graph_event_is_read() -> None:
    """id, both flags, type, start, end and the attendee count all come from Graph's item."""
    item = {
        "id": "AAMk1=",
        "isOrganizer": False,
        "isCancelled": True,
        "type": "exception",
        "start": {"dateTime": "2027-05-02T09:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2027-05-02T10:00:00.0000000", "timeZone": "UTC"},
        "attendees": [{}, {}, {}],
    }
    assert calendar_event(item) == CalendarEvent(
        "AAMk1=",
        is_organizer=False,
        is_cancelled=True,
        type="exception",
        start=datetime(2027, 5, 2, 9, 30, tzinfo=UTC),
        attendees=3,
        end=datetime(2027, 5, 2, 10, 0, tzinfo=UTC),
    )
