"""The settlement table, row by row, as a pure function of Graph's answer."""

from __future__ import annotations

import pytest

from cancel_handler.core.decision import (
    MAX_DEADLETTER_FIELD,
    Action,
    GraphResponse,
    Reason,
    Retry,
    Settlement,
    clip,
    decide,
)

NOT_ORGANIZER_MESSAGE = (
    "Your request can't be completed. You need to be an organizer to cancel a meeting."
)


@pytest.mark.parametrize(
    ("response", "redelivered", "action", "reason"),
    [
        (GraphResponse(202), False, Action.COMPLETE, Reason.CANCELLED),
        (GraphResponse(202), True, Action.COMPLETE, Reason.CANCELLED),
        (
            GraphResponse(400, "ErrorInvalidRequest", NOT_ORGANIZER_MESSAGE),
            False,
            Action.DEADLETTER,
            Reason.NOT_ORGANIZER,
        ),
        (
            GraphResponse(400, "ErrorCalendarIsNotOrganizer", "x"),
            False,
            Action.DEADLETTER,
            Reason.NOT_ORGANIZER,
        ),
        (
            GraphResponse(400, "ErrorInvalidIdMalformed", "Id is malformed."),
            False,
            Action.DEADLETTER,
            Reason.GRAPH_BAD_REQUEST,
        ),
        (GraphResponse(400), True, Action.DEADLETTER, Reason.GRAPH_BAD_REQUEST),
        (
            GraphResponse(403, "ErrorAccessDenied", "Access is denied."),
            False,
            Action.DEADLETTER,
            Reason.GRAPH_FORBIDDEN,
        ),
        (GraphResponse(404, "ErrorItemNotFound"), False, Action.DEADLETTER, Reason.EVENT_NOT_FOUND),
        (GraphResponse(404, "ErrorItemNotFound"), True, Action.COMPLETE, Reason.ALREADY_CANCELLED),
        (GraphResponse(405), False, Action.DEADLETTER, Reason.GRAPH_REJECTED),
        (GraphResponse(413), False, Action.DEADLETTER, Reason.GRAPH_REJECTED),
    ],
)
def test_final_answers(
    response: GraphResponse, redelivered: bool, action: Action, reason: Reason
) -> None:
    """Each final answer maps to one settlement and reason."""
    verdict = decide(response, may_be_cancelled_already=redelivered)
    assert isinstance(verdict, Settlement)
    assert (verdict.action, verdict.reason) == (action, reason)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 507])
def test_transient_answers_are_retried(status: int) -> None:
    """Throttling and server errors are retried, carrying Graph's Retry-After."""
    verdict = decide(GraphResponse(status, retry_after=2.5), may_be_cancelled_already=False)
    assert isinstance(verdict, Retry)
    assert verdict.retry_after == 2.5
    assert verdict.outcome_unknown is (status >= 500)
    assert not verdict.refresh_token


def test_unauthorized_asks_for_a_new_token() -> None:
    """401 → retry with a freshly fetched token."""
    verdict = decide(GraphResponse(401), may_be_cancelled_already=False)
    assert isinstance(verdict, Retry) and verdict.refresh_token


def test_dead_letter_description_names_graph_details() -> None:
    """The description carries Graph's status, error.code, error.message and request-id."""
    verdict = decide(
        GraphResponse(403, "ErrorAccessDenied", "Access is denied.", "rid-1"),
        may_be_cancelled_already=False,
    )
    assert isinstance(verdict, Settlement)
    for part in (
        "Graph 403",
        "error.code=ErrorAccessDenied",
        "request-id=rid-1",
        "Access is denied.",
    ):
        assert part in verdict.description


def test_descriptions_are_clipped_to_the_service_bus_limit() -> None:
    """A huge Graph message cannot make the dead-letter call fail on size."""
    verdict = decide(GraphResponse(400, "X", "m" * 10_000), may_be_cancelled_already=False)
    assert isinstance(verdict, Settlement)
    assert len(verdict.description) == MAX_DEADLETTER_FIELD
    assert verdict.description.endswith("[truncated]")
    assert clip("short") == "short"
