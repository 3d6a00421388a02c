"""The calendarView request a date range makes, written out as Graph must receive it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cancel_handler.core.contract import TimeWindow, utc_text
from cancel_handler.graph.calendar_view import first_page_url, page_limit

#: 2027-05-01 09:00 in UTC+02:00 is 07:00 UTC.
MORNING_PLUS_TWO = datetime(2027, 5, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))


def test_the_first_page_asks_for_the_window_in_utc_the_fields_read_and_100_per_page() -> None:
    """Graph reads `$top` and `$select` by their exact names; values are percent-encoded."""
    window = TimeWindow(
        MORNING_PLUS_TWO,
        MORNING_PLUS_TWO + timedelta(days=7, microseconds=500),
        "2027-05-01T09:00:00+02:00",
        "2027-05-08T09:00:00.0005+02:00",
    )
    assert first_page_url("https://graph.microsoft.com/v1.0", "ann@contoso.example", window) == (
        "https://graph.microsoft.com/v1.0/users/ann%40contoso.example/calendarView"
        "?startDateTime=2027-05-01T07%3A00%3A00Z"
        "&endDateTime=2027-05-08T07%3A00%3A00.000500Z"
        "&$select=id%2Ctype%2CisOrganizer%2CisCancelled%2Cstart%2Cend%2Cattendees"
        "&$top=100"
    )


def test_instants_are_sent_in_utc_whatever_the_hosts_zone(host_three_hours_west: None) -> None:
    """On a host whose local zone is not UTC the window still goes out as UTC `Z` times."""
    assert utc_text(MORNING_PLUS_TWO) == "2027-05-01T07:00:00Z"
    assert utc_text(datetime(2027, 5, 1, 7, tzinfo=UTC)) == "2027-05-01T07:00:00Z"


def test_one_utc_form_for_graph_and_for_replies() -> None:
    """The calendar query and a reply's event times share one formatter: a fraction is kept,
    and an unknown time (an event end Graph did not give) stays unknown."""
    assert utc_text(MORNING_PLUS_TWO + timedelta(microseconds=500)) == "2027-05-01T07:00:00.000500Z"
    assert utc_text(None) is None


@pytest.mark.parametrize(
    ("max_events", "pages"),
    [(0, 20), (1, 20), (99, 20), (100, 40), (500, 120), (800, 180)],
)
def test_page_limit_is_twenty_times_the_pages_the_limit_fills(max_events: int, pages: int) -> None:
    """Pages of 100: RANGE_MAX_EVENTS events fill max_events // 100 + 1 pages; 20 times that."""
    assert page_limit(max_events) == pages
