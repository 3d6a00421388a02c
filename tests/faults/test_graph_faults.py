"""Graph faults from the loopback simulator, alone and mixed, beyond the per-row tests of
tests/test_cancel_path.py: HTTP-date Retry-After, garbage success bodies, HTML error pages,
resets mid-response, slow answers, refused connections."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from cancel_handler.devtools.graph_simulator import Fault, GraphSimulator
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, RecordingSleep, received_message

HTML_503 = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"
FAST = {"GRAPH_TIMEOUT_SECONDS": "0.3"}


def _http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def test_http_date_retry_after_is_honoured(loopback: Loopback) -> None:
    """Retry-After as an HTTP-date → the wait is the time until that date, then success."""
    loopback.graph.state.add_event(UPN, "G1")
    loopback.graph.state.script(UPN, "G1", Fault(429, {"Retry-After": _http_date(30)}))
    sleep = RecordingSleep()
    actions = RecordingActions()
    process_all(loopback.processor(sleep), [received_message(cancel_body("G1"))], actions)
    assert actions.only.action == "complete"
    [wait] = sleep.waits
    # Whole seconds, measured from a clock that keeps running: slack for a loaded machine, far
    # above the 0.25-0.5 s backoff that would be used if the date were ignored.
    assert 10.0 <= wait <= 30.0


def test_http_date_retry_after_beyond_budget_gives_back(loopback: Loopback) -> None:
    """An HTTP-date five minutes away is beyond the 60 s budget → abandoned without waiting,
    with the wait Graph asked for kept for a delayed retry."""
    loopback.graph.state.script(UPN, "G2", Fault(429, {"Retry-After": _http_date(300)}))
    sleep = RecordingSleep()
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(sleep), [received_message(cancel_body("G2"))], actions
    )
    assert actions.only.action == "abandon" and sleep.waits == []
    assert outcome.retry_after is not None and 290 <= outcome.retry_after <= 300


def test_429_without_retry_after_backs_off(loopback: Loopback) -> None:
    """429 without Retry-After → jittered exponential backoff, then success."""
    loopback.graph.state.add_event(UPN, "G3")
    loopback.graph.state.script(UPN, "G3", Fault(429), Fault(429), Fault(429))
    sleep = RecordingSleep()
    actions = RecordingActions()
    process_all(loopback.processor(sleep), [received_message(cancel_body("G3"))], actions)
    assert actions.only.action == "complete"
    assert len(sleep.waits) == 3
    assert 0.25 <= sleep.waits[0] <= 0.5 and 1.0 <= sleep.waits[2] <= 2.0


@pytest.mark.parametrize("status", [200, 202])
@pytest.mark.parametrize(
    "body", [b"\x00\xff garbage {", b"<html>OK</html>", b'{"error": "not really"}']
)
def test_success_with_garbage_body_completes(loopback: Loopback, status: int, body: bytes) -> None:
    """A 2xx is success whatever its body: complete, one call, no retry."""
    loopback.graph.state.script(UPN, "G4", Fault(status, {"Content-Type": "text/html"}, body))
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("G4"))], actions)
    assert actions.only.action == "complete"
    assert len(loopback.graph.state.calls) == 1


def test_html_503_page_is_retried_then_completes(loopback: Loopback) -> None:
    """An HTML error page instead of Graph's JSON is still a 503: retried, then success."""
    loopback.graph.state.add_event(UPN, "G5")
    page = Fault(503, {"Content-Type": "text/html"}, HTML_503)
    loopback.graph.state.script(UPN, "G5", page, page)
    actions = RecordingActions()
    process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("G5"))], actions
    )
    assert actions.only.action == "complete"
    assert [c.status for c in loopback.graph.state.calls] == [503, 503, 202]


def test_persistent_html_503_gives_back_with_the_status(loopback: Loopback) -> None:
    """HTML 503 until the budget is spent → abandon, description names the status."""
    page = Fault(503, {"Content-Type": "text/html"}, HTML_503)
    loopback.graph.state.script(UPN, "G6", *[page] * 20)
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), CANCEL_RETRY_BUDGET_SECONDS="3")
    [outcome] = process_all(processor, [received_message(cancel_body("G6"))], actions)
    assert actions.only.action == "abandon"
    assert "Graph answered 503" in outcome.settlement.description


@pytest.mark.parametrize("status", [202, 502])
def test_reset_mid_response_that_cancelled_then_404_completes(
    loopback: Loopback, status: int
) -> None:
    """Headers sent, then the connection dies mid-body (the cancel happened): the retry's 404
    completes as AlreadyCancelled."""
    loopback.graph.state.add_event(UPN, "G7")
    loopback.graph.state.script(
        UPN, "G7", Fault(status, body=b'{"error":{"code":"x"}}', truncate=True, cancels=True)
    )
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("G7"))], actions
    )
    assert actions.only.action == "complete"
    assert outcome.settlement.reason == "AlreadyCancelled"
    assert [c.status for c in loopback.graph.state.calls] == [status, 404]


def test_reset_mid_response_without_cancel_retries_and_cancels(loopback: Loopback) -> None:
    """A reset mid-response where nothing happened: the retry cancels (202) and completes."""
    loopback.graph.state.add_event(UPN, "G8")
    loopback.graph.state.script(UPN, "G8", Fault(503, body=b"x" * 200, truncate=True))
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("G8"))], actions
    )
    assert (actions.only.action, outcome.settlement.reason) == ("complete", "Cancelled")


def test_slow_answer_without_cancel_is_retried(loopback: Loopback) -> None:
    """A 503 slower than GRAPH_TIMEOUT_SECONDS is abandoned client-side and retried."""
    loopback.graph.state.add_event(UPN, "G9")
    loopback.graph.state.script(UPN, "G9", Fault(503, delay=0.8))
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep(), **FAST), [received_message(cancel_body("G9"))], actions
    )
    assert (actions.only.action, outcome.settlement.reason) == ("complete", "Cancelled")


def test_refused_then_recovered_on_redelivery(loopback: Loopback) -> None:
    """Graph unreachable (refused) → abandoned; the redelivery, once Graph is back, cancels."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = {
        "GRAPH_BASE_URL": f"http://127.0.0.1:{port}/v1.0",
        "CANCEL_RETRY_BUDGET_SECONDS": "2",
    }
    actions = RecordingActions()
    process_all(
        loopback.processor(RecordingSleep(), **refused),
        [received_message(cancel_body("G10"))],
        actions,
    )
    assert actions.only.action == "abandon"
    with GraphSimulator(loopback.authority, port=port) as graph:
        graph.state.add_event(UPN, "G10")
        process_all(
            loopback.processor(RecordingSleep(), **refused),
            [received_message(cancel_body("G10"), delivery_count=2)],
            actions,
        )
        assert (UPN, "G10") in graph.state.cancelled
    assert [s.action for s in actions.settled] == ["abandon", "complete"]


def test_mixed_faults_in_one_invocation_end_cancelled(loopback: Loopback) -> None:
    """429 (HTTP-date), HTML 503, a reset mid-response, a slow answer and a 504 in a row, then
    success: one completion, the event cancelled once."""
    loopback.graph.state.add_event(UPN, "G11")
    loopback.graph.state.script(
        UPN,
        "G11",
        Fault(429, {"Retry-After": _http_date(2)}),
        Fault(503, {"Content-Type": "text/html"}, HTML_503),
        Fault(502, body=b"{}", truncate=True),
        Fault(504, delay=0.8),
        Fault(504),
    )
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep(), **FAST),
        [received_message(cancel_body("G11"))],
        actions,
    )
    assert (actions.only.action, outcome.settlement.reason) == ("complete", "Cancelled")
    assert outcome.attempts == 6


def test_mixed_faults_hiding_a_cancel_end_already_cancelled(loopback: Loopback) -> None:
    """A 504 that did cancel, then a 429: the next attempt's 404 completes as AlreadyCancelled
    instead of dead-lettering EventNotFound."""
    loopback.graph.state.add_event(UPN, "G12")
    loopback.graph.state.script(
        UPN, "G12", Fault(504, cancels=True), Fault(429, {"Retry-After": "1"})
    )
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("G12"))], actions
    )
    assert (actions.only.action, outcome.settlement.reason) == ("complete", "AlreadyCancelled")
    assert [c.status for c in loopback.graph.state.calls] == [504, 429, 404]
