"""Indexing and loading of function_app.py by Microsoft's library worker, as the host asks."""

from __future__ import annotations

import json

import azure_functions_runtime.handle_event as worker_state

from tests_worker.conftest import Platform


def _function(platform: Platform, name: str = "cancel_meeting"):
    [function] = [f for f in platform.metadata_response.function_metadata_results if f.name == name]
    return function


def test_worker_initialises_and_indexes(platform: Platform) -> None:
    """WorkerInitRequest succeeds (indexing function_app.py raised nothing) and the metadata
    response carries the worker's own indexing, not a request for the host to index."""
    protos = platform.driver.protos
    init = platform.init_response
    assert init.result.status == protos.StatusResult.Success, init.result.exception.message
    assert init.worker_metadata.runtime_name == "python"
    metadata = platform.metadata_response
    assert metadata.result.status == protos.StatusResult.Success
    assert metadata.use_default_metadata_indexing is False


def test_two_functions_each_bound_only_to_a_servicebus_trigger(platform: Platform) -> None:
    """With CHILD_QUEUE_NAME set, two functions, cancel_meeting and cancel_child_meeting, each
    with one binding, an inbound Service Bus trigger on the message parameter; the
    settlement-client parameter is not a binding."""
    protos = platform.driver.protos
    names = sorted(f.name for f in platform.metadata_response.function_metadata_results)
    assert names == ["cancel_child_meeting", "cancel_meeting"]
    for name in names:
        function = _function(platform, name)
        assert function.script_file.endswith("function_app.py")
        assert list(function.bindings) == ["message"]
        binding = function.bindings["message"]
        assert binding.type == "serviceBusTrigger"
        assert binding.direction == getattr(protos.BindingInfo, "in")
        assert len(function.raw_bindings) == 1


def test_trigger_binding_sent_to_the_host(platform: Platform) -> None:
    """The binding the host receives names our queue setting and connection, turns
    auto-complete off and asks for deferred binding (the SDK-type message)."""
    [raw] = _function(platform).raw_bindings
    binding = json.loads(raw)
    assert binding["type"] == "serviceBusTrigger"
    assert binding["name"] == "message"
    assert binding["direction"] == "IN"
    assert binding["queueName"] == "%CANCEL_QUEUE_NAME%"
    assert binding["connection"] == "ServiceBusConnection"
    assert binding["autoCompleteMessages"] is False
    assert "isSessionsEnabled" not in binding
    assert binding["properties"] == {"SupportsDeferredBinding": True}


def test_session_trigger_binding_sent_to_the_host(platform: Platform) -> None:
    """The children's trigger names CHILD_QUEUE_NAME, is session-enabled (the host then runs the
    SDK's session processor), keeps auto-complete off and asks for deferred binding."""
    [raw] = _function(platform, "cancel_child_meeting").raw_bindings
    binding = json.loads(raw)
    assert binding["type"] == "serviceBusTrigger"
    assert binding["name"] == "message"
    assert binding["queueName"] == "%CHILD_QUEUE_NAME%"
    assert binding["connection"] == "ServiceBusConnection"
    assert binding["isSessionsEnabled"] is True
    assert binding["autoCompleteMessages"] is False
    assert binding["properties"] == {"SupportsDeferredBinding": True}


def test_loading_detects_the_settlement_client_and_the_async_function(platform: Platform) -> None:
    """FunctionLoadRequest succeeds; the worker recorded message_actions as the settlement-client
    argument, the message as a deferred (SDK-type) input and the function as a coroutine."""
    protos = platform.driver.protos
    assert len(platform.load_responses) == 2
    for function, response in zip(
        platform.metadata_response.function_metadata_results, platform.load_responses, strict=True
    ):
        assert response.result.status == protos.StatusResult.Success
        assert response.function_id == function.function_id
        info = worker_state._functions.get_function(function.function_id)
        assert info.settlement_client_arg == "message_actions"
        assert info.is_async is True
        assert list(info.input_types) == ["message"]
        assert info.input_types["message"].deferred_bindings_enabled is True
        assert info.input_types["message"].binding_name == "serviceBusTrigger"
        assert info.output_types == {}
        assert info.has_return is False
