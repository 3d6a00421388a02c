"""Which listed events a request cancels: the iCalUId match rules and the date-range selection.
Pure functions over :class:`CalendarEvent` values; the Graph adapters build those values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cancel_handler.core.contract import TimeWindow, is_event_id
from cancel_handler.core.decision import Action, Reason, Settlement, clip

#: How many ids an AmbiguousEvent description lists before it only counts.
MAX_IDS_DESCRIBED = 20
#: RANGE_MAX_EVENTS: the default most events one date range may cancel, and its ceiling. The
#: ceiling keeps a `fannedOut` reply, which lists every meeting (about 300 bytes each), within
#: a Standard namespace's 256 KB message: a reply that cannot be sent would give the parent back
#: on every delivery. Longer leaves are split into several requests.
DEFAULT_RANGE_MAX_EVENTS = 500
RANGE_MAX_EVENTS_CEILING = 800


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """What Graph says about one event in the organizer's mailbox (`start` and `end` in UTC;
    None when Graph's value could not be read)."""

    id: str
    is_organizer: bool
    is_cancelled: bool
    type: str | None = None
    start: datetime | None = None
    attendees: int = 0
    end: datetime | None = None


class Skip(StrEnum):
    """Why a listed event is not cancelled, checked in this order (the first that holds counts)."""

    UNREADABLE = "unreadable"  # an id or start time the function cannot use
    ALREADY_CANCELLED = "alreadyCancelled"
    NOT_ORGANIZER = "notOrganizer"
    SERIES_MASTER = "seriesMaster"  # calendarView never lists one; cancelling it ends the series
    NO_ATTENDEES = "noAttendees"
    STARTED_BEFORE_WINDOW = "startedBeforeWindow"
    ALREADY_BEGUN = "alreadyBegun"
    AFTER_WINDOW = "afterWindow"  # calendarView lists overlapping events only; kept as a guard


@dataclass(frozen=True, slots=True)
class RangeSelection:
    """The events a date range cancels, in start order, and the skipped ones counted by cause."""

    selected: tuple[CalendarEvent, ...]
    skipped: Mapping[Skip, int] = field(default_factory=dict)
    listed: int = 0

    def describe_skipped(self) -> str:
        """`notOrganizer=2, noAttendees=1` (causes with a count, in rule order), or `none`."""
        parts = [f"{cause}={self.skipped[cause]}" for cause in Skip if self.skipped.get(cause)]
        return ", ".join(parts) or "none"


def select_range(
    events: Iterable[CalendarEvent], window: TimeWindow, now: datetime
) -> RangeSelection:
    """The events to cancel: organizer's, not cancelled, with an attendee, starting at or after
    the window's start (and before its end) and not started yet. Occurrences and exceptions are
    separate events, so only the ones inside the window are chosen. Repeated ids count once."""
    seen: set[str] = set()
    selected: list[CalendarEvent] = []
    skipped: Counter[Skip] = Counter()
    listed = 0
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        listed += 1
        cause = _skip_cause(event, window, now)
        if cause is None:
            selected.append(event)
        else:
            skipped[cause] += 1
    selected.sort(key=lambda event: (event.start, event.id))
    return RangeSelection(tuple(selected), dict(skipped), listed)


def _skip_cause(event: CalendarEvent, window: TimeWindow, now: datetime) -> Skip | None:
    if event.start is None or not is_event_id(event.id):
        return Skip.UNREADABLE
    if event.is_cancelled:
        return Skip.ALREADY_CANCELLED
    if not event.is_organizer:
        return Skip.NOT_ORGANIZER
    if event.type == "seriesMaster":
        return Skip.SERIES_MASTER
    if event.attendees < 1:
        return Skip.NO_ATTENDEES
    if event.start < window.start:
        return Skip.STARTED_BEFORE_WINDOW
    if event.start <= now:
        return Skip.ALREADY_BEGUN
    if event.start >= window.end:
        return Skip.AFTER_WINDOW
    return None


def ranges_off() -> Settlement:
    """The `RangeTooLarge` dead-letter of every date range while RANGE_MAX_EVENTS is 0, given
    before the calendar is read, so it is the same whatever the calendar holds."""
    return Settlement(
        Action.DEADLETTER,
        Reason.RANGE_TOO_LARGE,
        "date ranges are off (RANGE_MAX_EVENTS=0); the calendar was not read and nothing was "
        "cancelled; send one request per meeting (eventId or iCalUId)",
    )


def range_too_large(
    selection: RangeSelection, max_events: int, *, listed_all: bool = True
) -> Settlement | None:
    """A `RangeTooLarge` dead-letter when more events were selected than RANGE_MAX_EVENTS
    allows; None otherwise. `listed_all` False: the listing stopped once the limit was passed,
    so the count is a lower bound."""
    count = len(selection.selected)
    if count <= max_events:
        return None
    counted = f"{count}" if listed_all else f"at least {count}"
    detail = (
        f"{counted} events to cancel; the limit is {max_events} (RANGE_MAX_EVENTS): split "
        "the range into shorter ones"
    )
    return Settlement(
        Action.DEADLETTER,
        Reason.RANGE_TOO_LARGE,
        clip(f"{detail}; nothing was cancelled; skipped: {selection.describe_skipped()}"),
    )


def live_matches(matches: list[CalendarEvent]) -> list[CalendarEvent]:
    """The matches not cancelled yet: only these can make a lookup ambiguous."""
    return [match for match in matches if not match.is_cancelled]


def named_match(matches: list[CalendarEvent]) -> str | None:
    """The one event a lookup's answer is about: the only match not cancelled, or, when every
    match is cancelled, the only match; None when there is no such one event."""
    live = live_matches(matches)
    if len(live) == 1:
        return live[0].id
    return matches[0].id if len(matches) == 1 else None


def decide_ical_matches(
    matches: list[CalendarEvent], *, may_be_cancelled_already: bool, more: bool = False
) -> Settlement | str:
    """The event id to cancel for an iCalUId lookup's matches, or the settlement when there is
    nothing to cancel. No match is a 404 (done if an earlier attempt may have cancelled it).
    Cancelled matches are done already and set aside: none left is done; several left (or,
    with `more`, Graph's further pages after two) are dead-lettered as ambiguous; the one left
    is cancelled when the mailbox organizes it."""
    if not matches:
        if may_be_cancelled_already:
            return Settlement(
                Action.COMPLETE,
                Reason.ALREADY_CANCELLED,
                "no event with that iCalUId after an earlier attempt: that attempt most likely "
                "cancelled it",
            )
        return Settlement(
            Action.DEADLETTER,
            Reason.EVENT_NOT_FOUND,
            "no event with that iCalUId in the mailbox; likely cause: the mailbox is not the "
            "organizer's, the event was deleted, or the UID is an occurrence's (occurrences are "
            "not found by iCalUId: send eventId or a date range)",
        )
    live = live_matches(matches)
    if len(live) > 1 or (live and more):
        ids = ", ".join(match.id for match in live[:MAX_IDS_DESCRIBED])
        unlisted = len(live) - MAX_IDS_DESCRIBED
        tail = f" and {unlisted} more" if unlisted > 0 else ""
        return Settlement(
            Action.DEADLETTER,
            Reason.AMBIGUOUS_EVENT,
            clip(
                f"{'at least ' if more else ''}{len(live)} events share that iCalUId in the "
                "mailbox and are not cancelled; nothing was "
                f"cancelled; send the eventId of the one to cancel: {ids}{tail}"
            ),
        )
    if not live:
        done = (
            f"event {matches[0].id} is"
            if len(matches) == 1
            else f"all {len(matches)} events with that iCalUId are"
        )
        return Settlement(Action.COMPLETE, Reason.ALREADY_CANCELLED, f"{done} already cancelled")
    [match] = live
    if not match.is_organizer:
        return Settlement(
            Action.DEADLETTER,
            Reason.NOT_ORGANIZER,
            clip(
                f"the mailbox holds event {match.id} with that iCalUId but is not its organizer; "
                "send the organizer's userPrincipalName"
            ),
        )
    return match.id
