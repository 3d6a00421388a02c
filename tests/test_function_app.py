"""The Functions entry point: the trigger binding's contract, and one invocation the way the worker
makes it (message decoded by the extension from host bytes, settled over real gRPC)."""

from __future__ import annotations

import asyncio
import inspect
import json

import azurefunctions.extensions.bindings.servicebus as servicebus
import pytest

import function_app
from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.functions_host import settlement_host
from cancel_handler.devtools.host_message import host_delivered_message as host_delivered
from tests.conftest import UPN, Loopback, cancel_body

# azure-functions raises on a second get_functions() for the same app: index once.
[FUNCTION] = function_app.app.get_functions()


def test_trigger_binding_matches_the_contract() -> None:
    """One Service Bus queue trigger on %CANCEL_QUEUE_NAME% via ServiceBusConnection, with
    auto-complete off so every settlement is explicit."""
    binding = json.loads(FUNCTION.get_function_json())["bindings"]
    [trigger] = binding
    assert trigger["type"] == "serviceBusTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["queueName"] == "%CANCEL_QUEUE_NAME%"
    assert trigger["connection"] == "ServiceBusConnection"
    assert trigger["autoCompleteMessages"] is False


def test_parameters_use_the_sdk_types() -> None:
    """The message is the SDK-type ServiceBusReceivedMessage and the second parameter is
    ServiceBusMessageActions, which the worker recognises by its annotation."""
    params = list(inspect.signature(FUNCTION.get_user_function()).parameters.values())
    assert [p.annotation for p in params] == [
        servicebus.ServiceBusReceivedMessage,
        servicebus.ServiceBusMessageActions,
    ]
    assert inspect.iscoroutinefunction(FUNCTION.get_user_function())


def test_invocation_settles_over_the_real_settlement_client(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function cancels through Graph and completes over gRPC with the message's lock token;
    an invalid one is dead-lettered with its reason and description."""
    loopback.graph.state.add_event(UPN, "EV-F")
    monkeypatch.setattr(function_app, "processor", loopback.processor())
    good = host_delivered(cancel_body("EV-F"))
    bad = host_delivered(b"{not json")
    user_function = FUNCTION.get_user_function()

    with settlement_host() as (host, actions):

        async def run() -> None:
            await user_function(good, actions)
            await user_function(bad, actions)
            await function_app.processor.aclose()

        asyncio.run(run())

    assert host.calls[0] == ("complete", str(good.lock_token), None, None)
    name, lock, reason, description = host.calls[1]
    assert (name, lock, reason) == ("deadletter", str(bad.lock_token), "InvalidMessage")
    assert "not JSON" in description
    assert [c.status for c in loopback.graph.state.calls] == [202]


def test_refused_settlement_fails_the_invocation(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the host no longer knows the lock token, the invocation raises, so the message is
    redelivered instead of being reported as handled."""
    loopback.graph.state.add_event(UPN, "EV-G")
    monkeypatch.setattr(function_app, "processor", loopback.processor())
    message = host_delivered(cancel_body("EV-G"))
    user_function = FUNCTION.get_user_function()

    with settlement_host() as (host, actions):
        host.unknown_locks.add(str(message.lock_token))

        async def run() -> None:
            try:
                await user_function(message, actions)
            finally:
                await function_app.processor.aclose()

        with pytest.raises(SettlementError):
            asyncio.run(run())
    assert host.calls == []


def test_redelivery_count_reaches_the_decision(
    loopback: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host-delivered message with delivery count 2 whose event is gone completes."""
    monkeypatch.setattr(function_app, "processor", loopback.processor())
    message = host_delivered(cancel_body("ALREADY-GONE"), delivery_count=2)
    with settlement_host() as (host, actions):

        async def run() -> None:
            await FUNCTION.get_user_function()(message, actions)
            await function_app.processor.aclose()

        asyncio.run(run())
    assert [c[0] for c in host.calls] == ["complete"]
