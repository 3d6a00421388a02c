"""The values the simulator can be configured with, checked the same way on the command line and
in stdin commands: their rules, ranges and descriptions of what was sent instead."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

#: The largest latency, in seconds (beyond, a Graph answer would never come in a run).
MAX_LATENCY_SECONDS = 3600
#: The largest per-mailbox limit: concurrent requests, or requests in one window.
MAX_LIMIT = 1_000_000
#: The longest window, in seconds (Graph's own is 600).
MAX_WINDOW_SECONDS = 86_400

LATENCY_RULE = f"a number of seconds from 0 to {MAX_LATENCY_SECONDS}"
LIMIT_RULE = f"a whole number from 1 to {MAX_LIMIT}"
WINDOW_SECONDS_RULE = f"a number of seconds above 0, at most {MAX_WINDOW_SECONDS}"
WINDOW_RULE = f"[requests, seconds], requests {LIMIT_RULE} and seconds {WINDOW_SECONDS_RULE}"

GRAPH_LIMITS_RULE = (
    "an object of graph_limits.GraphLimitRules fields (mailbox_concurrency, mailbox_window, "
    "app_window, count_refused, concurrency_retry_after, window_retry_after, refusal_latency) "
    'and "scale", a factor for every duration'
)
LOGNORMAL_RULE = 'an object {"median": seconds above 0, "sigma": a number >= 0, "seed": any}'

#: `configure`'s fields: the rule of each and what null means (None: null is not allowed).
CONFIGURE_FIELDS: dict[str, tuple[str, str | None]] = {
    "latency": (LATENCY_RULE, "none"),
    "auto_events": ("true or false", None),
    "mailbox_concurrency": (LIMIT_RULE, "no limit"),
    "mailbox_window": (WINDOW_RULE, "no limit"),
    "graph_limits": (GRAPH_LIMITS_RULE, "no limits across callers"),
    "latency_lognormal": (LOGNORMAL_RULE, "the fixed latency"),
}
_SHOWN = 40


class Invalid(Exception):
    """Raised when a value breaks its rule; the text is the rule."""


def configure_value(name: str, value: object) -> Any:
    """The simulator's value for `configure`'s field `name`; `Invalid` carries the whole rule."""
    rule, null = CONFIGURE_FIELDS[name]
    if value is None and null is not None:
        return 0.0 if name == "latency" else None
    try:
        if name == "auto_events":
            if not isinstance(value, bool):
                raise Invalid(rule)
            return value
        if name == "latency":
            return latency(value)
        if name == "mailbox_concurrency":
            return limit(value)
        if name == "graph_limits":
            return graph_limits(value)
        if name == "latency_lognormal":
            return lognormal(value)
        return window(value)
    except Invalid as exc:
        raise Invalid(f"{rule}, or null for {null}" if null else rule) from exc


def latency(value: object) -> float:
    """Seconds each Graph answer waits."""
    number = _number(value)
    if number is None or not 0 <= number <= MAX_LATENCY_SECONDS:
        raise Invalid(LATENCY_RULE)
    return float(number)


def limit(value: object) -> int:
    """A per-mailbox limit: concurrent requests, or requests in one window."""
    number = _number(value)
    if number is None or number != number.to_integral_value() or not 1 <= number <= MAX_LIMIT:
        raise Invalid(LIMIT_RULE)
    return int(number)


def window_seconds(value: object) -> float:
    """The length of a mailbox's request window."""
    number = _number(value)
    if number is None or not 0 < number <= MAX_WINDOW_SECONDS:
        raise Invalid(WINDOW_SECONDS_RULE)
    return float(number)


def window(value: object) -> tuple[int, float]:
    """`[requests, seconds]`: at most that many requests per mailbox within that many seconds."""
    if not isinstance(value, list) or len(value) != 2:
        raise Invalid(WINDOW_RULE)
    return limit(value[0]), window_seconds(value[1])


def graph_limits(value: object) -> Any:
    """Graph's limits enforced across every caller, from `GraphLimitRules` fields."""
    from dataclasses import fields

    from cancel_handler.devtools.graph_limits import GraphLimitRules, GraphLimits

    if not isinstance(value, dict):
        raise Invalid(GRAPH_LIMITS_RULE)
    given = {name: plain(item) for name, item in value.items()}
    scale = given.pop("scale", 1.0)
    known = {field.name for field in fields(GraphLimitRules)}
    if set(given) - known or isinstance(scale, bool) or not isinstance(scale, int | float):
        raise Invalid(GRAPH_LIMITS_RULE)
    try:
        for name in ("mailbox_window", "app_window"):
            if given.get(name) is not None:
                given[name] = (int(given[name][0]), float(given[name][1]))
        return GraphLimits(GraphLimitRules(**given).scaled(float(scale)))
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise Invalid(GRAPH_LIMITS_RULE) from exc


def lognormal(value: object) -> Any:
    """A latency drawn from a log-normal distribution with the given median and sigma."""
    import math
    import random

    if not isinstance(value, dict) or set(value) - {"median", "sigma", "seed"}:
        raise Invalid(LOGNORMAL_RULE)
    median, sigma = _number(value.get("median")), _number(value.get("sigma"))
    if median is None or sigma is None or median <= 0 or sigma < 0:
        raise Invalid(LOGNORMAL_RULE)
    seed = value.get("seed")
    rng = random.Random(seed if isinstance(seed, int | str) else None)  # noqa: S311 - simulation
    mu = math.log(float(median))
    return lambda: rng.lognormvariate(mu, float(sigma))


def plain(value: object) -> object:
    """A decoded JSON value with its numbers as Python floats and ints (lists as lists)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def from_text(text: str) -> object:
    """A command-line number as a JSON number would be read (the text itself if not one)."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def describe(value: object) -> str:
    """A JSON value as an answer shows what was sent: short, and the same for equal values."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        text = f"[{', '.join(describe(item) for item in value)}]"
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = json.dumps(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def field_name(name: str) -> str:
    """A field name as answers show it: as is when a plain word, else quoted like `describe`."""
    plain = name.isascii() and name.replace("_", "a").isalnum() and len(name) <= _SHOWN
    return name if plain else describe(name)


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return None
    number = Decimal(value)
    return number if number.is_finite() else None
