"""Settlement faults and redelivery: a crash or a refused settlement at every step ends, after
redelivery, in exactly one visible state; upstream duplicates behave as documented."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.ops.repair import resubmit_copy
from cancel_handler.runtime import Processor
from tests.conftest import UPN, Loopback, cancel_body, process_all, process_concurrently
from tests.helpers import RecordingActions, RecordingSleep, as_delivered, received_message


def deliver_until_settled(
    processor: Processor,
    body: Any,
    *,
    failing: list[set[str]],
    crash_before_processing: int = 0,
    message_id: str = "m-1",
) -> tuple[list[str], RecordingActions]:
    """Deliver one message like Service Bus: the first `crash_before_processing` deliveries die
    before any work; delivery n uses `failing[n]` as the settlement calls the host refuses; an
    abandon or a raised invocation means redelivery with delivery_count + 1. Returns what each
    delivery did and the settlement calls that took effect."""
    actions = RecordingActions()
    history: list[str] = []

    async def run() -> None:
        delivery = 0
        try:
            while True:
                delivery += 1
                message = received_message(body, delivery_count=delivery, message_id=message_id)
                if delivery <= crash_before_processing:
                    history.append("crash")
                    continue
                actions.fail_on = failing[delivery - 1] if delivery <= len(failing) else set()
                before = len(actions.settled)
                try:
                    await processor.process(message, actions)
                except SettlementError:
                    assert len(actions.settled) == before, "a refused call records nothing"
                    history.append("settlement-failed")
                    continue
                assert len(actions.settled) == before + 1, "exactly one settlement per delivery"
                history.append(actions.settled[-1].action)
                if actions.settled[-1].action != "abandon":
                    return
                assert delivery < 10, "would exceed MaxDeliveryCount"
        finally:
            await processor.aclose()

    asyncio.run(run())
    return history, actions


def test_crash_before_graph_then_redelivery_cancels(loopback: Loopback) -> None:
    """The worker dies before calling Graph; the redelivery cancels and completes."""
    loopback.graph.state.add_event(UPN, "R1")
    history, actions = deliver_until_settled(
        loopback.processor(), cancel_body("R1"), failing=[], crash_before_processing=1
    )
    assert history == ["crash", "complete"]
    assert actions.only.message.delivery_count == 2
    assert [c.status for c in loopback.graph.state.calls] == [202]


def test_complete_refused_after_202_then_redelivery_completes(loopback: Loopback) -> None:
    """Graph cancelled (202) but completing failed: the invocation raises, the redelivery gets
    404 and completes as AlreadyCancelled, not dead-lettered."""
    loopback.graph.state.add_event(UPN, "R2")
    history, _ = deliver_until_settled(
        loopback.processor(), cancel_body("R2"), failing=[{"complete"}]
    )
    assert history == ["settlement-failed", "complete"]
    assert [c.status for c in loopback.graph.state.calls] == [202, 404]


def test_complete_refused_twice_still_ends_complete(loopback: Loopback) -> None:
    """Two refused completions in a row: every later delivery still treats 404 as done."""
    loopback.graph.state.add_event(UPN, "R3")
    history, _ = deliver_until_settled(
        loopback.processor(), cancel_body("R3"), failing=[{"complete"}, {"complete"}]
    )
    assert history == ["settlement-failed", "settlement-failed", "complete"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not json", "InvalidMessage"), (cancel_body("R4"), "NotOrganizer")],
)
def test_deadletter_refused_then_redelivery_dead_letters_again(
    loopback: Loopback, body: Any, reason: str
) -> None:
    """A refused dead-letter fails the invocation; the redelivery reaches the same verdict."""
    loopback.graph.state.add_event(UPN, "R4", organizer=False)
    history, actions = deliver_until_settled(loopback.processor(), body, failing=[{"deadletter"}])
    assert history == ["settlement-failed", "deadletter"]
    assert actions.only.reason == reason


def test_abandon_refused_then_redelivery_cancels(loopback: Loopback) -> None:
    """Graph throttled for longer than the budget and the abandon is refused: the host
    redelivers anyway and the next delivery cancels."""
    loopback.graph.state.add_event(UPN, "R5")
    loopback.graph.state.script(UPN, "R5", Fault(429, {"Retry-After": "600"}))
    history, _ = deliver_until_settled(
        loopback.processor(RecordingSleep()), cancel_body("R5"), failing=[{"abandon"}]
    )
    assert history == ["settlement-failed", "complete"]
    assert (UPN, "R5") in loopback.graph.state.cancelled


def test_gateway_timeout_that_cancelled_then_abandon_then_redelivery(loopback: Loopback) -> None:
    """A 504 that did cancel, then throttling past the budget: abandoned; the redelivery's 404
    completes."""
    loopback.graph.state.add_event(UPN, "R6")
    loopback.graph.state.script(
        UPN, "R6", Fault(504, cancels=True), Fault(429, {"Retry-After": "600"})
    )
    history, _ = deliver_until_settled(
        loopback.processor(RecordingSleep()), cancel_body("R6"), failing=[]
    )
    assert history == ["abandon", "complete"]
    assert [c.status for c in loopback.graph.state.calls] == [504, 429, 404]


def test_upstream_duplicate_on_first_delivery_is_dead_lettered(loopback: Loopback) -> None:
    """Documented behaviour: a second copy of an already-cancelled request, sent by the upstream
    system under a new MessageId (delivery_count 1), gets 404 and is dead-lettered as
    EventNotFound, because it is indistinguishable from a wrong id. Integrators avoid it with
    Service Bus duplicate detection and a MessageId derived from the request."""
    loopback.graph.state.add_event(UPN, "R7")
    first, _ = deliver_until_settled(
        loopback.processor(), cancel_body("R7"), failing=[], message_id="a"
    )
    second, actions = deliver_until_settled(
        loopback.processor(), cancel_body("R7"), failing=[], message_id="b"
    )
    assert (first, second) == (["complete"], ["deadletter"])
    assert actions.only.reason == "EventNotFound"


def test_concurrent_duplicates_cancel_once(loopback: Loopback) -> None:
    """Two copies processed at the same time: one cancels; the other completes or dead-letters
    as EventNotFound, never both cancelled, never lost."""
    loopback.graph.state.add_event(UPN, "R8")
    actions = RecordingActions()
    messages = [received_message(cancel_body("R8")) for _ in range(2)]
    process_concurrently(loopback.processor(), messages, actions)
    assert sorted(s.action for s in actions.settled) == ["complete", "deadletter"]
    assert [c.status for c in loopback.graph.state.calls].count(202) == 1


def test_unexpected_error_gives_the_message_back_once(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect (an exception no one planned for) is logged and the message abandoned with
    exactly one settlement call, instead of an unsettled failed invocation."""
    from cancel_handler.graph.client import GraphClient

    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(GraphClient, "cancel", broken)
    actions = RecordingActions()
    [outcome] = process_all(loopback.processor(), [received_message(cancel_body("R9"))], actions)
    assert actions.only.action == "abandon"
    assert outcome.settlement.description == "unexpected error: KeyError"


@pytest.mark.parametrize(
    ("resubmitted_from", "settlement"),
    [
        ("MaxDeliveryCountExceeded", ("complete", None)),
        ("RetriesExhausted", ("complete", None)),
        ("GraphForbidden", ("deadletter", "EventNotFound")),
        (None, ("deadletter", "EventNotFound")),
    ],
)
def test_resubmitted_copy_after_exhausted_retries_counts_404_as_done(
    loopback: Loopback, resubmitted_from: str | None, settlement: tuple
) -> None:
    """An operator's resubmission (made by `dlq resubmit`'s own code) of a message that ran out
    of retries may follow a cancel that happened, so its 404 completes; after a definite failure
    (403), or for a message that was never dead-lettered, a 404 still dead-letters."""
    dead_letter = received_message(
        cancel_body("GONE-AFTER-RESUBMIT"),
        sequence_number=17,
        dead_letter_reason=resubmitted_from,
    )
    message = as_delivered(resubmit_copy(dead_letter))
    actions = RecordingActions()
    process_all(loopback.processor(), [message], actions)
    assert (actions.only.action, actions.only.reason) == settlement
