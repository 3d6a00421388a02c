"""End to end through the real code: real received messages, azure-identity against the loopback
managed-identity endpoint, httpx against the loopback Graph simulator; one row of the settlement
table per test."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault
from tests.conftest import UPN, Loopback, cancel_body, process_all, process_concurrently
from tests.helpers import RecordingActions, RecordingSleep, received_message

GRAPH_ERROR_400 = json.dumps(
    {
        "error": {
            "code": "ErrorInvalidIdMalformed",
            "message": "Id is malformed.",
            "innerError": {"request-id": "rid-400"},
        }
    }
).encode()


def test_accepted_cancel_completes_and_sends_the_comment(loopback: Loopback) -> None:
    """Graph 202 → complete; Graph received exactly one call with the comment."""
    loopback.graph.state.add_event(UPN, "EV1")
    actions = RecordingActions()
    message = received_message(cancel_body("EV1", comment="Room closed."))
    [outcome] = process_all(loopback.processor(), [message], actions)
    assert actions.only.action == "complete"
    assert actions.only.message is message
    assert outcome.graph_status == 202
    [call] = loopback.graph.state.calls
    assert (call.mailbox, call.event_id, call.comment) == (UPN, "EV1", "Room closed.")


def test_attendee_copy_is_dead_lettered_as_not_organizer(loopback: Loopback) -> None:
    """Graph 400 'you need to be an organizer' → dead-letter NotOrganizer at once, with Graph's
    code, message and request-id in the description."""
    loopback.graph.state.add_event(UPN, "EV2", organizer=False)
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV2"))], actions)
    settled = actions.only
    assert (settled.action, settled.reason) == ("deadletter", "NotOrganizer")
    assert "error.code=ErrorInvalidRequest" in settled.description
    assert "organizer" in settled.description
    assert len(loopback.graph.state.calls) == 1, "a 400 is never retried"
    assert "request-id=" in settled.description and "request-id=-" not in settled.description


def test_other_bad_request_is_dead_lettered_with_graph_details(loopback: Loopback) -> None:
    """Graph 400 for another cause → dead-letter GraphBadRequest, no retry."""
    loopback.graph.state.script(
        UPN, "EV3", Fault(400, {"request-id": "rid-400"}, body=GRAPH_ERROR_400)
    )
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV3"))], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "GraphBadRequest")
    assert "ErrorInvalidIdMalformed" in actions.only.description
    assert "request-id=rid-400" in actions.only.description
    assert "Id is malformed." in actions.only.description
    assert len(loopback.graph.state.calls) == 1


def test_bad_request_without_json_body_is_still_dead_lettered(loopback: Loopback) -> None:
    """A 400 whose body is an HTML page still dead-letters as GraphBadRequest."""
    loopback.graph.state.script(UPN, "EV3b", Fault(400, body=b"<html>Bad Request</html>"))
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV3b"))], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "GraphBadRequest")
    assert "error.code=-" in actions.only.description


def test_forbidden_mailbox_is_dead_lettered(loopback: Loopback) -> None:
    """Graph 403 → dead-letter GraphForbidden with a hint at consent or mailbox scope."""
    loopback.graph.state.forbidden_mailboxes.add(UPN)
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV4"))], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "GraphForbidden")
    assert "ErrorAccessDenied" in actions.only.description
    assert "scope" in actions.only.description


def test_unknown_event_on_first_delivery_is_dead_lettered(loopback: Loopback) -> None:
    """Graph 404 on the first delivery → dead-letter EventNotFound."""
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("MISSING"))], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "EventNotFound")


def test_not_found_on_redelivery_completes(loopback: Loopback, caplog) -> None:
    """Graph 404 when delivery_count > 1 → complete: an earlier delivery most likely did it."""
    caplog.set_level(logging.INFO, logger="cancel_handler")
    actions = RecordingActions()
    message = received_message(cancel_body("GONE"), delivery_count=2)
    process_all(loopback.processor(), [message], actions)
    assert actions.only.action == "complete"
    assert "reason=AlreadyCancelled" in caplog.text


@pytest.mark.parametrize(
    "fault",
    [
        Fault(504),
        Fault(500),
        Fault(reset=True),
    ],
    ids=["504", "500", "reset-mid-request"],
)
def test_not_found_after_an_unknown_outcome_completes(loopback: Loopback, fault: Fault) -> None:
    """A 5xx or broken connection may hide a cancel that happened; the retry's 404 completes."""
    loopback.graph.state.add_event(UPN, "EV5")
    loopback.graph.state.cancelled.add((UPN, "EV5"))  # the first attempt did cancel it
    loopback.graph.state.script(UPN, "EV5", fault)
    actions = RecordingActions()
    sleep = RecordingSleep()
    process_all(loopback.processor(sleep), [received_message(cancel_body("EV5"))], actions)
    assert actions.only.action == "complete"
    assert len(loopback.graph.state.calls) == 2


def test_timeout_then_not_found_completes(loopback: Loopback) -> None:
    """A response slower than GRAPH_TIMEOUT_SECONDS is an unknown outcome; then 404 completes."""
    loopback.graph.state.add_event(UPN, "EV6")
    loopback.graph.state.cancelled.add((UPN, "EV6"))
    loopback.graph.state.script(UPN, "EV6", Fault(202, delay=1.0))
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), GRAPH_TIMEOUT_SECONDS="0.2")
    process_all(processor, [received_message(cancel_body("EV6"))], actions)
    assert actions.only.action == "complete"


def test_refused_connection_gives_the_message_back(loopback: Loopback) -> None:
    """A refused connection is transient: retried, then given back; never dead-lettered."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), GRAPH_BASE_URL=f"http://127.0.0.1:{closed_port}/v1.0"
    )
    process_all(processor, [received_message(cancel_body("EV7"))], actions)
    assert actions.only.action == "abandon"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_answers_are_retried_until_success(loopback: Loopback, status: int) -> None:
    """429 and 5xx are retried in-process; success then completes."""
    loopback.graph.state.add_event(UPN, "EV8")
    loopback.graph.state.script(UPN, "EV8", Fault(status), Fault(status))
    actions = RecordingActions()
    sleep = RecordingSleep()
    process_all(loopback.processor(sleep), [received_message(cancel_body("EV8"))], actions)
    assert actions.only.action == "complete"
    assert [c.status for c in loopback.graph.state.calls] == [status, status, 202]
    assert len(sleep.waits) == 2 and all(w > 0 for w in sleep.waits), "backs off between tries"


def test_retry_after_is_honoured_on_the_wire(loopback: Loopback) -> None:
    """With Retry-After: 0.3 the retry reaches Graph no sooner than 0.3 s after the 429."""
    loopback.graph.state.add_event(UPN, "EV9")
    loopback.graph.state.script(UPN, "EV9", Fault(429, {"Retry-After": "0.3"}))
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV9"))], actions)
    first, second = loopback.graph.state.calls
    assert actions.only.action == "complete"
    assert second.received_at - first.received_at >= 0.3


def test_retry_after_value_is_the_wait_used(loopback: Loopback) -> None:
    """The wait before a retry is exactly Graph's Retry-After (fractional seconds allowed)."""
    loopback.graph.state.add_event(UPN, "EV10")
    loopback.graph.state.script(UPN, "EV10", Fault(429, {"Retry-After": "2.128"}))
    sleep = RecordingSleep()
    process_all(
        loopback.processor(sleep), [received_message(cancel_body("EV10"))], RecordingActions()
    )
    assert sleep.waits == [2.128]


def test_spent_budget_gives_the_message_back(loopback: Loopback) -> None:
    """When Graph keeps failing past CANCEL_RETRY_BUDGET_SECONDS the message is abandoned for
    redelivery: never completed, never dead-lettered."""
    loopback.graph.state.add_event(UPN, "EV11")
    loopback.graph.state.script(UPN, "EV11", *[Fault(503, {"Retry-After": "4"})] * 5)
    sleep = RecordingSleep()
    actions = RecordingActions()
    processor = loopback.processor(sleep, CANCEL_RETRY_BUDGET_SECONDS="10")
    [outcome] = process_all(processor, [received_message(cancel_body("EV11"))], actions)
    assert actions.only.action == "abandon"
    assert sleep.waits == [4.0, 4.0], "a third 4 s wait would exceed the 10 s budget"
    assert outcome.attempts == 3
    assert (UPN, "EV11") not in loopback.graph.state.cancelled


def test_retry_after_longer_than_budget_gives_back_at_once(loopback: Loopback) -> None:
    """A Retry-After beyond the remaining budget is not waited for at all."""
    loopback.graph.state.script(UPN, "EV12", Fault(429, {"Retry-After": "120"}))
    sleep = RecordingSleep()
    actions = RecordingActions()
    [outcome] = process_all(
        loopback.processor(sleep), [received_message(cancel_body("EV12"))], actions
    )
    assert actions.only.action == "abandon"
    assert sleep.waits == []
    assert outcome.retry_after == 120.0


def test_revoked_token_is_replaced_once_with_a_new_one(loopback: Loopback) -> None:
    """401 → a genuinely new token is fetched (not the cached one) and the call retried."""
    loopback.graph.state.add_event(UPN, "EV13")
    loopback.graph.state.add_event(UPN, "EV14")
    processor = loopback.processor(RecordingSleep())
    actions = RecordingActions()

    async def run() -> None:
        await processor.process(received_message(cancel_body("EV13")), actions)
        loopback.authority.revoke_all()
        await processor.process(received_message(cancel_body("EV14")), actions)
        await processor.aclose()

    asyncio.run(run())
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert [c.status for c in loopback.graph.state.calls] == [202, 401, 202]
    calls = loopback.graph.state.calls
    assert calls[1].token == calls[0].token and calls[2].token != calls[1].token
    assert loopback.identity.requests == 2


def test_token_rejected_twice_is_treated_as_transient(loopback: Loopback) -> None:
    """A second 401 after the refresh is retried like any transient failure, then given back."""
    unauthorized = Fault(401, body=b'{"error":{"code":"InvalidAuthenticationToken"}}')
    loopback.graph.state.script(UPN, "EV15", *[unauthorized] * 20)
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), CANCEL_RETRY_BUDGET_SECONDS="3")
    process_all(processor, [received_message(cancel_body("EV15"))], actions)
    assert actions.only.action == "abandon"
    assert loopback.identity.requests == 2, "one initial token, one forced refresh, no more"


def test_identity_endpoint_down_gives_the_message_back(loopback: Loopback) -> None:
    """No token (endpoint answering 503) → retried, then abandoned; Graph never called."""
    loopback.identity.down = True
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), CANCEL_RETRY_BUDGET_SECONDS="2")
    process_all(processor, [received_message(cancel_body("EV16"))], actions)
    assert actions.only.action == "abandon"
    assert loopback.graph.state.calls == []


def test_one_token_serves_many_messages(loopback: Loopback) -> None:
    """The token is fetched once per process and reused across messages."""
    for i in range(5):
        loopback.graph.state.add_event(UPN, f"T{i}")
    messages = [received_message(cancel_body(f"T{i}")) for i in range(5)]
    actions = RecordingActions()
    process_all(loopback.processor(), messages, actions)
    assert [s.action for s in actions.settled] == ["complete"] * 5
    assert loopback.identity.requests == 1
    assert len({c.token for c in loopback.graph.state.calls}) == 1


def test_one_connection_serves_many_messages(loopback: Loopback) -> None:
    """Sequential messages reuse one pooled keep-alive connection to Graph."""
    for i in range(5):
        loopback.graph.state.add_event(UPN, f"C{i}")
    messages = [received_message(cancel_body(f"C{i}")) for i in range(5)]
    process_all(loopback.processor(), messages, RecordingActions())
    assert len({c.connection for c in loopback.graph.state.calls}) == 1


def test_concurrent_messages_respect_the_mailbox_limit(loopback: Loopback) -> None:
    """Twelve concurrent messages for one organizer never put more than 4 calls in flight."""
    state = loopback.graph.state
    state.latency = 0.05
    state.mailbox_concurrency = 4
    for i in range(12):
        state.add_event(UPN, f"M{i}")
    actions = RecordingActions()
    messages = [received_message(cancel_body(f"M{i}")) for i in range(12)]
    process_concurrently(loopback.processor(), messages, actions)
    assert [s.action for s in actions.settled] == ["complete"] * 12
    assert all(c.status == 202 for c in state.calls), "no 429 MailboxConcurrency"
    assert state.peak_in_flight[UPN.lower()] == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"eventId": "A"}).encode(), "userPrincipalName: is required"),
        (json.dumps({"userPrincipalName": UPN}).encode(), "eventId: is required"),
        (
            json.dumps({"userPrincipalName": UPN, "eventId": 7}).encode(),
            "eventId: must be a string",
        ),
        (json.dumps({"userPrincipalName": UPN, "eventId": "../../me"}).encode(), "eventId"),
        (
            json.dumps({"userPrincipalName": "a/b@c.com", "eventId": "A"}).encode(),
            "userPrincipalName",
        ),
    ],
)
def test_invalid_messages_are_dead_lettered_without_calling_graph(
    loopback: Loopback, body: bytes, field: str
) -> None:
    """Bad input → dead-letter InvalidMessage naming the field and problem; Graph never called."""
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(body)], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "InvalidMessage")
    assert field in actions.only.description
    assert loopback.graph.state.calls == []
    assert loopback.identity.requests == 0


@pytest.mark.parametrize("failing", ["complete", "deadletter", "abandon"])
def test_failed_settlement_fails_the_invocation(loopback: Loopback, failing: str) -> None:
    """If the host refuses the settlement, the invocation raises (so the message is redelivered)
    and no other settlement is attempted in its place."""
    loopback.graph.state.add_event(UPN, "OK")
    loopback.graph.state.script(UPN, "SLOW", Fault(429, {"Retry-After": "999"}))
    body = {
        "complete": cancel_body("OK"),
        "deadletter": b"not json",
        "abandon": cancel_body("SLOW"),
    }[failing]
    actions = RecordingActions(fail_on={failing})
    with pytest.raises(SettlementError):
        process_all(loopback.processor(), [received_message(body)], actions)
    assert actions.settled == []


def test_settlement_log_line_has_the_fields_and_no_secrets(loopback: Loopback, caplog) -> None:
    """One structured line per message with ids, outcome, reason, status, request-id, attempts
    and elapsed ms; never the token, the identity header or the comment text."""
    caplog.set_level(logging.DEBUG)
    loopback.graph.state.add_event(UPN, "LOG")
    loopback.graph.state.script(UPN, "LOG", Fault(503))
    message = received_message(
        cancel_body("LOG", comment="secret-comment-text"),
        message_id="msg-1",
        correlation_id="corr-1",
    )
    process_all(loopback.processor(RecordingSleep()), [message], RecordingActions())
    lines = [r for r in caplog.records if r.name == "cancel_handler.settlement"]
    assert len(lines) == 1
    fields = lines[0].cancel_handler
    assert fields["message_id"] == "msg-1" and fields["correlation_id"] == "corr-1"
    assert (fields["outcome"], fields["reason"], fields["graph_status"]) == (
        "complete",
        "Cancelled",
        202,
    )
    assert fields["attempts"] == 2 and fields["request_id"] and fields["elapsed_ms"] >= 0
    everything = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    token = loopback.graph.state.calls[0].token
    assert token not in everything
    assert loopback.identity.secret not in everything
    assert "secret-comment-text" not in everything
