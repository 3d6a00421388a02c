"""The handler's retry loop through the real code (azure-identity against the loopback identity
endpoint, httpx against the Graph simulator or a refused port): how many calls, how long, and
what a give-back says, so "retried, then given back" can be told from "crashed"."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from azure.identity import ManagedIdentityCredential

from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import Action, GraphResponse, Reason
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.graph.client import GraphClient
from cancel_handler.graph.limiter import MailboxLimiter
from cancel_handler.graph.token import TokenProvider
from cancel_handler.handler import CancelHandler
from cancel_handler.runtime import Processor
from cancel_handler.settings import load_settings
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, RecordingSleep, received_message

#: The README: "at most CANCEL_RETRY_BUDGET_SECONDS of waiting and 10 attempts per invocation".
DOCUMENTED_MAX_ATTEMPTS = 10


def _refused_base_url() -> str:
    """A loopback URL on which nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1.0"


def test_refused_connection_is_retried_then_given_back(loopback: Loopback) -> None:
    """Graph refusing every connection → 10 attempts, 9 backoff waits, then abandoned with
    'connection refused' and the attempt count in the description (not 'unexpected error')."""
    sleep = RecordingSleep()
    actions = RecordingActions()
    processor = loopback.processor(sleep, GRAPH_BASE_URL=_refused_base_url())
    [outcome] = process_all(processor, [received_message(cancel_body("L1"))], actions)
    assert actions.only.action == "abandon"
    assert outcome.settlement.reason is Reason.TRANSIENT_FAILURE
    assert outcome.attempts == DOCUMENTED_MAX_ATTEMPTS and outcome.graph_status is None
    assert outcome.request_id is None, "no answer, so no request-id"
    assert len(sleep.waits) == DOCUMENTED_MAX_ATTEMPTS - 1
    for retry, wait in enumerate(sleep.waits, start=1):  # 0.5 s doubling to 8 s, jittered
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        assert ceiling / 2 <= wait <= ceiling, (retry, wait)
    description = outcome.settlement.description
    assert description.startswith(
        "no answer from Graph: connection refused; gave up after 10 attempt(s) and "
    )
    assert description.endswith("s of waiting (budget 60s)") and "unexpected" not in description
    assert f"{sum(sleep.waits):.1f}s of waiting" in description


def test_graph_is_called_at_most_ten_times(loopback: Loopback) -> None:
    """Endless 503s within a budget larger than nine backoffs (at most 47.5 s) → exactly 10
    Graph calls, then given back with the last status; never an 11th call."""
    loopback.graph.state.script(UPN, "L2", *[Fault(503) for _ in range(15)])
    sleep = RecordingSleep()
    actions = RecordingActions()
    processor = loopback.processor(sleep, CANCEL_RETRY_BUDGET_SECONDS="240")
    [outcome] = process_all(processor, [received_message(cancel_body("L2"))], actions)
    assert len(loopback.graph.state.calls) == DOCUMENTED_MAX_ATTEMPTS
    assert actions.only.action == "abandon" and outcome.graph_status == 503
    assert outcome.attempts == DOCUMENTED_MAX_ATTEMPTS and len(sleep.waits) == 9
    assert outcome.settlement.description.startswith(
        "Graph answered 503; gave up after 10 attempt(s)"
    )


def test_a_retry_after_of_exactly_the_budget_is_waited_for(loopback: Loopback) -> None:
    """Retry-After equal to the whole budget (2 s of 2 s) is honoured, then the cancel succeeds;
    the outcome carries the successful answer's request-id."""
    loopback.graph.state.script(
        UPN, "L3", Fault(429, {"Retry-After": "2"}), Fault(202, {"request-id": "rid-ok"}, b"")
    )
    sleep = RecordingSleep()
    actions = RecordingActions()
    processor = loopback.processor(sleep, CANCEL_RETRY_BUDGET_SECONDS="2")
    [outcome] = process_all(processor, [received_message(cancel_body("L3"))], actions)
    assert actions.only.action == "complete" and sleep.waits == [2.0]
    assert outcome.attempts == 2 and outcome.graph_status == 202
    assert outcome.request_id == "rid-ok"


def test_a_retry_after_beyond_the_budget_gives_back_at_once(loopback: Loopback) -> None:
    """Retry-After 2.5 s with a 2 s budget → no wait, given back, the asked wait kept."""
    loopback.graph.state.script(UPN, "L4", Fault(429, {"Retry-After": "2.5"}))
    sleep = RecordingSleep()
    actions = RecordingActions()
    processor = loopback.processor(sleep, CANCEL_RETRY_BUDGET_SECONDS="2")
    [outcome] = process_all(processor, [received_message(cancel_body("L4"))], actions)
    assert actions.only.action == "abandon" and sleep.waits == []
    assert outcome.retry_after == 2.5 and outcome.attempts == 1
    assert outcome.settlement.description == (
        "Graph answered 429; gave up after 1 attempt(s) and 0.0s of waiting (budget 2s)"
    )


class _RefusedOnceThenLive:
    """A Graph client that sends the first call to a refused port and later ones to the
    simulator: two real `GraphClient`s over real sockets."""

    def __init__(self, http: httpx.AsyncClient, live_base_url: str) -> None:
        self.dead = GraphClient(http, _refused_base_url())
        self.live = GraphClient(http, live_base_url)
        self.calls = 0

    async def cancel(self, request: CancelRequest, **kwargs: str) -> GraphResponse:
        self.calls += 1
        return await (self.dead if self.calls == 1 else self.live).cancel(request, **kwargs)


def test_a_404_after_a_refused_connection_is_event_not_found(loopback: Loopback) -> None:
    """A refused connection never reached Graph, so a 404 after it is a wrong event id
    (dead-lettered EventNotFound), not an earlier cancel (AlreadyCancelled)."""

    async def run() -> object:
        async with httpx.AsyncClient() as http:
            graph = _RefusedOnceThenLive(http, loopback.graph.graph_base_url)
            tokens = TokenProvider(ManagedIdentityCredential(), "https://graph.microsoft.com/.default")
            handler = CancelHandler(
                graph,  # type: ignore[arg-type]
                tokens,
                retry_budget_seconds=60,
                limiter=MailboxLimiter(4),
                sleep=RecordingSleep(),
            )
            outcome = await handler.handle(
                b'{"userPrincipalName": "adele.vance@contoso.com", "eventId": "L5"}',
                delivery_count=1,
            )
            assert graph.calls == 2
            return outcome

    outcome = asyncio.run(run())
    assert (outcome.settlement.action, outcome.settlement.reason) == (
        Action.DEADLETTER,
        Reason.EVENT_NOT_FOUND,
    )
    assert outcome.attempts == 2 and outcome.graph_status == 404


@pytest.mark.parametrize(("delivery_count", "reason"), [(1, "EventNotFound"), (2, None)])
def test_delivery_count_decides_what_a_404_means(
    loopback: Loopback, delivery_count: int, reason: str | None
) -> None:
    """404 on the first delivery is dead-lettered; on the second it completes."""
    actions = RecordingActions()
    message = received_message(cancel_body("L6"), delivery_count=delivery_count)
    process_all(loopback.processor(), [message], actions)
    assert actions.only.reason == reason


def _processor(loopback: Loopback, **handler_options: object) -> Processor:
    settings = load_settings({"GRAPH_BASE_URL": loopback.graph.graph_base_url})
    return Processor(settings, **handler_options)


def test_elapsed_time_is_measured_with_the_injected_clock(loopback: Loopback) -> None:
    """The outcome's elapsed_ms is the clock's difference between start and decision, in ms."""
    loopback.graph.state.add_event(UPN, "L7")
    ticks = iter([100.0, 103.0, 104.0])
    processor = _processor(loopback, clock=lambda: next(ticks))
    [outcome] = process_all(processor, [received_message(cancel_body("L7"))], RecordingActions())
    assert outcome.elapsed_ms == 3000


def test_elapsed_time_of_an_invalid_message(loopback: Loopback) -> None:
    """An invalid body is decided without Graph, and its elapsed time is still measured."""
    ticks = iter([5.0, 5.5])
    processor = _processor(loopback, clock=lambda: next(ticks))
    [outcome] = process_all(processor, [received_message(b"not json")], RecordingActions())
    assert outcome.settlement.reason is Reason.INVALID_MESSAGE and outcome.elapsed_ms == 500


def test_a_give_back_carries_the_last_answer_and_the_time_taken(loopback: Loopback) -> None:
    """Given back after a 503: the outcome keeps Graph's status and request-id of that answer
    and the elapsed time, for the log line an operator reads."""
    loopback.graph.state.script(UPN, "L8", Fault(503, {"request-id": "rid-503"}))
    ticks = iter([10.0, 12.5])
    settings = load_settings(
        {"GRAPH_BASE_URL": loopback.graph.graph_base_url, "CANCEL_RETRY_BUDGET_SECONDS": "0"}
    )
    processor = Processor(settings, clock=lambda: next(ticks))
    [outcome] = process_all(processor, [received_message(cancel_body("L8"))], RecordingActions())
    assert outcome.settlement.action is Action.ABANDON
    assert (outcome.graph_status, outcome.request_id, outcome.elapsed_ms) == (503, "rid-503", 2500)
