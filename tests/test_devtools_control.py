"""The devtools' stdin commands and options change the simulator as documented, all or nothing,
and a bad option is one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cancel_handler.devtools import control
from cancel_handler.devtools.graph_simulator import GraphState
from cancel_handler.devtools.identity_endpoint import TokenAuthority
from tests.test_devtools_process import ROOT

PROG = "python -m cancel_handler.devtools"
WINDOW_RULE = (
    "must be REQUESTS/SECONDS, requests a whole number from 1 to 1000000 and seconds a number "
    "of seconds above 0, at most 86400"
)


def state_after(*lines: bytes) -> tuple[GraphState, list[dict]]:
    """A fresh simulator state after these stdin lines, and their answers."""
    authority = TokenAuthority()
    state = GraphState(authority)
    return state, [control.answer(state, authority, line) for line in lines]


def limits(state: GraphState) -> tuple:
    """The configurable part of the state."""
    return state.latency, state.auto_events, state.mailbox_concurrency, state.mailbox_window


def test_configure_sets_each_field_and_null_switches_off() -> None:
    """Numbers become the simulator's floats and ints; null means no latency and no limit."""
    state, answers = state_after(
        b'{"op": "configure", "latency": 0.05, "auto_events": true, "mailbox_concurrency": 4, '
        b'"mailbox_window": [10000, 600]}\n'
    )
    assert answers == [{"ok": True}]
    assert limits(state) == (0.05, True, 4, (10000, 600.0))
    assert [type(value) for value in limits(state)] == [float, bool, int, tuple]
    _, answers = state_after(b'{"op": "configure", "latency": 3600, "mailbox_window": [1, 1e-3]}')
    assert answers == [{"ok": True}]
    state, answers = state_after(
        b'{"op": "configure", "latency": 0.05, "mailbox_concurrency": 4, "mailbox_window": [1, 1]}',
        b'{"op": "configure", "latency": null, "mailbox_concurrency": null, '
        b'"mailbox_window": null}',
    )
    assert answers == [{"ok": True}, {"ok": True}]
    assert limits(state) == (0.0, False, None, None)


def test_a_configure_with_one_bad_field_changes_nothing() -> None:
    """Fields before and after the bad one are not applied either."""
    state, answers = state_after(
        b'{"op": "configure", "latency": 0.5, "mailbox_concurrency": 0, "auto_events": true}'
    )
    assert answers == [
        {
            "error": "mailbox_concurrency: must be a whole number from 1 to 1000000, or null for "
            "no limit; got 0"
        }
    ]
    assert limits(state) == (0.0, False, None, None)


def test_a_defect_is_answered_and_does_not_stop_the_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception no check expected becomes an error answer naming it as a defect."""

    def broken(state: GraphState) -> dict:
        raise KeyError("calls")

    monkeypatch.setattr(control, "stats", broken)
    _, answers = state_after(b'{"op": "stats"}', b'{"op": "reset"}')
    assert answers == [
        {
            "error": "unexpected error (KeyError); this is a defect: please report it with the "
            "line sent"
        },
        {"ok": True},
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--latency", "abc"], "argument --latency: must be a number of seconds from 0 to 3600; "
                               "got 'abc'"),
        (["--latency", "nan"], "argument --latency: must be a number of seconds from 0 to 3600; "
                               "got 'nan'"),
        (["--latency", "-1"], "argument --latency: must be a number of seconds from 0 to 3600; "
                              "got '-1'"),
        (["--latency", "1e999"], "argument --latency: must be a number of seconds from 0 to 3600; "
                                 "got '1e999'"),
        (["--mailbox-concurrency", "0"], "argument --mailbox-concurrency: must be a whole number "
                                         "from 1 to 1000000; got '0'"),
        (["--mailbox-concurrency", "2.5"], "argument --mailbox-concurrency: must be a whole "
                                           "number from 1 to 1000000; got '2.5'"),
        (["--mailbox-window", "600"], f"argument --mailbox-window: {WINDOW_RULE}; got '600'"),
        (["--mailbox-window", "10/0"], f"argument --mailbox-window: {WINDOW_RULE}; got '10/0'"),
        (["--mailbox-window", "x/600"], f"argument --mailbox-window: {WINDOW_RULE}; got 'x/600'"),
        (["--mailbox-window", "10/inf"], f"argument --mailbox-window: {WINDOW_RULE}; "
                                         "got '10/inf'"),
    ],
)  # fmt: skip
def test_a_bad_option_is_one_line_after_the_usage_and_exit_code_2(
    option: list[str], message: str
) -> None:
    """The option's rule and the value given after argparse's usage, before any server starts."""
    result = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "cancel_handler.devtools", *option],
        cwd=ROOT,
        env={"PATH": ""},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, "")
    *usage, error = result.stderr.splitlines()
    assert error == f"{PROG}: error: {message}"
    assert usage[0].startswith(f"usage: {PROG} [-h] [--latency SECONDS]")
    assert all(line.startswith(" " * len("usage: ")) for line in usage[1:])


def test_graph_limits_and_a_lognormal_latency_are_configured_for_every_caller() -> None:
    """`graph_limits` takes GraphLimitRules fields (numbers read as Python numbers, "scale"
    multiplying durations); `latency_lognormal` draws latencies; null switches both off."""
    state, answers = state_after(
        b'{"op": "configure", "graph_limits": {"mailbox_concurrency": 4, '
        b'"mailbox_window": [10000, 600], "concurrency_retry_after": 2.5, "scale": 0.5}, '
        b'"latency_lognormal": {"median": 0.3, "sigma": 0, "seed": 1}}'
    )
    assert answers == [{"ok": True}]
    rules = state.limits.rules
    assert (rules.mailbox_concurrency, rules.mailbox_window) == (4, (10000, 300.0))
    assert rules.concurrency_retry_after == 1.25
    assert state.latency_sampler() == pytest.approx(0.3)  # sigma 0: the median itself
    off = b'{"op": "configure", "graph_limits": null, "latency_lognormal": null}'
    assert control.answer(state, TokenAuthority(), off) == {"ok": True}
    assert (state.limits, state.latency_sampler) == (None, None)


@pytest.mark.parametrize(
    "value",
    [b'{"no_such_rule": 1}', b'{"mailbox_window": [1]}', b"[1]", b'{"scale": "x"}'],
)
def test_bad_graph_limits_change_nothing(value: bytes) -> None:
    state, answers = state_after(b'{"op": "configure", "graph_limits": ' + value + b"}")
    assert list(answers[0]) == ["error"]
    assert answers[0]["error"].startswith("graph_limits: must be an object of graph_limits.")
    assert state.limits is None


def test_add_meetings_fills_a_calendar_and_refuses_bad_fields() -> None:
    state, answers = state_after(
        b'{"op": "add_meetings", "mailbox": "leaver@contoso.com", "count": 3, '
        b'"start": "2030-01-01T08:00:00+00:00", "every_minutes": 30, "prefix": "AAMkT"}',
        b'{"op": "add_meetings", "mailbox": "x", "count": -1, "start": "2030-01-01T08:00:00"}',
        b'{"op": "add_meetings", "mailbox": "x", "count": 1, "start": "soon"}',
        b'{"op": "add_meetings", "mailbox": "x", "count": 1, "start": "2030-01-01", "colour": 1}',
    )
    assert answers == [
        {"ok": True},
        {"error": "count: must be a whole number from 0 to 100000; got -1"},
        {"error": 'start: must be an ISO 8601 date-time; got "soon"'},
        {
            "error": 'colour: op "add_meetings" has no such field; its fields are count, '
            "every_minutes, mailbox, prefix, start"
        },
    ]
    ids = sorted(event_id for mailbox, event_id in state.events if mailbox == "leaver@contoso.com")
    assert ids == ["AAMkT00000=", "AAMkT00001=", "AAMkT00002="]
