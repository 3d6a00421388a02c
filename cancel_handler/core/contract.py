"""The message contract (version 1): parse and validate one cancel request.

The JSON Schema in `schema/cancel-request.v1.schema.json` is the published form of the same rules;
the patterns are read from it, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from cancel_handler.core import ijson
from cancel_handler.core.errors import InvalidMessageError

SCHEMA_RESOURCE = "cancel-request.v1.schema.json"
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """One validated request: cancel `event_id` in the mailbox of `user_principal_name`."""

    user_principal_name: str
    event_id: str
    comment: str | None = None

    def __post_init__(self) -> None:
        # Every request is valid Unicode text, so none can fail to encode on its way to Graph.
        ijson.check(self.to_json())

    def to_json(self) -> dict[str, str]:
        """The request as a contract-shaped JSON object."""
        body = {"userPrincipalName": self.user_principal_name, "eventId": self.event_id}
        if self.comment is not None:
            body["comment"] = self.comment
        return body

    def reply_target(self) -> dict[str, str]:
        """What the request asked to cancel, as the reply names it (never the comment)."""
        return {"userPrincipalName": self.user_principal_name, "eventId": self.event_id}


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
    }


def parse_cancel_request(body: bytes) -> CancelRequest:
    """Decode a message body (UTF-8 I-JSON, RFC 7493) into a :class:`CancelRequest`, or raise
    :class:`InvalidMessageError` naming the field and the problem."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidMessageError("", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError("", f"body is not UTF-8 (bad byte at {exc.start})") from None
    try:
        document = ijson.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessageError(
            "", f"body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidMessageError("", "body is not JSON (nested too deeply)") from None
    return validate_request(document)


def validate_request(document: Any) -> CancelRequest:
    """Validate an already-decoded JSON value against the contract (I-JSON rules included)."""
    ijson.check(document)
    if not isinstance(document, dict):
        raise InvalidMessageError("", f"body must be a JSON object, got {_json_type(document)}")
    upn = _required_string(document, "userPrincipalName")
    _check_pattern("userPrincipalName", upn)
    event_id = _required_string(document, "eventId")
    if "/" in event_id or "+" in event_id:
        raise InvalidMessageError(
            "eventId",
            "looks like an EWS or Outlook add-in id (contains '/' or '+'); convert it to a "
            "REST id with Graph's translateExchangeIds",
        )
    _check_pattern("eventId", event_id)
    comment = document.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidMessageError(
                "comment", f"must be a string or null, got {_json_type(comment)}"
            )
        _check_length("comment", comment)
    return CancelRequest(upn, event_id, comment)


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
    }[field]
    bad = sorted({c for c in value if not (c.isascii() and c.isprintable())})
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
