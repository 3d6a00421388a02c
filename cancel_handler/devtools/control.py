"""The stdin commands of `python -m cancel_handler.devtools`: one JSON object a line, each line
answered with one JSON object on one line. A line that is not a command is answered
`{"error": <what is wrong>}` and changes nothing."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from cancel_handler.devtools.control_values import (
    CONFIGURE_FIELDS,
    Invalid,
    configure_value,
    describe,
    field_name,
)
from cancel_handler.devtools.graph_simulator import GraphState
from cancel_handler.devtools.identity_endpoint import TokenAuthority

OPS = ("configure", "add_meetings", "stats", "reset", "token")
#: `configure` fields kept on the simulator under another name.
_STATE_ATTRIBUTE = {"graph_limits": "limits", "latency_lognormal": "latency_sampler"}
_OP_NAMES = ", ".join(describe(op) for op in OPS)


class CommandError(Exception):
    """Raised when a stdin line is not a command the tool obeys; the text says why."""


def answer(state: GraphState, authority: TokenAuthority, line: bytes) -> dict[str, Any]:
    """The answer to one stdin line: the command's result, or `{"error": …}`."""
    try:
        return run(state, authority, decode(line))
    except CommandError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a defect must not stop the servers nor print a traceback
        return {
            "error": f"unexpected error ({type(exc).__name__}); this is a defect: please report "
            "it with the line sent"
        }


def decode(line: bytes) -> object:
    """The JSON value of one line (UTF-8, strict JSON, each name once per object)."""
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        byte = line[exc.start]
        raise CommandError(f"not UTF-8: byte 0x{byte:02x} at offset {exc.start}") from exc
    if not text.strip():
        raise CommandError('empty line; send one JSON object a line, such as {"op": "stats"}')
    try:
        return json.loads(
            text, parse_float=_decimal, parse_constant=_constant, object_pairs_hook=_unique
        )
    except json.JSONDecodeError as exc:
        raise CommandError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    except RecursionError as exc:
        raise CommandError("not JSON this tool reads: arrays or objects nested too deeply") from exc
    except ValueError as exc:  # an integer beyond Python's digit limit
        raise CommandError("not JSON this tool reads: a number with too many digits") from exc


def run(state: GraphState, authority: TokenAuthority, command: object) -> dict[str, Any]:
    """Obey one decoded command; `CommandError` says why it cannot be obeyed."""
    if not isinstance(command, dict):
        raise CommandError(
            f'expected a JSON object such as {{"op": "stats"}}; got {describe(command)}'
        )
    if "op" not in command:
        raise CommandError(f"op: missing; it must be one of {_OP_NAMES}")
    op = command["op"]
    if not isinstance(op, str) or op not in OPS:
        raise CommandError(f"op: must be one of {_OP_NAMES}; got {describe(op)}")
    fields = {name: value for name, value in command.items() if name != "op"}
    if op == "configure":
        configure(state, configuration(fields))
        return {"ok": True}
    if op == "add_meetings":
        add_meetings(state, fields)
        return {"ok": True}
    if fields:
        raise CommandError(f'{field_name(next(iter(fields)))}: op "{op}" takes no other field')
    if op == "stats":
        return stats(state)
    if op == "reset":
        reset(state)
        return {"ok": True}
    token, expires_on = authority.issue()
    return {"token": token, "expires_on": expires_on}


def configuration(fields: dict[str, Any]) -> dict[str, Any]:
    """`configure`'s fields checked and converted to simulator values, all or none."""
    values = {}
    for name, value in fields.items():
        if name not in CONFIGURE_FIELDS:
            raise CommandError(
                f'{field_name(name)}: op "configure" has no such field; its fields are '
                f"{', '.join(CONFIGURE_FIELDS)}"
            )
        try:
            values[name] = configure_value(name, value)
        except Invalid as exc:
            raise CommandError(f"{name}: must be {exc}; got {describe(value)}") from exc
    return values


def configure(state: GraphState, values: dict[str, Any]) -> None:
    """Apply checked `configure` values to the simulator state."""
    with state.lock:
        for name, value in values.items():
            setattr(state, _STATE_ATTRIBUTE.get(name, name), value)


def add_meetings(state: GraphState, fields: dict[str, Any]) -> None:
    """Put `count` one-hour meetings with one attendee, `every_minutes` apart from `start`, in
    `mailbox`'s calendar (ids `prefix` + a 5-digit number)."""
    from datetime import datetime, timedelta

    from cancel_handler.devtools.graph_simulator import Meeting

    known = {"mailbox", "count", "start", "every_minutes", "prefix"}
    unknown = set(fields) - known
    if unknown:
        raise CommandError(
            f'{field_name(sorted(unknown)[0])}: op "add_meetings" has no such field; its fields '
            f"are {', '.join(sorted(known))}"
        )
    mailbox, prefix = fields.get("mailbox"), fields.get("prefix", "AAMkFleet")
    count, every = fields.get("count"), fields.get("every_minutes", 60)
    if not isinstance(mailbox, str) or not mailbox:
        raise CommandError(f"mailbox: must be a mailbox name; got {describe(mailbox)}")
    if not isinstance(prefix, str) or not prefix:
        raise CommandError(f"prefix: must be a text; got {describe(prefix)}")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 100_000:
        raise CommandError(f"count: must be a whole number from 0 to 100000; got {describe(count)}")
    if isinstance(every, bool) or not isinstance(every, int | Decimal) or every <= 0:
        raise CommandError(f"every_minutes: must be a number above 0; got {describe(every)}")
    try:
        start = datetime.fromisoformat(fields["start"])
    except (KeyError, TypeError, ValueError) as exc:
        got = describe(fields.get("start"))
        raise CommandError(f"start: must be an ISO 8601 date-time; got {got}") from exc
    step = timedelta(minutes=float(every))
    for index in range(count):  # add_meeting takes the state's lock itself
        at = start + index * step
        state.add_meeting(mailbox, Meeting(f"{prefix}{index:05}=", at, at + timedelta(hours=1)))


def stats(state: GraphState) -> dict[str, Any]:
    """What the simulator saw since the last reset."""
    with state.lock:
        statuses = Counter(call.status for call in state.calls)
        return {
            "calls": len(state.calls),
            "statuses": {str(status): count for status, count in sorted(statuses.items())},
            "max_peak_in_flight": max(state.peak_in_flight.values(), default=0),
            "connections": len({call.connection for call in state.calls}),
            "first_call_at": state.calls[0].received_at if state.calls else None,
            "last_call_at": state.calls[-1].received_at if state.calls else None,
            "limits": state.limits.summary() if state.limits is not None else None,
        }


def reset(state: GraphState) -> None:
    """Forget everything recorded; keep latency, limits and scripted events."""
    with state.lock:
        state.calls.clear()
        state.cancelled.clear()
        state.peak_in_flight.clear()
        state.window_hits.clear()


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # an exponent beyond what Decimal holds
        raise CommandError("not JSON this tool reads: a number with too large an exponent") from exc


def _constant(name: str) -> object:
    raise CommandError(f"not JSON: {name} is not a JSON value")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise CommandError(f"{field_name(name)}: appears twice in one object")
        document[name] = value
    return document
