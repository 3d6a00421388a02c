"""Find an event by its iCalendar UID: `GET /users/{id}/events?$filter=iCalUId eq '…'`.

The UID becomes an OData string literal (single quotes doubled) and every query value is
percent-encoded, so no UID can end the literal or add a condition: it can only match itself.
"""

from __future__ import annotations

from cancel_handler.graph.client import PREFER_IMMUTABLE_IDS
from cancel_handler.graph.paths import encode_query, user_path

#: The properties the decision needs; `/events` lists single events and series masters only.
LOOKUP_SELECT = "id,isOrganizer,isCancelled,type"
LOOKUP_PREFER = (PREFER_IMMUTABLE_IDS,)
#: The most pages one lookup reads: it stops at its second match, so only a list of empty pages
#: (which Exchange may send for a filtered query) can come near this.
LOOKUP_PAGE_LIMIT = 20


def odata_string(value: str) -> str:
    """`value` as an OData string literal: in single quotes, each single quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def ical_uid_filter(ical_uid: str) -> str:
    """The `$filter` expression matching exactly `ical_uid`."""
    return f"iCalUId eq {odata_string(ical_uid)}"


def lookup_url(base_url: str, user: str, ical_uid: str) -> str:
    """The lookup URL below `base_url`: the user one path segment, the query percent-encoded."""
    query = {"$filter": ical_uid_filter(ical_uid), "$select": LOOKUP_SELECT}
    return f"{base_url}{user_path(user)}/events?{encode_query(query)}"
