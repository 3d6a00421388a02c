"""The message contract: the validator and the published JSON Schema agree, errors name fields."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cancel_handler.core.contract import (
    CancelRequest,
    Target,
    is_event_id,
    load_schema,
    parse_cancel_request,
    span_text,
    validate_request,
)
from cancel_handler.core.errors import InvalidMessageError

SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(load_schema())
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "cancel_handler" / "schema"
V1_VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((SCHEMA_DIR / "cancel-request.v1.schema.json").read_text("utf-8"))
)

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


UPN_ = "adele.vance@contoso.com"
START, END = "2026-07-01T00:00:00+02:00", "2026-07-15T00:00:00+02:00"

VALID_V1_1 = [
    {"userPrincipalName": UPN_, "iCalUId": "040000008200E00074C5B7101A82E008"},
    {"userPrincipalName": UPN_, "iCalUId": "it's \"quoted\" ') or true or ('", "comment": "x"},
    {"userPrincipalName": UPN_, "iCalUId": "é" * 2048},
    {"userPrincipalName": UPN_, "startDateTime": START, "endDateTime": END},
    {"userPrincipalName": UPN_, "startDateTime": "2026-07-01T00:00:00Z",
     "endDateTime": "2026-07-01T00:00:00.5Z", "preview": True},
    {"userPrincipalName": UPN_, "startDateTime": "2026-03-29T00:00:00+01:00",
     "endDateTime": "2026-03-30T00:00:00+02:00", "preview": False, "comment": None},
    # 366 days of 24 hours exactly (the default RANGE_MAX_DAYS) across a leap day
    {"userPrincipalName": UPN_, "startDateTime": "2027-07-01T00:00:00Z",
     "endDateTime": "2028-07-01T00:00:00Z"},
]

INVALID_V1_1 = [
    ({"userPrincipalName": UPN_, "eventId": "E", "iCalUId": "U"}, "iCalUId", "exactly one"),
    ({"userPrincipalName": UPN_, "eventId": "E", "startDateTime": START, "endDateTime": END},
     "startDateTime", "exactly one"),
    ({"userPrincipalName": UPN_, "iCalUId": "U", "endDateTime": END}, "endDateTime",
     "exactly one"),
    ({"userPrincipalName": UPN_, "eventId": None, "iCalUId": "U"}, "iCalUId", "exactly one"),
    ({"userPrincipalName": UPN_, "startDateTime": START}, "endDateTime", "needs both"),
    ({"userPrincipalName": UPN_, "endDateTime": END}, "startDateTime", "needs both"),
    ({"userPrincipalName": UPN_, "iCalUId": ""}, "iCalUId", "empty"),
    ({"userPrincipalName": UPN_, "iCalUId": "a\nb"}, "iCalUId", "'\\n'"),
    ({"userPrincipalName": UPN_, "iCalUId": "a\x00b"}, "iCalUId", "'\\x00'"),
    ({"userPrincipalName": UPN_, "iCalUId": "a\x85b"}, "iCalUId", "'\\x85'"),
    ({"userPrincipalName": UPN_, "iCalUId": "u" * 2049}, "iCalUId", "limit is 2048"),
    ({"userPrincipalName": UPN_, "iCalUId": 42}, "iCalUId", "string"),
    ({"userPrincipalName": UPN_, "startDateTime": "2026-07-01T00:00:00",
      "endDateTime": END}, "startDateTime", "explicit offset"),
    ({"userPrincipalName": UPN_, "startDateTime": "2026-07-01", "endDateTime": END},
     "startDateTime", "must be an RFC 3339 date-time with an explicit offset, like "
     "2026-07-01T00:00:00Z or 2026-07-01T00:00:00+02:00"),
    ({"userPrincipalName": UPN_, "startDateTime": "next monday", "endDateTime": END},
     "startDateTime", "RFC 3339"),
    ({"userPrincipalName": UPN_, "startDateTime": START, "endDateTime": "2026-07-15T00:00Z"},
     "endDateTime", "RFC 3339"),
    ({"userPrincipalName": UPN_, "startDateTime": START, "endDateTime": END + "\n"},
     "endDateTime", "RFC 3339"),
    ({"userPrincipalName": UPN_, "startDateTime": START, "endDateTime": START},
     "endDateTime", "after startDateTime"),
    ({"userPrincipalName": UPN_, "startDateTime": END, "endDateTime": START},
     "endDateTime", "after startDateTime"),
    ({"userPrincipalName": UPN_, "startDateTime": "2027-07-01T00:00:00Z",
      "endDateTime": "2028-07-01T00:00:01Z"}, "endDateTime", "limit is 366 days"),
    ({"userPrincipalName": UPN_, "startDateTime": "2026-02-30T00:00:00Z", "endDateTime": END},
     "startDateTime", "real calendar"),
    ({"userPrincipalName": UPN_, "startDateTime": START, "endDateTime": END, "preview": "yes"},
     "preview", "must be true or false, got a string"),
    ({"userPrincipalName": UPN_, "eventId": "E", "preview": True}, "preview", "date range"),
    ({"userPrincipalName": UPN_, "iCalUId": "U", "preview": False}, "preview", "date range"),
]


@pytest.mark.parametrize("document", VALID_V1_1)
def test_version_1_1_targets_pass_both(document: dict) -> None:
    """iCalUId and date-range requests are accepted by the validator and by the schema."""
    request = validate_request(document)
    SCHEMA_VALIDATOR.validate(document)
    assert request.event_id is None
    assert request.ical_uid == document.get("iCalUId")
    if "startDateTime" in document:
        assert request.window is not None
        assert request.window.start == datetime.fromisoformat(document["startDateTime"])
        assert request.preview is document.get("preview", False)
    assert request.to_json() == {k: v for k, v in document.items() if v not in (None, False)}


@pytest.mark.parametrize(("document", "field", "problem"), INVALID_V1_1)
def test_version_1_1_violations_name_field_and_problem(
    document: dict, field: str, problem: str
) -> None:
    """Each broken 1.1 rule is refused with the field and a specific problem."""
    with pytest.raises(InvalidMessageError) as caught:
        validate_request(document)
    assert caught.value.field == field
    assert problem in str(caught.value)


def test_window_limit_follows_the_setting() -> None:
    """A 400-day range passes with RANGE_MAX_DAYS=1825 and fails with the default 366."""
    document = {"userPrincipalName": UPN_, "startDateTime": "2026-01-01T00:00:00Z",
                "endDateTime": "2027-02-05T00:00:00Z"}
    assert validate_request(document, max_range_days=1825).window is not None
    with pytest.raises(InvalidMessageError, match="limit is 366 days"):
        validate_request(document)


def test_window_across_a_dst_change_is_measured_in_real_time() -> None:
    """Offsets are honoured: 00:00+01:00 to 00:00+02:00 the next day is 23 hours, in UTC."""
    request = validate_request(VALID_V1_1[5])
    assert request.window is not None
    assert request.window.start.astimezone(UTC) == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert request.window.end - request.window.start == timedelta(hours=23)


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


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_every_valid_v1_body_stays_valid_and_means_the_same(document: dict) -> None:
    """A body the version 1 schema accepts is accepted by 1.1 as the same eventId request."""
    if V1_VALIDATOR.is_valid(document):
        request = validate_request(document)
        assert (request.event_id, request.ical_uid, request.window) == (
            document["eventId"], None, None)
        assert SCHEMA_VALIDATOR.is_valid(document)


_instants = st.one_of(
    st.sampled_from([
        "2026-07-01T00:00:00Z", "2026-07-01T08:30:00+02:00", "2026-07-10T00:00:00.25-05:00",
        "2027-12-31T23:59:59Z", "2026-02-29T00:00:00Z", "0000-01-01T00:00:00Z",
        "2026-07-01T00:00:00", "2026-07-01", "2026-07-01T24:00:00Z", "", "x",
        "2026-07-01T00:00:00+2:00", "2026-07-01t00:00:00z", "2026-07-01T00:00:00Z\n",
    ]),
    _value,
)
_v11_documents = st.fixed_dictionaries(
    {"userPrincipalName": st.just(UPN_)},
    optional={
        "eventId": st.one_of(st.just("E"), _value),
        "iCalUId": st.one_of(st.just("U'1"), _value),
        "startDateTime": _instants,
        "endDateTime": _instants,
        "preview": st.one_of(st.booleans(), _value),
        "comment": _value,
    },
)

#: What the schema cannot express, so only the validator refuses it.
_BEYOND_SCHEMA = ("after startDateTime", "real calendar instant", "the limit is 366 days")


@settings(max_examples=600, deadline=None)
@given(_v11_documents)
def test_validator_and_schema_agree_on_targets(document: dict) -> None:
    """For generated 1.1 documents the schema accepts whatever the validator accepts, and the
    validator refuses a schema-valid document only for date arithmetic the schema cannot do."""
    try:
        validate_request(document)
    except InvalidMessageError as exc:
        if SCHEMA_VALIDATOR.is_valid(document):
            assert any(rule in exc.problem for rule in _BEYOND_SCHEMA), exc
    else:
        assert SCHEMA_VALIDATOR.is_valid(document)


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


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(None, False), (123, False), ("", False), ("A" * 1024, True), ("A" * 1025, False)],
)
def test_listed_event_ids_follow_the_schemas_eventid_rule(value: object, accepted: bool) -> None:
    """An id read off a Graph list is usable only as a non-empty string of at most the schema's
    1024 characters; None or a number is refused without an error."""
    assert is_event_id(value) is accepted


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-07-01T00:00:00.123456789+02:00", datetime(2026, 6, 30, 22, 0, 0, 123456, UTC)),
        ("2026-07-01T00:00:00.987654321-05:30", datetime(2026, 7, 1, 5, 30, 0, 987654, UTC)),
        ("2026-07-01T00:00:00.5Z", datetime(2026, 7, 1, 0, 0, 0, 500000, UTC)),
        ("2026-07-01T23:59:59Z", datetime(2026, 7, 1, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_range_instants_are_read_to_the_microsecond_in_their_offset(
    text: str, utc: datetime
) -> None:
    """A window's instants keep their offset and up to six fraction digits (RFC 3339 allows
    more; the seventh onwards are dropped, never rounded into the next microsecond)."""
    later = "2026-07-05T00:00:00Z"
    request = validate_request({"userPrincipalName": UPN_, "startDateTime": text,
                                "endDateTime": later})
    assert request.window.start == utc
    assert request.window.start.utcoffset() is not None


@pytest.mark.parametrize(
    ("document", "target"),
    [
        ({"eventId": "AAMk="}, Target.EVENT_ID),
        ({"iCalUId": "U-1"}, Target.ICAL_UID),
        ({"startDateTime": "2027-07-01T00:00:00Z", "endDateTime": "2027-07-02T00:00:00Z"},
         Target.DATE_RANGE),
    ],
)
def test_a_request_names_its_kind_of_target(document: dict, target: Target) -> None:
    """A validated request says which kind of target it names, as a member of the enum."""
    request = validate_request({"userPrincipalName": UPN_, **document})
    assert request.target is target


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"startDateTime": "2026-07-01T00:00:00Z"},
         "endDateTime: is required with startDateTime (a range needs both)"),
        ({"endDateTime": "2026-07-01T00:00:00Z"},
         "startDateTime: is required with endDateTime (a range needs both)"),
        ({"startDateTime": "2026-07-02T00:00:00Z", "endDateTime": "2026-07-01T00:00:00Z"},
         "endDateTime: must be after startDateTime"),
        ({"startDateTime": "2027-07-01T00:00:00Z", "endDateTime": "2028-07-01T12:00:00Z"},
         "endDateTime: the range is 366 days 12 h long; the limit is 366 days (RANGE_MAX_DAYS)"),
        ({"startDateTime": "2027-07-01T00:00:00Z", "endDateTime": "2028-07-01T00:00:01Z"},
         "endDateTime: the range is 366 days 1 s long; the limit is 366 days (RANGE_MAX_DAYS)"),
        ({"startDateTime": "2027-07-01T00:00:00Z", "endDateTime": "2028-07-01T00:00:00.000001Z"},
         "endDateTime: the range is 366 days 0.000001 s long; the limit is 366 days "
         "(RANGE_MAX_DAYS)"),
        ({"startDateTime": "2027-07-01T00:00:00+02:00",
          "endDateTime": "2028-07-01T01:01:01.5+02:00"},
         "endDateTime: the range is 366 days 1 h 1 min 1.5 s long; the limit is 366 days "
         "(RANGE_MAX_DAYS)"),
        ({"iCalUId": "Caf\u00e9\u0007"},
         "iCalUId: must be an iCalendar UID without control characters; it contains '\\x07'"),
        ({"iCalUId": "a b\u001f\u007f\u009f\u00a0"},
         "iCalUId: must be an iCalendar UID without control characters; it contains "
         "'\\x1f', '\\x7f', '\\x9f'"),
    ],
)
def test_range_and_uid_errors_say_exactly_what_to_fix(document: dict, message: str) -> None:
    """The sender reads the whole error: the missing partner field, the order rule, the
    range's length in days against the documented 366-day default, and only the C0 and C1
    control characters of a UID (a space, non-ASCII letter or no-break space is allowed)."""
    with pytest.raises(InvalidMessageError) as caught:
        validate_request({"userPrincipalName": UPN_, **document})
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=12), "2 days 12 h"),
        (timedelta(hours=3, microseconds=250000), "3 h 0.25 s"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(seconds=59, microseconds=10), "59.00001 s"),
    ],
)
def test_span_text_shows_a_span_exactly(span: timedelta, text: str) -> None:
    """Each unit appears only when it has a count; fractions of a second are never rounded."""
    assert span_text(span) == text
