"""Graph's JSON for events and event lists → :class:`CalendarEvent` values and next links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cancel_handler.core.selection import CalendarEvent


def event_list(document: dict[str, Any] | None) -> tuple[list[CalendarEvent], str | None]:
    """The events of a list answer (`value`) and its `@odata.nextLink`; ValueError when the
    answer is not a list of events."""
    if document is None or not isinstance(document.get("value"), list):
        raise ValueError("Graph's answer has no 'value' list of events")
    link = document.get("@odata.nextLink")
    if link is not None and not isinstance(link, str):
        raise ValueError("Graph's '@odata.nextLink' is not a string")
    return [calendar_event(item) for item in document["value"]], link


def calendar_event(item: Any) -> CalendarEvent:
    """One event of a list; anything unreadable leaves `id` empty or `start` None, which the
    selection counts as unreadable rather than guessing."""
    if not isinstance(item, dict):
        return CalendarEvent("", is_organizer=False, is_cancelled=False)
    event_id = item.get("id")
    attendees = item.get("attendees")
    return CalendarEvent(
        id=event_id if isinstance(event_id, str) else "",
        is_organizer=item.get("isOrganizer") is True,
        is_cancelled=item.get("isCancelled") is True,
        type=item.get("type") if isinstance(item.get("type"), str) else None,
        start=_utc_instant(item.get("start")),
        end=_utc_instant(item.get("end")),
        attendees=len(attendees) if isinstance(attendees, list) else 0,
    )


def _utc_instant(value: Any) -> datetime | None:
    """A `dateTimeTimeZone` in UTC (asked for with `Prefer: outlook.timezone="UTC"`) as an aware
    datetime; None for any other time zone or shape (Windows zone names are not guessed)."""
    if not isinstance(value, dict) or value.get("timeZone") != "UTC":
        return None
    text = value.get("dateTime")
    if not isinstance(text, str):
        return None
    clock, _, fraction = text.partition(".")
    try:
        parsed = datetime.fromisoformat(clock)
    except ValueError:
        return None
    if parsed.tzinfo is not None or (fraction and not fraction.isdigit()):
        return None
    micro = int((fraction + "000000")[:6])
    return parsed.replace(tzinfo=UTC, microsecond=micro)
