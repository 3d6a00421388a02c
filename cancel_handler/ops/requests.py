"""Cancel requests on their way to the queue: validated with the function's own contract, given
their Service Bus ids, and read in bulk from JSON Lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cancel_handler.core import strict_json
from cancel_handler.core.contract import (
    DEFAULT_RANGE_MAX_DAYS,
    MAX_BODY_BYTES,
    CancelRequest,
    validate_request,
)
from cancel_handler.core.entities import entity_name_problem, session_id_problem
from cancel_handler.core.errors import InvalidMessageError, InvalidRequestsError
from cancel_handler.servicebus.tracecontext import trace_properties

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusMessage

CONTENT_TYPE = "application/json"
#: Service Bus limits MessageId and CorrelationId to 128 characters.
MAX_ID_LENGTH = 128
#: Keys of a JSON Lines record that set the ids; they are not part of the message body.
ID_KEYS = {"requestId": "message_id", "correlationId": "correlation_id"}


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A validated request with the ids it is sent under (`line`: where it was read, if a file)
    and, when the sender wants an answer, the entity and session to reply to."""

    request: CancelRequest
    message_id: str
    correlation_id: str
    line: int | None = None
    reply_to: str | None = None
    reply_to_session_id: str | None = None

    def with_reply(
        self, reply_to: str, session_id: str | None, *, cancel_queue: str | None = None
    ) -> OutgoingRequest:
        """The same request asking for a reply on `reply_to` (in session `session_id`); raises
        :class:`InvalidMessageError` as :func:`check_reply` does."""
        check_reply(reply_to, session_id, cancel_queue=cancel_queue)
        return replace(self, reply_to=reply_to, reply_to_session_id=session_id)

    def body(self) -> bytes:
        """The message body: the contract-shaped JSON object, UTF-8."""
        return json.dumps(self.request.to_json(), ensure_ascii=False).encode("utf-8")

    def to_message(self) -> ServiceBusMessage:
        """The Service Bus message for this request."""
        from azure.servicebus import ServiceBusMessage

        return ServiceBusMessage(
            self.body(),
            message_id=self.message_id,
            correlation_id=self.correlation_id,
            content_type=CONTENT_TYPE,
            reply_to=self.reply_to,
            reply_to_session_id=self.reply_to_session_id,
            # The producer span's context when the sender traces (see ops.send).
            application_properties=trace_properties() or None,
        )

    def describe(self) -> dict[str, Any]:
        """What is (or would be) sent, as JSON-ready data."""
        data: dict[str, Any] = {"line": self.line} if self.line is not None else {}
        data |= {
            "messageId": self.message_id,
            "correlationId": self.correlation_id,
            "contentType": CONTENT_TYPE,
        }
        if self.reply_to is not None:
            data["replyTo"] = self.reply_to
            data["replyToSessionId"] = self.reply_to_session_id
        data["body"] = self.request.to_json()
        return data


def check_reply(
    reply_to: str, session_id: str | None, *, cancel_queue: str | None = None
) -> None:
    """Raise :class:`InvalidMessageError` (field `replyTo` or `replyToSessionId`) for a reply
    address Service Bus would refuse, or one the function never answers: the cancel queue
    itself (compared case-insensitively, as Service Bus names are)."""
    problem = entity_name_problem(reply_to)
    if problem:
        raise InvalidMessageError(
            "replyTo", f"is not a Service Bus queue or topic name ({problem})"
        )
    if cancel_queue and reply_to.casefold() == cancel_queue.casefold():
        raise InvalidMessageError(
            "replyTo",
            f"names the cancel queue {cancel_queue!r} itself, where the function never sends "
            "replies",
        )
    problem = session_id_problem(session_id or "")
    if problem:
        raise InvalidMessageError(
            "replyToSessionId", f"is too long for a Service Bus session id ({problem})"
        )


def prepare_request(
    user_principal_name: str,
    event_id: str | None = None,
    comment: str | None = None,
    *,
    ical_uid: str | None = None,
    start_date_time: str | None = None,
    end_date_time: str | None = None,
    preview: bool | None = None,
    message_id: str | None = None,
    correlation_id: str | None = None,
    max_range_days: int = DEFAULT_RANGE_MAX_DAYS,
) -> OutgoingRequest:
    """Validate one request against the contract and give it its ids: `message_id` or a new
    UUID; `correlation_id` or the message id. Name exactly one target: `event_id`, `ical_uid`,
    or `start_date_time` with `end_date_time` (RFC 3339 with an offset; `preview` only with a
    range, which may span at most `max_range_days`, the function's RANGE_MAX_DAYS). Raises
    :class:`InvalidMessageError`."""
    fields = {
        "eventId": event_id,
        "iCalUId": ical_uid,
        "startDateTime": start_date_time,
        "endDateTime": end_date_time,
        "preview": preview,
        "comment": comment,
    }
    document = {"userPrincipalName": user_principal_name}
    document |= {name: value for name, value in fields.items() if value is not None}
    request = validate_request(document, max_range_days=max_range_days)
    return _outgoing(request, message_id, correlation_id, None)


def _outgoing(
    request: CancelRequest, message_id: Any, correlation_id: Any, line: int | None
) -> OutgoingRequest:
    message_id = _check_id("requestId", message_id)
    correlation_id = _check_id("correlationId", correlation_id)
    message_id = message_id or str(uuid.uuid4())
    outgoing = OutgoingRequest(request, message_id, correlation_id or message_id, line)
    size = len(outgoing.body())
    if size > MAX_BODY_BYTES:
        raise InvalidMessageError("", f"body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    return outgoing


def _check_id(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessageError(name, "must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidMessageError(name, f"is {len(value)} characters; the limit is 128")
    return value


def read_requests(
    lines: Iterable[str | bytes], *, max_range_days: int = DEFAULT_RANGE_MAX_DAYS
) -> list[OutgoingRequest]:
    """Parse and validate every JSON Lines record (blank lines are skipped); raise
    :class:`InvalidRequestsError` listing each bad line if any is invalid."""
    requests: list[OutgoingRequest] = []
    problems: list[tuple[int, str]] = []
    first_line_of: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            outgoing = _parse_line(raw, number, max_range_days)
        except InvalidMessageError as exc:
            problems.append((number, str(exc)))
            continue
        if outgoing is None:
            continue
        earlier = first_line_of.setdefault(outgoing.message_id, number)
        if earlier != number:
            problems.append(
                (
                    number,
                    f"requestId {outgoing.message_id!r} repeats line {earlier}; Service Bus "
                    "duplicate detection would drop this message",
                )
            )
            continue
        requests.append(outgoing)
    if problems:
        raise InvalidRequestsError(problems)
    return requests


def _parse_line(raw: str | bytes, number: int, max_range_days: int) -> OutgoingRequest | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessageError("", f"not UTF-8 (bad byte at {exc.start})") from None
    text = raw.strip().lstrip("\ufeff")
    if not text:
        return None
    try:
        document = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError("", f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise InvalidMessageError("", "not JSON (nested too deeply)") from None
    ids: dict[str, Any] = {}
    if isinstance(document, dict):
        document = dict(document)
        ids = {target: document.pop(key, None) for key, target in ID_KEYS.items()}
    request = validate_request(document, max_range_days=max_range_days)
    return _outgoing(request, ids.get("message_id"), ids.get("correlation_id"), number)
