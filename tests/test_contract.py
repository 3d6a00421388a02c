"""The message contract: the validator and the published JSON Schema agree, errors name fields."""

from __future__ import annotations

import json
import string

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancel_handler.core.contract import (
    CancelRequest,
    load_schema,
    parse_cancel_request,
    validate_request,
)
from cancel_handler.core.errors import InvalidMessageError

SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(load_schema())

VALID = [
    {"userPrincipalName": "adele.vance@contoso.com", "eventId": "AAMkAGI1AAAt9AHjAAA="},
    {"userPrincipalName": "0f8fad5b-d9cb-469f-a165-70867728950e", "eventId": "A-b_c="},
    {"userPrincipalName": "o'neil+x@sub.contoso.co.uk", "eventId": "E", "comment": "Sorry!\nBye"},
    {
        "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "eventId": "E",
        "comment": None,
        "source": "hr-leave",
        "extra": {"nested": [1, 2]},
    },
    {"userPrincipalName": "a@b.c", "eventId": "x" * 1024, "comment": "c" * 10_000},
]

INVALID = [
    ({}, "userPrincipalName"),
    ({"eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c"}, "eventId"),
    ({"userPrincipalName": None, "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": 5, "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c", "eventId": ["E"]}, "eventId"),
    ({"userPrincipalName": "", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "nodomain", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@localhost", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a/b@c.com", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c/../me", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c\n", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c", "eventId": "E\n"}, "eventId"),
    ({"userPrincipalName": "a@b.c", "eventId": "AAMk/abc+d=="}, "eventId"),
    ({"userPrincipalName": "a@b.c", "eventId": "E?x=1"}, "eventId"),
    ({"userPrincipalName": "a@b.c", "eventId": "E%2F"}, "eventId"),
    ({"userPrincipalName": "a@b.c", "eventId": ".."}, "eventId"),
    ({"userPrincipalName": "a@b.c", "eventId": "x" * 1025}, "eventId"),
    ({"userPrincipalName": "x" * 65 + "@b.c", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@" + "b" * 120 + ".com", "eventId": "E"}, "userPrincipalName"),
    ({"userPrincipalName": "a@b.c", "eventId": "E", "comment": 3}, "comment"),
    ({"userPrincipalName": "a@b.c", "eventId": "E", "comment": "c" * 10_001}, "comment"),
]


@pytest.mark.parametrize("document", VALID)
def test_valid_requests_pass_both(document: dict) -> None:
    """Valid examples pass the validator and the schema; unknown fields are tolerated."""
    request = validate_request(document)
    assert request.user_principal_name == document["userPrincipalName"]
    assert request.event_id == document["eventId"]
    assert request.comment == document.get("comment")
    SCHEMA_VALIDATOR.validate(document)


@pytest.mark.parametrize(("document", "field"), INVALID)
def test_invalid_requests_fail_both_naming_the_field(document: dict, field: str) -> None:
    """Each broken rule is refused by the validator (naming the field) and by the schema."""
    with pytest.raises(InvalidMessageError) as caught:
        validate_request(document)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert not SCHEMA_VALIDATOR.is_valid(document)


def test_schema_examples_are_valid() -> None:
    """The examples published in the schema are accepted by the validator."""
    for example in load_schema()["examples"]:
        validate_request(example)


_ID_CHARS = string.ascii_letters + string.digits + "=_-/+.%?#@'!^~ \n\t\u00e9"
_text = st.text(alphabet=_ID_CHARS, max_size=80)
_value = st.one_of(
    st.none(), st.integers(), st.booleans(), _text, st.lists(st.integers(), max_size=2)
)
_extra = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**53 - 1, 2**53, -(2**53 - 1), -(2**53), 10**30])
    | st.floats(allow_nan=False)
    | _text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(string.ascii_letters, max_size=3), children, max_size=3),
    max_leaves=8,
)
_documents = st.fixed_dictionaries(
    {},
    optional={
        "userPrincipalName": st.one_of(_value, st.builds(lambda a, b: f"{a}@{b}", _text, _text)),
        "eventId": _value,
        "comment": _value,
        "extra": _extra,
    },
)


def _validator_accepts(document: dict) -> bool:
    try:
        validate_request(document)
    except InvalidMessageError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_validator_and_schema_agree(document: dict) -> None:
    """For generated documents the validator accepts exactly what the schema accepts, numbers
    at any depth of unknown members included (±(2**53 - 1), RFC 7493)."""
    assert _validator_accepts(document) == SCHEMA_VALIDATOR.is_valid(document)


@settings(max_examples=300, deadline=None)
@given(_extra)
def test_validator_and_schema_agree_on_unknown_members(extra: object) -> None:
    """A valid request with any unknown member is accepted by the validator exactly when the
    schema accepts it: both hold every number, at any depth, to ±(2**53 - 1)."""
    document = {"userPrincipalName": "a@b.c", "eventId": "E", "extra": extra}
    assert _validator_accepts(document) == SCHEMA_VALIDATOR.is_valid(document)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xc3\x28", "not UTF-8"),
        (b"null", "got null"),
        (b'"text"', "got a string"),
        (b"[" * 100_000, "not JSON"),
        (b" " * (256 * 1024 + 1), "limit"),
    ],
)
def test_undecodable_bodies_say_what_is_wrong(body: bytes, problem: str) -> None:
    """Bodies that are not one JSON object fail with a specific message."""
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(body)
    assert problem in str(caught.value)


def test_round_trip() -> None:
    """A parsed request serialises back to the same contract fields."""
    body = {"userPrincipalName": "a@b.c", "eventId": "E", "comment": "hi"}
    request = parse_cancel_request(json.dumps(body).encode())
    assert request == CancelRequest("a@b.c", "E", "hi")
    assert request.to_json() == body
