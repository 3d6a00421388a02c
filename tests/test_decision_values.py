"""The decision's limits and texts, checked against independently known values: Service Bus's
4096-character dead-letter fields, Graph's retryable statuses, the published description format."""

from __future__ import annotations

import pytest

from cancel_handler.core.decision import (
    Action,
    GraphResponse,
    Reason,
    Retry,
    clip,
    decide,
    decide_list,
    describe_graph_error,
)

#: Service Bus: DeadLetterReason and DeadLetterErrorDescription hold at most 4096 characters.
SERVICE_BUS_FIELD_LIMIT = 4096


def test_clip_keeps_text_of_exactly_the_service_bus_limit() -> None:
    """4096 characters fit a dead-letter field unchanged."""
    text = "x" * SERVICE_BUS_FIELD_LIMIT
    assert clip(text) == text


def test_clip_cuts_one_character_more_to_the_limit_and_marks_it() -> None:
    """4097 characters are cut to exactly 4096, ending with the truncation marker."""
    clipped = clip("x" * (SERVICE_BUS_FIELD_LIMIT + 1))
    assert len(clipped) == SERVICE_BUS_FIELD_LIMIT
    assert clipped.endswith(" …[truncated]") and clipped.startswith("x" * 4000)


def test_clip_honours_a_smaller_limit() -> None:
    """An explicit limit is the maximum length of the result."""
    assert clip("abcdefghijklmnopqrstuvwxyz", limit=20) == "abcdefg …[truncated]"


def test_a_huge_graph_error_fits_the_service_bus_field() -> None:
    """A 100 KB Graph error message still gives a description of at most 4096 characters."""
    settlement = decide(GraphResponse(400, "E", "m" * 100_000), may_be_cancelled_already=False)
    assert len(settlement.description) == SERVICE_BUS_FIELD_LIMIT


def test_description_names_status_code_request_id_message_and_cause() -> None:
    """The description reads 'Graph <status>; error.code=…; request-id=…; error.message=…;
    likely cause: …' in that order."""
    response = GraphResponse(404, "ErrorItemNotFound", "Not found.", "rid-1")
    assert describe_graph_error(response, hint="check the id") == (
        "Graph 404; error.code=ErrorItemNotFound; request-id=rid-1; "
        "error.message=Not found.; likely cause: check the id"
    )


def test_description_without_details_uses_dashes() -> None:
    """Missing code and request-id read '-'; no message and no hint add nothing."""
    assert describe_graph_error(GraphResponse(405)) == "Graph 405; error.code=-; request-id=-"


@pytest.mark.parametrize("status", [408, 409, 425, 429])
def test_retryable_4xx_are_retried_without_an_unknown_outcome(status: int) -> None:
    """Graph's retryable 4xx (timeout, conflict, too early, throttled) are retried; Graph did not
    act on them, so a later 404 still means 'not found'."""
    verdict = decide(GraphResponse(status, retry_after=2.0), may_be_cancelled_already=False)
    assert verdict == Retry(f"Graph answered {status}", retry_after=2.0, outcome_unknown=False)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_retried_with_an_unknown_outcome(status: int) -> None:
    """Any 5xx is retried and may have cancelled the event."""
    verdict = decide(GraphResponse(status), may_be_cancelled_already=False)
    assert isinstance(verdict, Retry) and verdict.outcome_unknown and not verdict.refresh_token


def test_a_plain_retry_assumes_nothing_happened() -> None:
    """A Retry made without saying otherwise neither marks the outcome unknown nor asks for a
    new token (a refused connection must not turn a later 404 into AlreadyCancelled)."""
    retry = Retry("connection refused")
    assert (retry.retry_after, retry.outcome_unknown, retry.refresh_token) == (None, False, False)


def test_401_asks_for_a_new_token_and_assumes_nothing_happened() -> None:
    """401 → retry with a fresh token; the cancel did not happen."""
    verdict = decide(GraphResponse(401), may_be_cancelled_already=False)
    assert verdict == Retry("Graph rejected the access token (401)", refresh_token=True)


@pytest.mark.parametrize("status", [300, 399, 410, 411, 451, 499])
def test_other_non_success_answers_are_rejected(status: int) -> None:
    """Neither 2xx nor a known 4xx nor retryable: dead-lettered as GraphRejected."""
    verdict = decide(GraphResponse(status, "E", "m", "r"), may_be_cancelled_already=True)
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.GRAPH_REJECTED)
    assert verdict.description == f"Graph {status}; error.code=E; request-id=r; error.message=m"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_every_2xx_is_a_cancel(status: int) -> None:
    """Any 2xx completes as Cancelled."""
    verdict = decide(GraphResponse(status), may_be_cancelled_already=False)
    assert (verdict.action, verdict.reason) == (Action.COMPLETE, Reason.CANCELLED)


@pytest.mark.parametrize(
    "message",
    [
        # Graph's documented text (event: cancel, v1.0), then its sentence in other case and
        # spacing, as a proxy or a newer Graph release might send it.
        "Your request can't be completed. You need to be an organizer to cancel a meeting.",
        "YOU NEED TO BE AN ORGANIZER TO CANCEL A MEETING",
        "Request failed:\n  you need to be an\torganizer  to cancel a meeting (x)",
    ],
    ids=["documented", "upper-case", "other-spacing"],
)
def test_not_organizer_is_read_from_graphs_documented_sentence(message: str) -> None:
    """A 400 with any code whose message holds Graph's documented sentence is NotOrganizer."""
    verdict = decide(GraphResponse(400, "X", message), may_be_cancelled_already=False)
    assert verdict.reason is Reason.NOT_ORGANIZER


@pytest.mark.parametrize(
    "message",
    [
        "Mailbox secret.organizer@contoso.com is not valid.",
        "Only the ORGANIZER may cancel.",
        "You need to be an organizer",
        None,
    ],
    ids=["upn-naming-organizer", "other-wording", "half-sentence", "no-message"],
)
def test_a_400_that_only_mentions_an_organizer_is_a_bad_request(message: str | None) -> None:
    """A 400 whose code is not an organizer code and whose message is not Graph's sentence is
    GraphBadRequest, with Graph's message in the description (the runbook's NotOrganizer fix
    would be wrong for it)."""
    verdict = decide(GraphResponse(400, "X", message, "r"), may_be_cancelled_already=False)
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.GRAPH_BAD_REQUEST)
    tail = f"; error.message={message}" if message else ""
    assert verdict.description == f"Graph 400; error.code=X; request-id=r{tail}"


@pytest.mark.parametrize("code", ["ErrorCalendarIsNotOrganizer", "ErrorNotOrganizer"])
def test_not_organizer_codes(code: str) -> None:
    """Both organizer error codes mean NotOrganizer, whatever the message says."""
    verdict = decide(GraphResponse(400, code, "x"), may_be_cancelled_already=False)
    assert verdict.reason is Reason.NOT_ORGANIZER


def test_forbidden_and_not_found_say_what_to_check() -> None:
    """403 and a first-delivery 404 carry their likely cause in the description."""
    forbidden = decide(GraphResponse(403), may_be_cancelled_already=False).description
    missing = decide(GraphResponse(404), may_be_cancelled_already=False).description
    assert forbidden == (
        "Graph 403; error.code=-; request-id=-; likely cause: the identity lacks "
        "Calendars.ReadWrite (admin consent) or the mailbox is outside its Exchange RBAC scope "
        "/ application access policy"
    )
    assert missing == (
        "Graph 404; error.code=-; request-id=-; likely cause: no such event (or user/mailbox) "
        "in that mailbox; check the ids and that the mailbox is the organizer's"
    )


def test_already_cancelled_says_why() -> None:
    """A 404 after an earlier attempt completes with the reason in the log description."""
    verdict = decide(GraphResponse(404), may_be_cancelled_already=True)
    assert verdict.description == (
        "404 after an earlier attempt: that attempt most likely cancelled the event"
    )


@pytest.mark.parametrize("status", [200, 299])
def test_a_2xx_read_is_no_verdict(status: int) -> None:
    """Every 2xx answer to a read (lookup, calendar page) lets the caller use the list."""
    assert decide_list(GraphResponse(status)) is None


def test_a_300_read_is_rejected_not_read_as_a_list() -> None:
    """HTTP 300 is not success: the read is dead-lettered as GraphRejected."""
    verdict = decide_list(GraphResponse(300, "Redirect", "Multiple choices."))
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.GRAPH_REJECTED)


def test_a_404_read_names_the_unknown_mailbox_and_the_15_minute_delay() -> None:
    """A 404 on a list means no such mailbox: MailboxNotFound with Graph's code, the hint about
    new mailboxes answering 404 for about 15 minutes, and what to check."""
    verdict = decide_list(GraphResponse(404, "ErrorInvalidUser", "The requested user is invalid."))
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.MAILBOX_NOT_FOUND)
    assert "ErrorInvalidUser" in verdict.description
    assert "no such user, or no Exchange Online mailbox (yet: a newly licensed user's mailbox " \
        "answers 404 for up to about 15 minutes); check userPrincipalName" in verdict.description


@pytest.mark.parametrize("status", [500, 503, 504])
def test_a_failed_read_is_retried_and_never_counts_as_a_possible_cancel(status: int) -> None:
    """A 5xx on a read is retried with Graph's status in the detail, and its unknown outcome
    cannot have cancelled anything (a read changes nothing)."""
    verdict = decide_list(GraphResponse(status, retry_after=2.0))
    assert isinstance(verdict, Retry)
    assert verdict.detail == f"Graph answered {status}"
    assert verdict.retry_after == 2.0
    assert verdict.outcome_unknown is False


def test_a_rejected_token_on_a_read_asks_for_a_new_token() -> None:
    """A 401 on a read is retried with a refreshed token."""
    verdict = decide_list(GraphResponse(401))
    assert isinstance(verdict, Retry) and verdict.refresh_token is True


def test_a_400_naming_the_organizer_on_a_read_is_a_bad_request() -> None:
    """A read is not a cancel, so a 400 whose code names the organizer is GraphBadRequest (not
    NotOrganizer) and keeps Graph's code in the description."""
    verdict = decide_list(GraphResponse(400, "ErrorCalendarIsNotOrganizer", "Not organizer."))
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.GRAPH_BAD_REQUEST)
    assert "ErrorCalendarIsNotOrganizer" in verdict.description
