"""The pure range rules and Graph's event JSON, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cancel_handler.core.contract import TimeWindow
from cancel_handler.core.decision import Settlement
from cancel_handler.core.selection import CalendarEvent, Skip, decide_ical_matches, select_range
from cancel_handler.graph.events import calendar_event, event_list

START = datetime(2027, 5, 1, tzinfo=UTC)
END = START + timedelta(days=7)
WINDOW = TimeWindow(START, END, "2027-05-01T00:00:00Z", "2027-05-08T00:00:00Z")
NOW = START - timedelta(days=1)


def event(event_id: str, start: datetime | None, **options: object) -> CalendarEvent:
    return CalendarEvent(event_id, options.pop("organizer", True),
                         options.pop("cancelled", False), start=start,
                         attendees=options.pop("attendees", 1), **options)


def test_window_bounds_are_start_inclusive_end_exclusive() -> None:
    """A meeting starting exactly at startDateTime is selected; one a microsecond earlier is
    'started before the window'; one at endDateTime is outside it."""
    selection = select_range(
        [event("AT-START", START), event("EARLIER", START - timedelta(microseconds=1)),
         event("AT-END", END)], WINDOW, NOW)
    assert [e.id for e in selection.selected] == ["AT-START"]
    assert selection.skipped == {Skip.STARTED_BEFORE_WINDOW: 1, Skip.AFTER_WINDOW: 1}


def test_each_event_counts_once_under_its_first_cause() -> None:
    """A cancelled attendee copy counts as cancelled only; a repeated id counts once."""
    selection = select_range(
        [event("X", START, cancelled=True, organizer=False), event("Y", START),
         event("Y", START), event("M", START, type="seriesMaster"),
         event("BAD/ID", START), event("NO-START", None)], WINDOW, NOW)
    assert [e.id for e in selection.selected] == ["Y"]
    assert selection.listed == 5
    assert selection.skipped == {Skip.ALREADY_CANCELLED: 1, Skip.SERIES_MASTER: 1,
                                 Skip.UNREADABLE: 2}
    assert selection.describe_skipped() == "unreadable=2, alreadyCancelled=1, seriesMaster=1"


def test_graph_utc_times_with_seven_fraction_digits_are_read() -> None:
    """Graph's `dateTimeTimeZone` in UTC (seven fraction digits) becomes an aware instant;
    another time zone is not guessed."""
    item = {"id": "E", "isOrganizer": True, "isCancelled": False, "type": "occurrence",
            "start": {"dateTime": "2027-05-02T09:30:00.1234567", "timeZone": "UTC"},
            "attendees": [{}, {}]}
    parsed = calendar_event(item)
    assert parsed.start == datetime(2027, 5, 2, 9, 30, 0, 123456, tzinfo=UTC)
    assert (parsed.attendees, parsed.type) == (2, "occurrence")
    item["start"] = {"dateTime": "2027-05-02T09:30:00.0000000",
                     "timeZone": "W. Europe Standard Time"}
    assert calendar_event(item).start is None


def test_a_list_without_value_is_refused() -> None:
    """An answer that is not a list of events raises instead of reading as 'no events'."""
    for document in (None, {}, {"value": {}}, {"value": [], "@odata.nextLink": 5}):
        try:
            event_list(document)
        except ValueError:
            continue
        raise AssertionError(f"accepted {document!r}")


def test_a_paged_lookup_is_ambiguous_even_with_one_match_on_the_page() -> None:
    """Graph saying there are more pages of matches means several events share the UID."""
    found = decide_ical_matches([event("E1", None)], cancel_may_have_happened=False, more=True)
    assert isinstance(found, Settlement)
    assert found.reason == "AmbiguousEvent"
    assert found.description.startswith("at least 1 events share that iCalUId")
    assert decide_ical_matches([event("E1", None)], cancel_may_have_happened=False) == "E1"
