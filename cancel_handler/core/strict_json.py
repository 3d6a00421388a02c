"""Strict JSON: the I-JSON profile (RFC 7493) every message body and every request sent follows.

On top of JSON: member names unique within an object (§2.3); no lone surrogates and no Unicode
noncharacters in any string or member name (§2.1); numbers only within ±(2**53 - 1), the range
every IEEE 754 double reader holds exactly (§2.2), which also excludes NaN and Infinity. Each
violation is an :class:`InvalidMessageError` naming the problem and its path (`comment`,
`extra.items[2]`, `["odd key"]`). Nothing here raises anything else for any input text, and
nothing converts a very long digit string to an int (Python refuses beyond 4300 digits).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from cancel_handler.core.errors import InvalidMessageError

#: 2**53 - 1: the largest magnitude allowed for any number (RFC 7493 §2.2).
MAX_EXACT_INTEGER = 9_007_199_254_740_991
_MAX_DIGITS = len(str(MAX_EXACT_INTEGER))
_RULE = "I-JSON, RFC 7493"
#: Surrogates and the noncharacters of the Basic Multilingual Plane; the other planes' two
#: noncharacters each are searched for only in text that has characters beyond it (faster).
_FORBIDDEN_BMP = re.compile("[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_FORBIDDEN_ASTRAL = re.compile(
    "[" + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
    + "]"
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_NAME_LIMIT = 64


class _Refused:
    """Stands in for a number or constant the hooks refused; reported with its path."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


class _DuplicateNames(dict):
    """An object in which `name` appeared more than once."""

    __slots__ = ("name",)


def loads(text: str) -> Any:
    """Decode one JSON text under the I-JSON rules. Raises `json.JSONDecodeError` for text that is
    not JSON, `RecursionError` for nesting too deep to decode, and :class:`InvalidMessageError`
    for JSON that is not I-JSON."""
    document = json.loads(
        text,
        object_pairs_hook=_object,
        parse_int=_integer,
        parse_float=_fraction,
        parse_constant=_constant,
    )
    check(document)
    return document


def check(value: Any) -> None:
    """Raise :class:`InvalidMessageError` for the first part of a decoded JSON value (document
    order) that breaks the I-JSON rules; walks without recursion, so any depth is fine."""
    stack: list[tuple[Any, Any]] = [(value, None)]  # (value, path link: (parent link, step))
    while stack:
        item, link = stack.pop()
        if isinstance(item, str):
            _check_text(item, link, "")
        elif isinstance(item, dict):
            if isinstance(item, _DuplicateNames):
                raise _error((link, item.name), "appears more than once; names must be unique")
            children = []
            for key, child in item.items():
                child_link = (link, key)
                if isinstance(key, str):
                    _check_text(key, child_link, "member name ")
                children.append((child, child_link))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((item[i], (link, i)) for i in range(len(item) - 1, -1, -1))
        elif isinstance(item, _Refused):
            raise _error(link, item.problem)
        elif isinstance(item, float):
            if math.isnan(item):
                raise _error(link, "is NaN, which is not a JSON number")
            if not abs(item) <= MAX_EXACT_INTEGER:
                raise _error(link, _out_of_range(repr(item)))
        elif isinstance(item, int) and abs(item) > MAX_EXACT_INTEGER:  # bools are 0 and 1
            raise _error(link, _out_of_range(_describe_integer(item)))


def forbidden_character(text: str) -> str | None:
    """What makes `text` unfit for I-JSON (a lone surrogate or a noncharacter, with its code
    point and position), or None when it is valid Unicode text."""
    if text.isascii():
        return None
    found = _FORBIDDEN_BMP.search(text)
    if found is None and max(text) > "\uffff":
        found = _FORBIDDEN_ASTRAL.search(text)
    if found is None:
        return None
    code = ord(found.group())
    kind = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "the noncharacter"
    return f"{kind} U+{code:04X} at character {found.start()}"


def _check_text(text: str, link: Any, what: str) -> None:
    problem = forbidden_character(text)
    if problem is not None:
        raise _error(link, f"{what}contains {problem}; strings must be valid Unicode text")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    duplicate = _DuplicateNames(document)
    for name, _ in pairs:
        if name in seen:
            duplicate.name = name
            break
        seen.add(name)
    return duplicate


def _integer(literal: str) -> int | _Refused:
    digits = len(literal) - literal.startswith("-")
    if digits > _MAX_DIGITS:
        return _Refused(_out_of_range(f"a {digits}-digit integer"))
    return int(literal)


def _fraction(literal: str) -> float | _Refused:
    value = float(literal)
    if not abs(value) <= MAX_EXACT_INTEGER:
        shown = literal if len(literal) <= 24 else f"a {len(literal)}-character number"
        return _Refused(_out_of_range(shown))
    return value


def _describe_integer(value: int) -> str:
    # str() refuses ints beyond 4300 digits; below 14,000 bits there are at most 4215
    if value.bit_length() < 14_000:
        return f"a {len(str(abs(value)))}-digit integer"
    return "an integer of over 4000 digits"


def _constant(name: str) -> _Refused:
    return _Refused(f"is {name}, which is not a JSON number")


def _out_of_range(shown: str) -> str:
    return (
        f"is {shown}, outside ±{MAX_EXACT_INTEGER} (2**53 - 1), the range every JSON reader "
        "holds exactly"
    )


def _error(link: Any, problem: str) -> InvalidMessageError:
    return InvalidMessageError(_path(link), f"{problem} ({_RULE})")


def _path(link: Any) -> str:
    """`a.b[2]["odd key"]` from a chain of (parent, step) links; names are shown ASCII-escaped."""
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(step)
    parts: list[str] = []
    for step in reversed(steps):
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _NAME.fullmatch(step):
            parts.append(f".{step}" if parts else step)
        else:
            shown = step if len(step) <= _PATH_NAME_LIMIT else step[:_PATH_NAME_LIMIT] + "…"
            parts.append(f"[{json.dumps(shown)}]")
    return "".join(parts)
