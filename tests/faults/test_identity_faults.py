"""Managed-identity faults, through the real azure-identity credential against the loopback
endpoint: down, slow, 500, expired token, and a token revoked mid-run."""

from __future__ import annotations

import asyncio
import time

from cancel_handler.devtools.identity_endpoint import IdentityFault
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, RecordingSleep, received_message


def test_down_then_back_up_on_redelivery(loopback: Loopback) -> None:
    """Endpoint down → abandoned, Graph untouched; the redelivery after it recovers cancels."""
    loopback.graph.state.add_event(UPN, "I1")
    loopback.identity.down = True
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep(), CANCEL_RETRY_BUDGET_SECONDS="2"),
        [received_message(cancel_body("I1"))],
        actions,
    )
    assert actions.only.action == "abandon" and loopback.graph.state.calls == []
    assert "no token from the managed identity" in outcome.settlement.description
    loopback.identity.down = False
    # A new processor (new credential): MSAL's 5 s cache of the 5xx belongs to the old one.
    process_all(
        loopback.processor(RecordingSleep()),
        [received_message(cancel_body("I1"), delivery_count=2)],
        actions,
    )
    assert [s.action for s in actions.settled] == ["abandon", "complete"]


def test_slow_endpoint_times_out_and_is_retried(loopback: Loopback) -> None:
    """An endpoint slower than GRAPH_TIMEOUT_SECONDS (the credential's read timeout) fails the
    attempt quickly; a later attempt gets a token and cancels."""
    loopback.graph.state.add_event(UPN, "I2")
    loopback.identity.faults.extend([IdentityFault(delay=1.0), IdentityFault(delay=1.0)])
    actions = RecordingActions()
    started = time.monotonic()
    process_all(
        loopback.processor(RecordingSleep(), GRAPH_TIMEOUT_SECONDS="0.3"),
        [received_message(cancel_body("I2"))],
        actions,
    )
    assert actions.only.action == "complete"
    assert loopback.identity.requests == 3, "two timed-out requests (one credential retry)"
    assert time.monotonic() - started < 3.0


def test_slow_endpoint_for_the_whole_budget_gives_back(loopback: Loopback) -> None:
    """Always slower than the timeout → abandoned, never completed."""
    loopback.identity.faults.extend([IdentityFault(delay=0.6)] * 50)
    actions = RecordingActions()
    process_all(
        loopback.processor(
            RecordingSleep(), GRAPH_TIMEOUT_SECONDS="0.2", CANCEL_RETRY_BUDGET_SECONDS="1"
        ),
        [received_message(cancel_body("I3"))],
        actions,
    )
    assert actions.only.action == "abandon"
    assert loopback.graph.state.calls == []


def test_500_from_the_endpoint_gives_back(loopback: Loopback) -> None:
    """A 500 from the identity endpoint is transient: the message is abandoned (MSAL repeats
    the cached 500 for 5 s, so in-process retries without real waiting all fail)."""
    loopback.identity.faults.extend([IdentityFault(status=500)] * 2)
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("I4"))], actions
    )
    assert actions.only.action == "abandon"
    assert "500" in outcome.settlement.description
    assert loopback.graph.state.calls == []


def test_500_recovers_within_the_invocation_with_real_waits(loopback: Loopback) -> None:
    """With real backoff waits inside the budget, the invocation outlasts MSAL's 5 s cache of
    the 500 and cancels."""
    loopback.graph.state.add_event(UPN, "I5")
    loopback.identity.faults.extend([IdentityFault(status=500)] * 2)
    actions = RecordingActions()
    [outcome] = process_all(loopback.processor(), [received_message(cancel_body("I5"))], actions)
    assert actions.only.action == "complete"
    assert outcome.attempts > 1


def test_expired_token_is_not_used(loopback: Loopback) -> None:
    """An already-expired token from the endpoint is refused before Graph sees it; the next
    fetch gets a valid one."""
    loopback.graph.state.add_event(UPN, "I6")
    loopback.identity.faults.append(IdentityFault(expired=True))
    actions = RecordingActions()
    process_all(
        loopback.processor(RecordingSleep()), [received_message(cancel_body("I6"))], actions
    )
    assert actions.only.action == "complete"
    assert loopback.identity.requests == 2
    assert [c.status for c in loopback.graph.state.calls] == [202]


def test_revoked_mid_run_while_the_endpoint_fails(loopback: Loopback) -> None:
    """Token revoked mid-run and the refresh fails (500): that message is given back, never
    completed; the redelivery, with the endpoint healthy again, cancels."""
    state = loopback.graph.state
    for event in ("I7a", "I7b"):
        state.add_event(UPN, event)
    processor = loopback.processor(RecordingSleep(), CANCEL_RETRY_BUDGET_SECONDS="2")
    actions = RecordingActions()

    async def run() -> None:
        await processor.process(received_message(cancel_body("I7a")), actions)
        loopback.authority.revoke_all()
        loopback.identity.faults.extend([IdentityFault(status=500)] * 2)
        await processor.process(received_message(cancel_body("I7b")), actions)
        await processor.aclose()

    asyncio.run(run())
    assert [s.action for s in actions.settled] == ["complete", "abandon"]
    assert (UPN, "I7b") not in state.cancelled
    process_all(  # a new processor: MSAL's 5 s cache of the 500 belongs to the old credential
        loopback.processor(RecordingSleep()),
        [received_message(cancel_body("I7b"), delivery_count=2)],
        actions,
    )
    assert actions.settled[-1].action == "complete"
    assert (UPN, "I7b") in state.cancelled
