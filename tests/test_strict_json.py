"""Strict bodies (I-JSON, RFC 7493): every violation is an InvalidMessageError naming the problem
and where it is, for the function's parser, the validator and the sending API alike."""

from __future__ import annotations

import json

import pytest

from cancel_handler.core.contract import CancelRequest, parse_cancel_request, validate_request
from cancel_handler.core.errors import InvalidMessageError, InvalidRequestsError
from cancel_handler.core.strict_json import check, loads
from cancel_handler.ops.requests import prepare_request, read_requests

HEAD = '{"userPrincipalName": "a@b.c", "eventId": "E"'
#: 2**53 - 1, the largest integer every IEEE 754 double reader holds exactly (RFC 7493 §2.2).
LARGEST_EXACT = "9007199254740991"


def body(*members: str) -> bytes:
    """A valid request with extra members appended (raw JSON text, so escapes stay escapes)."""
    return ("".join([HEAD, *(f", {m}" for m in members), "}"])).encode()


REFUSED = [
    # (body, field named, words the problem must contain)
    (body('"eventId": "F"'), "eventId", "more than once"),
    (body('"x": {"a": 1, "a": 2}'), "x.a", "more than once"),
    (body('"comment": "ok \\ud800"'), "comment", "lone surrogate U+D800"),
    (body('"comment": "\\udc00\\ud83d"'), "comment", "lone surrogate U+DC00"),
    (body('"note": ["x", "\\udfff"]'), "note[1]", "lone surrogate U+DFFF"),
    (body('"\\ud800": 1'), '["\\ud800"]', "member name"),
    (body('"comment": "\\uffff"'), "comment", "noncharacter U+FFFF"),
    (body('"comment": "\\ufdd0"'), "comment", "noncharacter U+FDD0"),
    (body('"comment": "ok \\ud83f\\udfff"'), "comment", "noncharacter U+1FFFF"),
    (body('"x": NaN'), "x", "NaN"),
    (body('"x": [Infinity]'), "x[0]", "Infinity"),
    (body('"x": {"y": -Infinity}'), "x.y", "-Infinity"),
    (body('"big": ' + "7" * 5000), "big", "5000-digit"),
    (body('"big": -' + "7" * 5000), "big", "5000-digit"),
    (body('"n": 9007199254740992'), "n", LARGEST_EXACT),
    (body('"n": -9007199254740992'), "n", LARGEST_EXACT),
    (body('"n": 1e400'), "n", LARGEST_EXACT),
    (body('"n": 1.5e300'), "n", LARGEST_EXACT),
    (body('"odd key": {"k": [1, 2, {"\\u0000": NaN}]}'), '["odd key"].k[2]["\\u0000"]', "NaN"),
]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    REFUSED,
    # no brackets or quotes: pytest cannot select an id that starts with '[' by its node id
    ids=[f"{f}:{w}".translate(str.maketrans("", "", '[]"\\')) for _, f, w in REFUSED],
)
def test_violations_are_invalid_messages_naming_problem_and_place(
    raw: bytes, field: str, words: str
) -> None:
    """Duplicates, lone surrogates, noncharacters, NaN/Infinity and out-of-range numbers are
    refused with the path of the member and a description of the problem, never a crash."""
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(raw)
    assert caught.value.field == field
    assert words in caught.value.problem
    assert "I-JSON" in caught.value.problem
    str(caught.value).encode("utf-8")  # the description itself is valid text for Service Bus


@pytest.mark.parametrize(
    "member",
    [
        '"comment": "smile \\ud83d\\ude00 \u00e9"',
        f'"n": {LARGEST_EXACT}',
        f'"n": -{LARGEST_EXACT}',
        '"n": [0, -0, 1.5, -2.25e-300, 123456789.125, 1e15]',
        '"nested": {"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}',
    ],
)
def test_i_json_bodies_are_accepted(member: str) -> None:
    """Valid surrogate pairs, numbers within ±(2**53 - 1) and repeated names in different
    objects are fine."""
    request = parse_cancel_request(body(member))
    assert request.event_id == "E"


def test_duplicate_event_id_is_not_resolved_by_picking_one() -> None:
    """A body with two eventIds cancels neither: it is refused instead of using the last one."""
    raw = b'{"userPrincipalName": "a@b.c", "eventId": "FIRST", "eventId": "SECOND"}'
    with pytest.raises(InvalidMessageError, match="eventId: appears more than once"):
        parse_cancel_request(raw)


def test_deeply_nested_violation_is_found_without_recursion() -> None:
    """A violation 500 arrays deep is reported (with its path) rather than crashing."""
    raw = body('"deep": ' + "[" * 500 + "NaN" + "]" * 500)
    with pytest.raises(InvalidMessageError) as caught:
        parse_cancel_request(raw)
    assert caught.value.field == "deep" + "[0]" * 500


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"userPrincipalName": "a@b.c", "eventId": "E", "comment": "x\ud800"}, "comment"),
        ({"userPrincipalName": "a@b.c", "eventId": "E", "n": 2**53}, "n"),
        ({"userPrincipalName": "a@b.c", "eventId": "E", "n": float("nan")}, "n"),
        ({"userPrincipalName": "a@b.c", "eventId": "E", "n": [float("inf")]}, "n[0]"),
        ({"userPrincipalName": "a@b.c", "eventId": "E", "k": {"\udcff": 1}}, 'k["\\udcff"]'),
    ],
)
def test_validator_applies_the_same_rules_to_decoded_values(document: dict, field: str) -> None:
    """validate_request (used by the sending API) refuses what the parser refuses."""
    with pytest.raises(InvalidMessageError) as caught:
        validate_request(document)
    assert caught.value.field == field


def test_a_request_with_a_lone_surrogate_cannot_be_built() -> None:
    """No CancelRequest can hold a comment that is not valid Unicode, so none reaches httpx."""
    with pytest.raises(InvalidMessageError, match=r"comment: .*lone surrogate U\+DCFF"):
        CancelRequest("a@b.c", "E", "caf\udcff")


def test_send_api_refuses_a_lone_surrogate_in_the_comment() -> None:
    """prepare_request raises InvalidMessageError before anything could be encoded or sent."""
    with pytest.raises(InvalidMessageError) as caught:
        prepare_request("a@b.c", "E", "bad \udcc3 text")
    assert caught.value.field == "comment"


def test_json_lines_report_each_strict_violation_by_line() -> None:
    """read_requests lists a 5,000-digit number, a lone surrogate and a duplicate by line."""
    good = json.dumps({"userPrincipalName": "a@b.c", "eventId": "E1"})
    lines = [
        good,
        HEAD + ', "n": ' + "9" * 5000 + "}",
        HEAD + ', "comment": "\\ud800"}',
        '{"userPrincipalName": "a@b.c", "eventId": "E", "eventId": "F"}',
    ]
    with pytest.raises(InvalidRequestsError) as caught:
        read_requests(line.encode() for line in lines)
    problems = dict(caught.value.problems)
    assert sorted(problems) == [2, 3, 4]
    assert problems[2].startswith("n: ") and "5000-digit" in problems[2]
    assert problems[3].startswith("comment: ") and "lone surrogate" in problems[3]
    assert problems[4].startswith("eventId: appears more than once")


#: What follows "is …" in every out-of-range refusal.
OUTSIDE = (
    ", outside ±9007199254740991 (2**53 - 1), the range every JSON reader holds exactly"
    " (I-JSON, RFC 7493)"
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2**53, "a 16-digit integer"),
        (-(2**53), "a 16-digit integer"),
        # 2**13998 has floor(13998 * log10(2)) + 1 = 4214 digits
        (2**13998, "a 4214-digit integer"),
        # 2**13999 has 4215: still printable, but described without converting it to text
        (2**13999, "an integer of over 4000 digits"),
        (10**10000, "an integer of over 4000 digits"),
    ],
    ids=["2**53", "-2**53", "2**13998", "2**13999", "10**10000"],
)
def test_out_of_range_integers_are_described_by_their_size(value: int, shown: str) -> None:
    """A Python int beyond 2**53 - 1 is refused with its number of digits, and one too long for
    str() with a bound instead of a crash."""
    with pytest.raises(InvalidMessageError) as caught:
        check({"n": [value]})
    assert (caught.value.field, caught.value.problem) == ("n[0]", f"is {shown}{OUTSIDE}")


def test_the_largest_exact_integer_is_accepted_as_int_and_as_float() -> None:
    """2**53 - 1 itself, written with or without a fraction, passes the range check."""
    assert loads(f'{{"i": {LARGEST_EXACT}, "f": -{LARGEST_EXACT}.0}}') == {
        "i": 2**53 - 1,
        "f": -9007199254740991.0,
    }
    check({"i": 2**53 - 1, "f": 9007199254740991.0})


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("9007199254740992.0", "9007199254740992.0"),
        ("-1e400", "-1e400"),
        ("9007199254740992.0000000", "9007199254740992.0000000"),  # 24 characters
        ("9007199254740992.00000000", "a 25-character number"),
    ],
)
def test_out_of_range_fractions_are_quoted_up_to_24_characters(literal: str, shown: str) -> None:
    """A number with a fraction or exponent outside ±(2**53 - 1) is quoted as written when it
    is at most 24 characters long, otherwise described by its length."""
    with pytest.raises(InvalidMessageError) as caught:
        loads('{"n": ' + literal + "}")
    assert (caught.value.field, caught.value.problem) == ("n", f"is {shown}{OUTSIDE}")


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("odd " + "k" * 60, '["odd ' + "k" * 60 + '"]'),
        ("odd " + "k" * 61, '["odd ' + "k" * 60 + '\\u2026"]'),
    ],
    ids=["64-characters", "65-characters"],
)
def test_long_member_names_are_cut_at_64_characters_in_the_path(name: str, field: str) -> None:
    """A member name that needs quoting is shown whole up to 64 characters, then cut with an
    ellipsis (ASCII-escaped)."""
    with pytest.raises(InvalidMessageError) as caught:
        loads(json.dumps({name: 1}).replace("1}", "NaN}"))
    assert caught.value.field == field
    assert caught.value.problem == "is NaN, which is not a JSON number (I-JSON, RFC 7493)"


#: What ends every refusal of a string that is not valid Unicode text.
NOT_TEXT = "; strings must be valid Unicode text (I-JSON, RFC 7493)"


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('{"c": "ok \\ud800"}', "c", "contains a lone surrogate U+D800 at character 3"),
        ('{"c": "\\udfff"}', "c", "contains a lone surrogate U+DFFF at character 0"),
        ('{"c": "ab\\ufffe"}', "c", "contains the noncharacter U+FFFE at character 2"),
        (
            '{"c": "\\u00e9\\udbff\\udfff"}',
            "c",
            "contains the noncharacter U+10FFFF at character 1",
        ),
        # a lone surrogate before a valid pair: the pair must not hide it
        ('{"c": "\\ud800 \\ud83d\\ude00"}', "c", "contains a lone surrogate U+D800 at character 0"),
        (
            '{"ok": 1, "\\ud800x": 1}',
            '["\\ud800x"]',
            "member name contains a lone surrogate U+D800 at character 0",
        ),
    ],
    ids=["surrogate", "last-surrogate", "fffe", "10ffff", "before-pair", "member-name"],
)
def test_text_refusals_name_code_point_and_position(text: str, field: str, problem: str) -> None:
    """A string or member name that is not Unicode text is refused with the kind of character,
    its code point and its position, whole."""
    with pytest.raises(InvalidMessageError) as caught:
        loads(text)
    assert (caught.value.field, caught.value.problem) == (field, problem + NOT_TEXT)


def test_the_first_duplicate_name_in_document_order_is_named() -> None:
    """With two names repeated, the one whose repeat comes first is reported, in full."""
    with pytest.raises(InvalidMessageError) as caught:
        loads('{"a": 1, "b": 1, "a": 2, "b": 2}')
    assert (caught.value.field, caught.value.problem) == (
        "a",
        "appears more than once; names must be unique (I-JSON, RFC 7493)",
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"a": [1, NaN, Infinity], "b": NaN}', "a[1]"),
        ('{"a": [1, 2, NaN], "b": NaN}', "a[2]"),
        ('{"a": {"x": 1}, "b": NaN, "c": Infinity}', "b"),
    ],
)
def test_the_first_violation_in_document_order_is_reported(text: str, field: str) -> None:
    """Of several violations, the first in document order is the one named."""
    with pytest.raises(InvalidMessageError) as caught:
        loads(text)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"n": -12345678901234567}', "is a 17-digit integer" + OUTSIDE),
        ('{"n": Infinity}', "is Infinity, which is not a JSON number (I-JSON, RFC 7493)"),
        ('{"n": -Infinity}', "is -Infinity, which is not a JSON number (I-JSON, RFC 7493)"),
    ],
)
def test_number_refusals_are_whole_sentences(text: str, problem: str) -> None:
    """A too-long integer literal and the non-numbers are refused with one complete text."""
    with pytest.raises(InvalidMessageError) as caught:
        loads(text)
    assert (caught.value.field, caught.value.problem) == ("n", problem)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "is NaN, which is not a JSON number (I-JSON, RFC 7493)"),
        (float("-inf"), "is -inf" + OUTSIDE),
        (-9007199254740992.0, "is -9007199254740992.0" + OUTSIDE),
    ],
)
def test_decoded_floats_are_checked_like_parsed_ones(value: float, problem: str) -> None:
    """check() refuses NaN, infinities and floats beyond 2**53 - 1 in Python values too."""
    with pytest.raises(InvalidMessageError) as caught:
        check({"n": value})
    assert (caught.value.field, caught.value.problem) == ("n", problem)


def test_decoded_values_of_every_json_type_pass_when_valid() -> None:
    """None, booleans, an int key and valid text pass check() without error."""
    assert check({"a": None, "b": True, "c": False, 1: ["caf\u00e9 \U0001f600"]}) is None
