"""The contract's limits and error texts, exactly as a sender reads them in the dead-letter
description: the field, the problem, and for bad characters which ones. Limits are the README's
published ones (UPN ≤ 113, eventId ≤ 1024, comment ≤ 10,000 characters) and Service Bus
Standard's 256 KB message size."""

from __future__ import annotations

import json

import pytest

from cancel_handler.core.contract import CancelRequest, parse_cancel_request
from cancel_handler.core.errors import InvalidMessageError

#: Service Bus Standard tier: at most 256 KB per message.
SERVICE_BUS_STANDARD_MAX_MESSAGE_BYTES = 256 * 1024


def _problem(document: object) -> str:
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(json.dumps(document).encode())
    return str(caught.value)


EWS_ID = (
    "eventId: looks like an EWS or Outlook add-in id (contains '/' or '+'); convert it to a "
    "REST id with Graph's translateExchangeIds"
)


def _with(field: str, value: object) -> dict:
    """A valid request with `field` set to `value`."""
    return {"userPrincipalName": "a@b.c", "eventId": "E", field: value}


def _padded_body(size: int) -> bytes:
    """A valid request padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"userPrincipalName": "a@b.c", "eventId": "E"}).encode()
    return body + b" " * (size - len(body))


def test_a_body_of_exactly_256_kb_is_read() -> None:
    """The largest message Service Bus Standard delivers (256 KB) is accepted."""
    body = _padded_body(SERVICE_BUS_STANDARD_MAX_MESSAGE_BYTES)
    assert parse_cancel_request(body) == CancelRequest("a@b.c", "E")


def test_one_byte_more_is_refused_with_the_size() -> None:
    """262,145 bytes are refused before decoding, naming the size and the limit."""
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(_padded_body(SERVICE_BUS_STANDARD_MAX_MESSAGE_BYTES + 1))
    assert str(caught.value) == "body is 262145 bytes; the limit is 262144"
    assert caught.value.field == ""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xc3\x28", "body is not UTF-8 (bad byte at 0)"),
        (b'{"a": 1}\xff', "body is not UTF-8 (bad byte at 8)"),
        (b'{"a": }', "body is not JSON (Expecting value at line 1 column 7)"),
        (b'\n\n{"a"', "body is not JSON (Expecting ':' delimiter at line 3 column 5)"),
        (b"[" * 100_000, "body is not JSON (nested too deeply)"),
    ],
)
def test_undecodable_bodies_say_exactly_what_is_wrong(body: bytes, message: str) -> None:
    """Not UTF-8 names the byte offset; not JSON names the parser's reason, line and column."""
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(body)
    assert str(caught.value) == message and caught.value.field == ""
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "body must be a JSON object, got null"),
        (True, "body must be a JSON object, got a boolean"),
        (3, "body must be a JSON object, got a number"),
        (2.5, "body must be a JSON object, got a number"),
        ("x", "body must be a JSON object, got a string"),
        ([], "body must be a JSON object, got an array"),
        ({}, "userPrincipalName: is required"),
        (_with("userPrincipalName", None), "userPrincipalName: is required"),
        (_with("userPrincipalName", False), "userPrincipalName: must be a string, got a boolean"),
        (_with("userPrincipalName", 7), "userPrincipalName: must be a string, got a number"),
        (_with("userPrincipalName", ["a"]), "userPrincipalName: must be a string, got an array"),
        (_with("userPrincipalName", {}), "userPrincipalName: must be a string, got an object"),
        (_with("userPrincipalName", ""), "userPrincipalName: must not be empty"),
        (
            {"userPrincipalName": "a@b.c"},
            "eventId: is required (or iCalUId, or startDateTime with endDateTime)",
        ),
        (_with("eventId", ""), "eventId: must not be empty"),
        (_with("comment", 5), "comment: must be a string or null, got a number"),
        (_with("comment", {}), "comment: must be a string or null, got an object"),
    ],
)
def test_shape_errors_name_the_field_and_the_json_type(document: object, message: str) -> None:
    """Missing, empty or ill-typed fields fail with the field's name and the JSON type seen;
    the error's `field` is that name, or empty for the body as a whole."""
    assert _problem(document) == message
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(json.dumps(document).encode())
    assert caught.value.field == ("" if message.startswith("body") else message.split(":")[0])


@pytest.mark.parametrize(
    ("field", "limit"), [("userPrincipalName", 113), ("eventId", 1024), ("comment", 10_000)]
)
def test_each_field_is_refused_one_character_past_its_published_limit(
    field: str, limit: int
) -> None:
    """At the limit a field is accepted; one character more is refused naming both lengths."""
    document = {"userPrincipalName": "a@b.c", "eventId": "E"}

    def value(length: int) -> str:
        if field == "userPrincipalName":
            return "n" * 64 + "@" + ".".join(["d" * 15] * 4)[: length - 65 - 2] + ".c"
        return "E" * length

    document[field] = value(limit)
    assert len(document[field]) == limit
    assert getattr(parse_cancel_request(json.dumps(document).encode()), _attribute(field))
    document[field] = value(limit + 1)
    assert _problem(document) == f"{field}: is {limit + 1} characters; the limit is {limit}"


def _attribute(field: str) -> str:
    return {"userPrincipalName": "user_principal_name", "eventId": "event_id"}.get(field, field)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"userPrincipalName": "no-at-sign", "eventId": "E"},
            "userPrincipalName: must be a user principal name (name@domain) or an Entra "
            "object id (GUID)",
        ),
        (
            {"userPrincipalName": "a b@c.d", "eventId": "E"},
            "userPrincipalName: must be a user principal name (name@domain) or an Entra "
            "object id (GUID)",
        ),
        (
            {"userPrincipalName": "a@b.c", "eventId": "E!"},
            "eventId: must be a Graph event id (letters, digits, '-', '_' and '=')",
        ),
        (
            {"userPrincipalName": "ädele@b.c", "eventId": "E"},
            "userPrincipalName: must be a user principal name (name@domain) or an Entra "
            "object id (GUID); it contains 'ä'",
        ),
        (
            {"userPrincipalName": "a@b.c", "eventId": "E\u200bé\x00\te\x01\x02\u00e9"},
            "eventId: must be a Graph event id (letters, digits, '-', '_' and '='); it contains "
            "'\\x00', '\\x01', '\\x02', '\\t', 'é'",
        ),
        (
            {"userPrincipalName": "a@b.c", "eventId": "E\x05\x04\x03\x02\x01\x06"},
            "eventId: must be a Graph event id (letters, digits, '-', '_' and '='); it contains "
            "'\\x01', '\\x02', '\\x03', '\\x04', '\\x05'",
        ),
        (_with("eventId", "AAMk/AA+"), EWS_ID),
        (_with("eventId", "AAMk/AA"), EWS_ID),
        (_with("eventId", "AAMk+AA"), EWS_ID),
    ],
)
def test_pattern_errors_say_what_is_expected_and_which_characters_are_bad(
    document: dict, message: str
) -> None:
    """A value of the wrong form says what form is expected; non-ASCII or unprintable characters
    are listed (sorted, at most five) so the sender can find them."""
    assert _problem(document) == message


def test_a_null_comment_is_no_comment() -> None:
    """`"comment": null` is the same as leaving it out."""
    document = {"userPrincipalName": "a@b.c", "eventId": "E", "comment": None}
    assert parse_cancel_request(json.dumps(document).encode()) == CancelRequest("a@b.c", "E")
    assert CancelRequest("a@b.c", "E").to_json() == {"userPrincipalName": "a@b.c", "eventId": "E"}


UPN = "organizer@contoso.example"
ONE_TARGET = (
    "a request names exactly one target (eventId, iCalUId, or startDateTime with endDateTime); "
    "this one names "
)
RANGE = {"startDateTime": "2027-05-01T00:00:00Z", "endDateTime": "2027-05-08T00:00:00Z"}


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        (
            {"eventId": "AAMk=", "iCalUId": "040000"},
            "iCalUId: " + ONE_TARGET + "eventId and iCalUId",
        ),
        (
            {"eventId": "AAMk=", **RANGE},
            "startDateTime: " + ONE_TARGET + "eventId and startDateTime/endDateTime",
        ),
        (
            {"iCalUId": "040000", "endDateTime": RANGE["endDateTime"]},
            "endDateTime: " + ONE_TARGET + "iCalUId and startDateTime/endDateTime",
        ),
    ],
)
def test_two_targets_name_the_second_and_both(targets: dict[str, str], expected: str) -> None:
    """The sender learns which field to drop and which targets the request named."""
    assert _problem({"userPrincipalName": UPN, **targets}) == expected


def test_preview_outside_a_range_says_where_it_applies() -> None:
    assert _problem({"userPrincipalName": UPN, "eventId": "AAMk=", "preview": True}) == (
        "preview: applies only to a date range (startDateTime and endDateTime)"
    )
