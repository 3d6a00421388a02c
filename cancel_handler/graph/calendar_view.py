"""List an organizer's calendar in a date range: `GET /users/{id}/calendarView`, page by page.

Graph returns single instances, occurrences and exceptions overlapping the window (never series
masters). The next page is Graph's `@odata.nextLink`, followed only while its scheme, host and
port are the base URL's: the bearer token must never leave Graph.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from cancel_handler.core.contract import TimeWindow, utc_text
from cancel_handler.graph.client import PREFER_IMMUTABLE_IDS
from cancel_handler.graph.paths import encode_query, user_path

CALENDAR_VIEW_SELECT = "id,type,isOrganizer,isCancelled,start,end,attendees"
#: Events per page asked for with `$top` (Graph's default page is 10 events; the largest `$top`
#: calendarView honours is undocumented, so a larger answer page is not assumed).
PAGE_SIZE = 100
CALENDAR_VIEW_PREFER = (PREFER_IMMUTABLE_IDS, 'outlook.timezone="UTC"')
#: How many times the pages RANGE_MAX_EVENTS selected events fill a listing may read: events
#: that are not selected (attendees' copies, cancelled or begun meetings) share the pages, and
#: Graph may send pages smaller than `$top`.
PAGE_LIMIT_MARGIN = 20
#: The longest one delivery may spend listing a calendar, retry waits included: well inside the
#: 5 minutes host.json lets the host renew the message's lock (maxAutoLockRenewalDuration).
LISTING_SECONDS_LIMIT = 120.0


def page_limit(range_max_events: int) -> int:
    """The most calendarView pages one listing reads: PAGE_LIMIT_MARGIN times the pages of
    PAGE_SIZE that RANGE_MAX_EVENTS events (plus one page) fill."""
    return PAGE_LIMIT_MARGIN * (range_max_events // PAGE_SIZE + 1)


def first_page_url(base_url: str, user: str, window: TimeWindow) -> str:
    """The first calendarView page of `user`'s calendar for `window` (instants sent in UTC)."""
    query = {
        "startDateTime": utc_text(window.start),
        "endDateTime": utc_text(window.end),
        "$select": CALENDAR_VIEW_SELECT,
        "$top": str(PAGE_SIZE),
    }
    return f"{base_url}{user_path(user)}/calendarView?{encode_query(query)}"


#: The port a URL without one uses, by scheme (RFC 9110 §4.2): `https://host:443/` is
#: `https://host/`.
DEFAULT_PORTS = {"https": 443, "http": 80}


def next_link_problem(base_url: str, link: str) -> str | None:
    """Why `link` must not be followed with the token, or None when it stays on Graph's scheme,
    host and port (a scheme's default port written out or left out alike) and carries no
    credentials. The refusal names each part that differs."""
    try:
        target = urlsplit(link)
        target_origin, base_origin = _origin(target), _origin(urlsplit(base_url))
    except ValueError:
        return "Graph's @odata.nextLink is not a valid URL; it was not followed"
    if target.username is not None or target.password is not None:
        return "Graph's @odata.nextLink carries credentials; it was not followed"
    differences = [
        f"its {part} {mine if mine not in (None, '') else '(none)'} is not GRAPH_BASE_URL's "
        f"{theirs}"
        for part, mine, theirs in zip(
            ("scheme", "host", "port"), target_origin, base_origin, strict=True
        )
        if mine != theirs
    ]
    if differences:
        return (
            f"Graph's @odata.nextLink points to {_where(*target_origin)}: "
            f"{' and '.join(differences)}; it was not followed, so the access token did not "
            "leave Graph"
        )
    return None


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    """Scheme and host in lower case, and the port with the scheme's default filled in."""
    scheme = parts.scheme.lower()
    port = parts.port  # ValueError for a port that is not a number in 0..65535
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _where(scheme: str, host: str, port: int | None) -> str:
    shown_port = "" if port is None or port == DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host or '?'}{shown_port}"
