"""Invocations through Microsoft's library worker: the host's bytes for a Service Bus message go
in as model binding data; the worker decodes them with the binding extension, hands the function
the real ServiceBusMessageActions, and the function settles over gRPC with the host."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from cancel_handler.devtools.host_message import ModelBindingData, host_message_content
from tests_worker.conftest import Platform

UPN = "adele.vance@contoso.com"


def _invoke(
    platform: Platform,
    body: bytes,
    *,
    delivery_count: int,
    lock_token: uuid.UUID | None = None,
    function_name: str = "cancel_meeting",
    **fields: object,
) -> tuple[uuid.UUID, object]:
    """Send one message in the host's layout to the indexed function `function_name`; return its
    lock token and the worker's InvocationResponse. `fields` are more of the message's fields
    (session_id, application_properties, message_id)."""
    [function] = [
        f for f in platform.metadata_response.function_metadata_results if f.name == function_name
    ]
    lock_token = lock_token or uuid.uuid4()
    content = host_message_content(
        body,
        lock_token=lock_token,
        message_id=str(fields.pop("message_id", uuid.uuid4())),
        delivery_count=delivery_count,
        sequence_number=42,
        enqueued_time=datetime.now(UTC),
        **fields,  # type: ignore[arg-type]
    )
    # The host puts the lock token first, as 16 little-endian bytes (.NET Guid.ToByteArray()).
    assert content[:16] == lock_token.bytes_le
    response = platform.driver.invoke(function.function_id, "message", ModelBindingData(content))
    return lock_token, response


def _settlements(platform: Platform, lock_token: uuid.UUID) -> list[tuple]:
    """(action, reason, description) of every settlement call the host got for `lock_token`."""
    return [
        (name, reason, description)
        for name, lock, reason, description in platform.settlement.calls
        if lock == str(lock_token)
    ]


def _graph_statuses(platform: Platform, event_id: str) -> list[int]:
    return [call.status for call in platform.graph.state.calls if call.event_id == event_id]


def _assert_succeeded(platform: Platform, response) -> None:
    protos = platform.driver.protos
    assert response.result.status == protos.StatusResult.Success, response.result.exception.message


def _body(event_id: str) -> bytes:
    return json.dumps({"userPrincipalName": UPN, "eventId": event_id}).encode()


def test_accepted_cancel_is_completed_with_the_hosts_lock_token(platform: Platform) -> None:
    """Graph's 202 ends in exactly one complete, sent for the lock token in the first 16 bytes
    of the host's message, and the worker reports the invocation as a success; the cancel went
    to Graph with a token from the managed-identity endpoint."""
    platform.graph.state.add_event(UPN, "W-ACCEPTED")
    lock_token, response = _invoke(platform, _body("W-ACCEPTED"), delivery_count=1)
    _assert_succeeded(platform, response)
    assert _settlements(platform, lock_token) == [("complete", None, None)]
    [call] = [c for c in platform.graph.state.calls if c.event_id == "W-ACCEPTED"]
    assert call.status == 202
    assert call.mailbox == UPN
    assert platform.identity.requests >= 1
    assert platform.identity.authority.is_valid(call.token)
    assert (UPN, "W-ACCEPTED") in platform.graph.state.cancelled


def test_invalid_body_is_dead_lettered_without_calling_graph(platform: Platform) -> None:
    """A body that is not JSON is dead-lettered as InvalidMessage with a description; Graph is
    never called and the invocation still succeeds (the message is settled)."""
    calls_before = len(platform.graph.state.calls)
    lock_token, response = _invoke(platform, b"{not json", delivery_count=1)
    _assert_succeeded(platform, response)
    [(action, reason, description)] = _settlements(platform, lock_token)
    assert (action, reason) == ("deadletter", "InvalidMessage")
    assert "JSON" in description
    assert len(platform.graph.state.calls) == calls_before


def test_unknown_event_on_first_delivery_is_dead_lettered(platform: Platform) -> None:
    """Graph's 404 on a first delivery (header delivery-count 1) dead-letters the message as
    EventNotFound: nothing earlier can have cancelled it."""
    lock_token, response = _invoke(platform, _body("W-MISSING-FIRST"), delivery_count=1)
    _assert_succeeded(platform, response)
    [(action, reason, _)] = _settlements(platform, lock_token)
    assert (action, reason) == ("deadletter", "EventNotFound")
    assert _graph_statuses(platform, "W-MISSING-FIRST") == [404]


def test_unknown_event_on_redelivery_is_completed(platform: Platform) -> None:
    """Graph's 404 on a redelivery (header delivery-count 2) completes the message: the first
    attempt most likely cancelled the meeting and its settlement was lost."""
    lock_token, response = _invoke(platform, _body("W-MISSING-AGAIN"), delivery_count=2)
    _assert_succeeded(platform, response)
    assert _settlements(platform, lock_token) == [("complete", None, None)]
    assert _graph_statuses(platform, "W-MISSING-AGAIN") == [404]


@pytest.mark.parametrize("delivery_count", [1, 2])
def test_every_invocation_settles_exactly_once(platform: Platform, delivery_count: int) -> None:
    """Whatever the outcome, the host sees one settlement per message, never none and never two
    (the lock would otherwise expire into a silent redelivery or a refused second call)."""
    platform.graph.state.add_event(UPN, f"W-ONCE-{delivery_count}")
    lock_token, response = _invoke(
        platform, _body(f"W-ONCE-{delivery_count}"), delivery_count=delivery_count
    )
    _assert_succeeded(platform, response)
    assert len(_settlements(platform, lock_token)) == 1


def test_refused_settlement_fails_the_invocation(platform: Platform) -> None:
    """When the host no longer knows the lock token, the worker reports the invocation as failed
    with the settlement error, so the host gives the message back instead of counting it handled."""
    platform.graph.state.add_event(UPN, "W-LOCK-LOST")
    lost = uuid.uuid4()
    platform.settlement.unknown_locks.add(str(lost))
    _, response = _invoke(platform, _body("W-LOCK-LOST"), delivery_count=1, lock_token=lost)
    protos = platform.driver.protos
    assert response.result.status == protos.StatusResult.Failure
    exception = response.result.exception
    assert exception.message == "SettlementError: settlement 'complete' failed: SettlementError"
    # The host logs the trace, whose cause chain names the lost lock.
    assert f"LockToken {lost} not found" in exception.stack_trace
    assert _settlements(platform, lost) == []


# -- the children queue's session trigger ------------------------------------------------------


def _child(platform: Platform, event_id: str, *, delivery_count: int, parent: str = "P-1"):
    """A date range's child request, as the fan-out sends it (sealed parentMessageId, in its
    session), delivered to the session trigger."""
    from cancel_handler.servicebus.fanout import child_message_id
    from cancel_handler.servicebus.messages import PARENT_ID_PROPERTY, sealed
    from cancel_handler.servicebus.sessions import child_session_id

    message_id = child_message_id(parent, event_id)
    return _invoke(
        platform,
        _body(event_id),
        delivery_count=delivery_count,
        function_name="cancel_child_meeting",
        message_id=message_id,
        session_id=child_session_id("worker-test-session-key", UPN),
        application_properties=sealed(message_id, {PARENT_ID_PROPERTY: parent}),
    )


def test_session_trigger_cancels_a_child_and_completes_it(platform: Platform) -> None:
    """A child request delivered to the session trigger goes through the same pipeline: Graph's
    202, then one complete for the host's lock token (the host settles session messages by
    lock token as well)."""
    platform.graph.state.add_event(UPN, "W-CHILD-OK")
    lock_token, response = _child(platform, "W-CHILD-OK", delivery_count=1)
    _assert_succeeded(platform, response)
    assert _settlements(platform, lock_token) == [("complete", None, None)]
    assert _graph_statuses(platform, "W-CHILD-OK") == [202]


def test_session_trigger_completes_a_child_whose_event_is_gone(platform: Platform) -> None:
    """A child's 404 on its first delivery completes it (listed moments before, so someone got
    there first): the child rule holds on the session path."""
    lock_token, response = _child(platform, "W-CHILD-GONE", delivery_count=1)
    _assert_succeeded(platform, response)
    assert _settlements(platform, lock_token) == [("complete", None, None)]


def test_session_trigger_dead_letters_a_child_for_a_refused_mailbox_once(
    platform: Platform,
) -> None:
    """A child for a mailbox Graph refuses (403) ends once, dead-lettered GraphForbidden, so its
    session moves on to the next message."""
    from cancel_handler.devtools.graph_simulator import Fault

    platform.graph.state.add_event(UPN, "W-CHILD-403")
    platform.graph.state.script(UPN, "W-CHILD-403", Fault(403))
    lock_token, response = _child(platform, "W-CHILD-403", delivery_count=1)
    _assert_succeeded(platform, response)
    [(action, reason, _)] = _settlements(platform, lock_token)
    assert (action, reason) == ("deadletter", "GraphForbidden")
