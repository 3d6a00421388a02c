"""What to do with a message, decided from what happened: a pure function, no I/O.

The settlement table of the README is this module; `tests/test_decision.py` checks it row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cancel_handler.core.redaction import redact

#: Service Bus limits a dead-letter reason and description to 4096 characters each.
MAX_DEADLETTER_FIELD = 4096

#: Graph error codes that mean "only the organizer may cancel" (Graph does not document the code;
#: its documented message is matched too, see NOT_ORGANIZER_PHRASE).
NOT_ORGANIZER_CODES = frozenset({"ErrorCalendarIsNotOrganizer", "ErrorNotOrganizer"})
#: The sentence of Graph's documented error message for a cancel by an attendee ("Your request
#: can't be completed. You need to be an organizer to cancel a meeting.", event: cancel, Graph
#: v1.0 reference), compared without case and with runs of white space as one space. A message
#: that only mentions an organizer (a UPN such as `x.organizer@contoso.com`) is not this error.
NOT_ORGANIZER_PHRASE = "you need to be an organizer to cancel a meeting"

#: 4xx answers that are worth another try (timeouts, conflicts, throttling).
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class GraphResponse:
    """What Graph answered to one cancel call."""

    status: int
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    retry_after: float | None = None


class Action(StrEnum):
    """The settlement calls of `ServiceBusMessageActions` this product uses."""

    COMPLETE = "complete"
    DEADLETTER = "deadletter"
    ABANDON = "abandon"


class Reason(StrEnum):
    """Dead-letter reasons (the published vocabulary) and the log reasons of other outcomes."""

    INVALID_MESSAGE = "InvalidMessage"
    NOT_ORGANIZER = "NotOrganizer"
    GRAPH_BAD_REQUEST = "GraphBadRequest"
    GRAPH_FORBIDDEN = "GraphForbidden"
    EVENT_NOT_FOUND = "EventNotFound"
    GRAPH_REJECTED = "GraphRejected"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    AMBIGUOUS_EVENT = "AmbiguousEvent"
    MAILBOX_NOT_FOUND = "MailboxNotFound"
    RANGE_TOO_LARGE = "RangeTooLarge"
    DELIVERIES_EXHAUSTED = "DeliveriesExhausted"
    # Not dead-letter reasons: they only label completions and give-backs in the log.
    CANCELLED = "Cancelled"
    ALREADY_CANCELLED = "AlreadyCancelled"
    TRANSIENT_FAILURE = "TransientFailure"
    RETRY_SCHEDULED = "RetryScheduled"
    PREVIEWED = "Previewed"
    FANNED_OUT = "FannedOut"


DEADLETTER_REASONS = frozenset(
    {
        Reason.INVALID_MESSAGE,
        Reason.NOT_ORGANIZER,
        Reason.GRAPH_BAD_REQUEST,
        Reason.GRAPH_FORBIDDEN,
        Reason.EVENT_NOT_FOUND,
        Reason.GRAPH_REJECTED,
        Reason.RETRIES_EXHAUSTED,
        Reason.AMBIGUOUS_EVENT,
        Reason.MAILBOX_NOT_FOUND,
        Reason.RANGE_TOO_LARGE,
        Reason.DELIVERIES_EXHAUSTED,
    }
)


@dataclass(frozen=True, slots=True)
class Settlement:
    """The final decision for a message."""

    action: Action
    reason: Reason
    description: str = ""


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again: after `retry_after` seconds if Graph named a wait, else after a backoff."""

    detail: str
    retry_after: float | None = None
    #: The request may have reached Graph, so the cancel may already have happened.
    outcome_unknown: bool = False
    #: Graph rejected the token: fetch a new one before the next attempt.
    refresh_token: bool = False


Verdict = Settlement | Retry


def is_redelivery(delivery_count: int | None) -> bool:
    """True when the host's delivery count says an earlier delivery of this message happened.

    The count the host sends is 1 on a first delivery (the .NET SDK adds 1 to the AMQP count
    before the host serializes the message; evidence in docs/reliability.md). A missing count
    reads as a first delivery: a 404 is then dead-lettered (visible, resubmittable), never
    completed unseen."""
    return delivery_count is not None and delivery_count > 1


def decide(response: GraphResponse, *, may_be_cancelled_already: bool) -> Verdict:
    """Map Graph's answer to a settlement or a retry.

    `may_be_cancelled_already` is true on a redelivery (`is_redelivery`) or after an
    attempt in this invocation whose outcome is unknown (timeout, reset, 5xx).
    """
    status = response.status
    if 200 <= status < 300:
        return Settlement(Action.COMPLETE, Reason.CANCELLED)
    if status == 400:
        reason = Reason.NOT_ORGANIZER if _is_not_organizer(response) else Reason.GRAPH_BAD_REQUEST
        return Settlement(Action.DEADLETTER, reason, describe_graph_error(response))
    if status == 401:
        return Retry("Graph rejected the access token (401)", refresh_token=True)
    if status == 403:
        return Settlement(
            Action.DEADLETTER,
            Reason.GRAPH_FORBIDDEN,
            describe_graph_error(
                response,
                hint="the identity lacks Calendars.ReadWrite (admin consent) or the mailbox is "
                "outside its Exchange RBAC scope / application access policy",
            ),
        )
    if status == 404:
        if may_be_cancelled_already:
            return Settlement(
                Action.COMPLETE,
                Reason.ALREADY_CANCELLED,
                "404 after an earlier attempt: that attempt most likely cancelled the event",
            )
        return Settlement(
            Action.DEADLETTER,
            Reason.EVENT_NOT_FOUND,
            describe_graph_error(
                response,
                hint="no such event (or user/mailbox) in that mailbox; check the ids and that "
                "the mailbox is the organizer's",
            ),
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        return Retry(
            f"Graph answered {status}",
            retry_after=response.retry_after,
            outcome_unknown=status >= 500,
        )
    return Settlement(Action.DEADLETTER, Reason.GRAPH_REJECTED, describe_graph_error(response))


def decide_list(response: GraphResponse) -> Verdict | None:
    """Map Graph's answer to a read (the iCalUId lookup, a calendarView page): None when it
    succeeded, else a settlement or a retry. A 404 on a list names no event, so it means the
    mailbox itself is unknown. A read changes nothing, so its failures never hide a cancel."""
    status = response.status
    if 200 <= status < 300:
        return None
    if status == 404:
        return Settlement(
            Action.DEADLETTER,
            Reason.MAILBOX_NOT_FOUND,
            describe_graph_error(
                response,
                hint="no such user, or no Exchange Online mailbox (yet: a newly licensed user's "
                "mailbox answers 404 for up to about 15 minutes); check userPrincipalName",
            ),
        )
    verdict = decide(response, may_be_cancelled_already=False)
    if isinstance(verdict, Retry):
        return Retry(verdict.detail, verdict.retry_after, False, verdict.refresh_token)
    if verdict.reason is Reason.NOT_ORGANIZER:  # a 400 naming the organizer on a read
        return Settlement(Action.DEADLETTER, Reason.GRAPH_BAD_REQUEST, verdict.description)
    return verdict


def _is_not_organizer(response: GraphResponse) -> bool:
    if response.error_code in NOT_ORGANIZER_CODES:
        return True
    message = " ".join((response.error_message or "").split()).casefold()
    return NOT_ORGANIZER_PHRASE in message


def describe_graph_error(response: GraphResponse, hint: str = "") -> str:
    """A dead-letter description with Graph's status, error code, message and request-id."""
    parts = [f"Graph {response.status}"]
    parts.append(f"error.code={response.error_code or '-'}")
    parts.append(f"request-id={response.request_id or '-'}")
    text = "; ".join(parts)
    if response.error_message:
        text += f"; error.message={response.error_message}"
    if hint:
        text += f"; likely cause: {hint}"
    return clip(redact(text))



def clip(text: str, limit: int = MAX_DEADLETTER_FIELD) -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    marker = " …[truncated]"
    return text[: limit - len(marker)] + marker
