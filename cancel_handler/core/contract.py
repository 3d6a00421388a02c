"""The message contract (version 1.1): parse and validate one cancel request.

The JSON Schema in `schema/cancel-request.v1.1.schema.json` is the published form of the same
rules; the patterns and lengths are read from it, so the two cannot drift apart. The schema cannot
do date arithmetic: that a range's bounds are real instants, in order and at most
`max_range_days` apart is checked here only. Version 1.1 only adds targets (`iCalUId`, a date
range with `preview`); every valid version 1 body stays valid and means the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, overload

from cancel_handler.core import strict_json
from cancel_handler.core.errors import InvalidMessageError

SCHEMA_RESOURCE = "cancel-request.v1.1.schema.json"
MAX_BODY_BYTES = 256 * 1024
#: RANGE_MAX_DAYS: the default longest date range, and the most it may be set to (the same
#: ceiling as Exchange's Remove-CalendarEvents -QueryWindowInDays).
DEFAULT_RANGE_MAX_DAYS = 366
RANGE_MAX_DAYS_CEILING = 1825


class Target(StrEnum):
    """The kind of target a request names; it names exactly one. The value is how an error
    message names it."""

    EVENT_ID = "eventId"
    ICAL_UID = "iCalUId"
    DATE_RANGE = "startDateTime/endDateTime"


#: The body fields that name each kind of target (a date range needs both of its own).
TARGET_FIELDS = {
    Target.EVENT_ID: ("eventId",),
    Target.ICAL_UID: ("iCalUId",),
    Target.DATE_RANGE: ("startDateTime", "endDateTime"),
}


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A date range: aware instants `start` < `end`, with the text they were given as."""

    start: datetime
    end: datetime
    start_text: str
    end_text: str


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """One validated request in the mailbox of `user_principal_name`: cancel `event_id`, or the
    event whose iCalendar UID is `ical_uid`, or the meetings in `window` (only list them when
    `preview`). Exactly one of `event_id`, `ical_uid` and `window` is set."""

    user_principal_name: str
    event_id: str | None = None
    comment: str | None = None
    ical_uid: str | None = None
    window: TimeWindow | None = None
    preview: bool = False

    def __post_init__(self) -> None:
        # Every request is valid Unicode text, so none can fail to encode on its way to Graph.
        strict_json.check(self.to_json())

    @property
    def target(self) -> Target:
        """Which kind of target the request names."""
        if self.event_id is not None:
            return Target.EVENT_ID
        return Target.ICAL_UID if self.ical_uid is not None else Target.DATE_RANGE

    def to_json(self) -> dict[str, object]:
        """The request as a contract-shaped JSON object."""
        body: dict[str, object] = {"userPrincipalName": self.user_principal_name}
        if self.event_id is not None:
            body["eventId"] = self.event_id
        elif self.ical_uid is not None:
            body["iCalUId"] = self.ical_uid
        elif self.window is not None:
            body["startDateTime"] = self.window.start_text
            body["endDateTime"] = self.window.end_text
            if self.preview:
                body["preview"] = True
        if self.comment is not None:
            body["comment"] = self.comment
        return body

    def reply_target(self) -> dict[str, object]:
        """What the request asked to cancel, as the reply names it: the mailbox and the one
        target (`eventId`, `iCalUId`, or the range with `preview`), never the comment."""
        target = self.to_json()
        target.pop("comment", None)
        return target


@cache
def load_schema() -> dict[str, Any]:
    """The published JSON Schema of the message contract."""
    text = resources.files("cancel_handler.schema").joinpath(SCHEMA_RESOURCE).read_text("utf-8")
    return json.loads(text)


@cache
def _rules() -> dict[str, tuple[re.Pattern[str] | None, int]]:
    props = load_schema()["properties"]
    return {
        name: (re.compile(spec["pattern"]) if "pattern" in spec else None, spec["maxLength"])
        for name, spec in props.items()
        if "maxLength" in spec
    }


def parse_cancel_request(
    body: bytes, *, max_range_days: int = DEFAULT_RANGE_MAX_DAYS
) -> CancelRequest:
    """Decode a message body (UTF-8 I-JSON, RFC 7493) into a :class:`CancelRequest`, or raise
    :class:`InvalidMessageError` naming the field and the problem."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidMessageError("", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError("", f"body is not UTF-8 (bad byte at {exc.start})") from None
    try:
        document = strict_json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(
            "", f"body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidMessageError("", "body is not JSON (nested too deeply)") from None
    return validate_request(document, max_range_days=max_range_days)


def validate_request(
    document: Any, *, max_range_days: int = DEFAULT_RANGE_MAX_DAYS
) -> CancelRequest:
    """Validate an already-decoded JSON value against the contract (I-JSON rules included); a
    date range may span at most `max_range_days` days of 24 hours (the function's
    RANGE_MAX_DAYS)."""
    strict_json.check(document)
    if not isinstance(document, dict):
        raise InvalidMessageError("", f"body must be a JSON object, got {_json_type(document)}")
    upn = _required_string(document, "userPrincipalName")
    _check_pattern("userPrincipalName", upn)
    target = _one_target(document)
    if "preview" in document and target is not Target.DATE_RANGE:
        raise InvalidMessageError(
            "preview", "applies only to a date range (startDateTime and endDateTime)"
        )
    event_id = ical_uid = window = None
    preview = False
    if target is Target.EVENT_ID:
        event_id = _event_id(document)
    elif target is Target.ICAL_UID:
        ical_uid = _required_string(document, "iCalUId")
        _check_pattern("iCalUId", ical_uid)
    else:
        window = _window(document, max_range_days)
        preview = _preview(document)
    comment = document.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidMessageError(
                "comment", f"must be a string or null, got {_json_type(comment)}"
            )
        _check_length("comment", comment)
    return CancelRequest(upn, event_id, comment, ical_uid, window, preview)


def is_event_id(value: object) -> bool:
    """True when `value` is acceptable as a request's `eventId`."""
    if not isinstance(value, str) or not value:
        return False
    pattern, limit = _rules()["eventId"]
    return len(value) <= limit and pattern is not None and pattern.search(value) is not None


def _one_target(document: dict[str, Any]) -> Target:
    present = [
        target for target, keys in TARGET_FIELDS.items() if any(key in document for key in keys)
    ]
    if not present:
        raise InvalidMessageError(
            "eventId", "is required (or iCalUId, or startDateTime with endDateTime)"
        )
    if len(present) > 1:
        field = present[1] if present[1] is not Target.DATE_RANGE else _range_key(document)
        raise InvalidMessageError(
            field,
            f"a request names exactly one target (eventId, iCalUId, or startDateTime with "
            f"endDateTime); this one names {' and '.join(present)}",
        )
    return present[0]


def _range_key(document: dict[str, Any]) -> str:
    return "startDateTime" if "startDateTime" in document else "endDateTime"


def _event_id(document: dict[str, Any]) -> str:
    event_id = _required_string(document, "eventId")
    if "/" in event_id or "+" in event_id:
        raise InvalidMessageError(
            "eventId",
            "looks like an EWS or Outlook add-in id (contains '/' or '+'); convert it to a "
            "REST id with Graph's translateExchangeIds",
        )
    _check_pattern("eventId", event_id)
    return event_id


def _window(document: dict[str, Any], max_days: int) -> TimeWindow:
    for field, other in (("startDateTime", "endDateTime"), ("endDateTime", "startDateTime")):
        if other not in document:
            raise InvalidMessageError(other, f"is required with {field} (a range needs both)")
    start_text = _required_string(document, "startDateTime")
    start = _instant("startDateTime", start_text)
    end_text = _required_string(document, "endDateTime")
    end = _instant("endDateTime", end_text)
    if end <= start:
        raise InvalidMessageError("endDateTime", "must be after startDateTime")
    if end - start > timedelta(days=max_days):
        raise InvalidMessageError(
            "endDateTime",
            f"the range is {span_text(end - start)} long; the limit is {max_days} days "
            "(RANGE_MAX_DAYS)",
        )
    return TimeWindow(start, end, start_text, end_text)


def span_text(span: timedelta) -> str:
    """A positive span exactly, in the largest units that show it: `366 days 1 s`,
    `2 days 12 h`, `3 h 0.25 s` (never rounded, so a range just over a limit never reads as
    the limit itself)."""
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second_text = f"{seconds}.{span.microseconds:06d}".rstrip("0") if span.microseconds else ""
    parts = [
        f"{span.days} day{'s' if span.days != 1 else ''}" if span.days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
        f"{second_text or seconds} s" if seconds or span.microseconds else "",
    ]
    return " ".join(part for part in parts if part)


@overload
def utc_text(instant: datetime) -> str: ...
@overload
def utc_text(instant: None) -> None: ...
def utc_text(instant: datetime | None) -> str | None:
    """An aware instant as UTC text, `2026-07-01T00:00:00Z` (a fraction kept if any), the form
    Graph is asked in and replies answer in; None stays None."""
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(field: str, text: str) -> datetime:
    """An RFC 3339 date-time with an explicit offset, as an aware datetime."""
    pattern, limit = _rules()[field]
    if len(text) > limit or pattern is None or not pattern.search(text):
        raise InvalidMessageError(
            field,
            "must be an RFC 3339 date-time with an explicit offset, like "
            "2026-07-01T00:00:00Z or 2026-07-01T00:00:00+02:00",
        )
    try:
        # Python 3.11+ reads 'Z' and any number of fraction digits (beyond 6 they are cut).
        instant = datetime.fromisoformat(text)
        instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidMessageError(field, f"{text!r} is not a real calendar instant") from None
    return instant


def _preview(document: dict[str, Any]) -> bool:
    value = document.get("preview", False)
    if not isinstance(value, bool):
        raise InvalidMessageError("preview", f"must be true or false, got {_json_type(value)}")
    return value


def _required_string(document: dict[str, Any], field: str) -> str:
    if field not in document or document[field] is None:
        raise InvalidMessageError(field, "is required")
    value = document[field]
    if not isinstance(value, str):
        raise InvalidMessageError(field, f"must be a string, got {_json_type(value)}")
    if not value:
        raise InvalidMessageError(field, "must not be empty")
    return value


def _check_length(field: str, value: str) -> None:
    limit = _rules()[field][1]
    if len(value) > limit:
        raise InvalidMessageError(field, f"is {len(value)} characters; the limit is {limit}")


def _check_pattern(field: str, value: str) -> None:
    _check_length(field, value)
    pattern = _rules()[field][0]
    if pattern is not None and not pattern.search(value):
        _fail_pattern(field, value)


def _fail_pattern(field: str, value: str) -> None:
    expected = {
        "userPrincipalName": "a user principal name (name@domain) or an Entra object id (GUID)",
        "eventId": "a Graph event id (letters, digits, '-', '_' and '=')",
        "iCalUId": "an iCalendar UID without control characters",
    }[field]
    bad = sorted({c for c in value if not (c.isascii() and c.isprintable())})
    if field == "iCalUId":
        bad = sorted({c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F})
    detail = f"; it contains {', '.join(repr(c) for c in bad[:5])}" if bad else ""
    raise InvalidMessageError(field, f"must be {expected}{detail}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
