"""A mailbox's pseudonym for telemetry: a keyed hash of its UPN, never the UPN itself."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import unquote

from cancel_handler.telemetry.names import (
    ROUTE_CALENDAR_VIEW,
    ROUTE_CANCEL,
    ROUTE_EVENTS,
    ROUTE_OTHER,
)


def mailbox_hash(key: bytes, user: str) -> str:
    """16 hex digits of HMAC-SHA256(`key`, the UPN or object id in lower case): the same
    mailbox always gets the same value under one key, and without the key a value cannot be
    checked against a guessed address."""
    digest = hmac.new(key, user.strip().lower().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:16]


def route_of(base_url: str, url: str) -> tuple[str, str | None]:
    """The route template of a Graph `url` below `base_url` and the mailbox it names (the
    decoded `/users/{id}` segment, None when there is none). The template holds no value."""
    path = url[len(base_url) :] if url.startswith(base_url) else ""
    segments = path.split("?", 1)[0].strip("/").split("/")
    if len(segments) < 3 or segments[0] != "users":
        return ROUTE_OTHER, None
    user = unquote(segments[1])
    rest = segments[2:]
    if rest == ["events"]:
        return ROUTE_EVENTS, user
    if rest == ["calendarView"]:
        return ROUTE_CALENDAR_VIEW, user
    if len(rest) == 3 and rest[0] == "events" and rest[2] == "cancel":
        return ROUTE_CANCEL, user
    return ROUTE_OTHER, user
