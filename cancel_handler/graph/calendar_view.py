"""List an organizer's calendar in a date range: `GET /users/{id}/calendarView`, page by page.

Graph returns single instances, occurrences and exceptions overlapping the window (never series
masters). The next page is Graph's `@odata.nextLink`, followed only while its scheme and host are
the base URL's: the bearer token must never leave Graph.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from cancel_handler.core.contract import TimeWindow
from cancel_handler.graph.client import PREFER_IMMUTABLE_IDS
from cancel_handler.graph.paths import encode_query, user_path

CALENDAR_VIEW_SELECT = "id,type,isOrganizer,isCancelled,start,end,attendees"
#: Events per page asked for with `$top` (Graph's default page is 10 events; the largest `$top`
#: calendarView honours is undocumented, so a larger answer page is not assumed).
PAGE_SIZE = 100
CALENDAR_VIEW_PREFER = (PREFER_IMMUTABLE_IDS, 'outlook.timezone="UTC"')


def utc_text(instant: datetime) -> str:
    """An aware instant as Graph's UTC form, `2026-07-01T00:00:00Z` (fraction kept if any)."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def first_page_url(base_url: str, user: str, window: TimeWindow) -> str:
    """The first calendarView page of `user`'s calendar for `window` (instants sent in UTC)."""
    query = {
        "startDateTime": utc_text(window.start),
        "endDateTime": utc_text(window.end),
        "$select": CALENDAR_VIEW_SELECT,
        "$top": str(PAGE_SIZE),
    }
    return f"{base_url}{user_path(user)}/calendarView?{encode_query(query)}"


def next_link_problem(base_url: str, link: str) -> str | None:
    """Why `link` must not be followed with the token, or None when it stays on Graph's scheme
    and host (and port) and carries no credentials."""
    base = urlsplit(base_url)
    try:
        target = urlsplit(link)
        port, base_port = target.port, base.port
    except ValueError:
        return "Graph's @odata.nextLink is not a valid URL; it was not followed"
    if target.username is not None or target.password is not None:
        return "Graph's @odata.nextLink carries credentials; it was not followed"
    if (
        target.scheme.lower() != base.scheme.lower()
        or (target.hostname or "").lower() != (base.hostname or "").lower()
        or port != base_port
    ):
        where = f"{target.scheme}://{target.hostname or '?'}"
        return (
            f"Graph's @odata.nextLink points to {where}, not to GRAPH_BASE_URL's scheme and "
            "host; it was not followed, so the access token did not leave Graph"
        )
    return None
