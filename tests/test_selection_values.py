"""The range and iCalUId rules at their edges, and the exact texts an operator reads.

Every expected value here is written out, not taken from `cancel_handler.core.selection`: a
dead-letter description is what an operator acts on, so a changed word is a changed product.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cancel_handler.core.contract import TimeWindow
from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.selection import (
    CalendarEvent,
    RangeSelection,
    Skip,
    decide_ical_matches,
    named_match,
    range_too_large,
    select_range,
)

START = datetime(2027, 5, 1, tzinfo=UTC)
WINDOW = TimeWindow(
    START, START + timedelta(days=7), "2027-05-01T00:00:00Z", "2027-05-08T00:00:00Z"
)


def meeting(event_id: str, *, organizer: bool = True, cancelled: bool = False) -> CalendarEvent:
    return CalendarEvent(event_id, organizer, cancelled, start=START, attendees=1)


def test_a_meeting_starting_this_very_instant_has_begun() -> None:
    """`now` equal to the start counts as begun: the attendees may already be in the room."""
    selection = select_range([meeting("NOW")], WINDOW, now=START)
    assert selection.selected == ()
    assert selection.skipped == {Skip.ALREADY_BEGUN: 1}
    later = select_range([meeting("NOW")], WINDOW, now=START - timedelta(microseconds=1))
    assert [event.id for event in later.selected] == ["NOW"]


def test_nothing_skipped_reads_none() -> None:
    assert RangeSelection((meeting("A"),), {}, 1).describe_skipped() == "none"


def test_exactly_the_limit_is_allowed_one_more_is_refused_with_the_whole_reason() -> None:
    """RANGE_MAX_EVENTS is a most, not a less-than; the description says what to do."""
    three = select_range([meeting("A"), meeting("B"), meeting("C")], WINDOW, START - timedelta(1))
    assert range_too_large(three, 3) is None
    assert range_too_large(three, 2) == Settlement(
        Action.DEADLETTER,
        Reason.RANGE_TOO_LARGE,
        "3 events to cancel; the limit is 2 (RANGE_MAX_EVENTS): split the range into shorter "
        "ones; nothing was cancelled; skipped: none",
    )
    assert range_too_large(three, 2, listed_all=False).description.startswith(
        "at least 3 events to cancel; the limit is 2"
    )


def test_no_match_after_an_earlier_attempt_completes_and_says_why() -> None:
    assert decide_ical_matches([], may_be_cancelled_already=True) == Settlement(
        Action.COMPLETE,
        Reason.ALREADY_CANCELLED,
        "no event with that iCalUId after an earlier attempt: that attempt most likely "
        "cancelled it",
    )


def test_no_match_is_dead_lettered_with_the_likely_causes() -> None:
    assert decide_ical_matches([], may_be_cancelled_already=False) == Settlement(
        Action.DEADLETTER,
        Reason.EVENT_NOT_FOUND,
        "no event with that iCalUId in the mailbox; likely cause: the mailbox is not the "
        "organizer's, the event was deleted, or the UID is an occurrence's (occurrences are "
        "not found by iCalUId: send eventId or a date range)",
    )


def test_several_matches_list_their_ids_for_the_operator_to_choose() -> None:
    settlement = decide_ical_matches([meeting("A"), meeting("B")], may_be_cancelled_already=False)
    assert settlement == Settlement(
        Action.DEADLETTER,
        Reason.AMBIGUOUS_EVENT,
        "2 events share that iCalUId in the mailbox and are not cancelled; nothing was "
        "cancelled; send the eventId of the one to cancel: A, B",
    )


@pytest.mark.parametrize(
    ("count", "ending"),
    [
        (20, "E18, E19"),  # twenty ids are listed in full
        (21, "E18, E19 and 1 more"),
        (45, "E18, E19 and 25 more"),
    ],
)
def test_a_long_list_of_matches_names_twenty_and_counts_the_rest(count: int, ending: str) -> None:
    matches = [meeting(f"E{n:02d}") for n in range(count)]
    description = decide_ical_matches(matches, may_be_cancelled_already=False).description
    assert description.startswith(f"{count} events share that iCalUId")
    assert description.endswith(
        f": E00, E01, {', '.join(f'E{n:02d}' for n in range(2, 18))}, {ending}"
    )


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        # one live match beside cancelled ones: that one is the meeting to cancel
        ([("A", True), ("B", False)], "B"),
        ([("A", False), ("B", True), ("C", True)], "A"),
        # every match cancelled: done
        (
            [("A", True), ("B", True)],
            Settlement(
                Action.COMPLETE,
                Reason.ALREADY_CANCELLED,
                "all 2 events with that iCalUId are already cancelled",
            ),
        ),
        # two live matches: ambiguous, listing only those two
        (
            [("A", False), ("B", True), ("C", False)],
            Settlement(
                Action.DEADLETTER,
                Reason.AMBIGUOUS_EVENT,
                "2 events share that iCalUId in the mailbox and are not cancelled; nothing was "
                "cancelled; send the eventId of the one to cancel: A, C",
            ),
        ),
    ],
    ids=["one-live-after-cancelled", "one-live-before-cancelled", "all-cancelled", "two-live"],
)
def test_cancelled_matches_are_set_aside(matches: list, expected: object) -> None:
    """Cancelled matches are done already: only the ones left decide (README: a cancelled
    match completes as AlreadyCancelled)."""
    events = [meeting(event_id, cancelled=cancelled) for event_id, cancelled in matches]
    assert decide_ical_matches(events, may_be_cancelled_already=False) == expected


@pytest.mark.parametrize(
    ("matches", "named"),
    [
        ([("A", True), ("B", False)], "B"),  # the one live match, beside a cancelled one
        ([("A", False)], "A"),
        ([("A", True)], "A"),  # all cancelled, only one: that one
        ([("A", True), ("B", True)], None),
        ([("A", False), ("B", False)], None),
        ([], None),
    ],
)
def test_the_event_an_answer_names(matches: list, named: str | None) -> None:
    """A lookup's answer names one event only when it is about one event."""
    events = [meeting(event_id, cancelled=cancelled) for event_id, cancelled in matches]
    assert named_match(events) == named


def test_a_cancelled_match_is_done_and_named() -> None:
    assert decide_ical_matches(
        [meeting("A", cancelled=True)], may_be_cancelled_already=False
    ) == Settlement(Action.COMPLETE, Reason.ALREADY_CANCELLED, "event A is already cancelled")


def test_an_attendees_copy_is_dead_lettered_with_what_to_send_instead() -> None:
    assert decide_ical_matches(
        [meeting("A", organizer=False)], may_be_cancelled_already=False
    ) == Settlement(
        Action.DEADLETTER,
        Reason.NOT_ORGANIZER,
        "the mailbox holds event A with that iCalUId but is not its organizer; send the "
        "organizer's userPrincipalName",
    )
