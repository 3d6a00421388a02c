"""What the function's libraries may log at start-up and per message."""

from __future__ import annotations

import logging

import azure.functions as func
import pytest

from cancel_handler.log_policy import quiet_library_loggers


def _index_a_service_bus_app() -> None:
    """Index a fresh app with one Service Bus trigger, as the worker does at every cold start."""
    app = func.FunctionApp()

    @app.service_bus_queue_trigger(arg_name="message", queue_name="q", connection="c")
    def handler(message: func.ServiceBusMessage) -> None:  # pragma: no cover - never invoked
        del message

    app.get_functions()


def test_indexing_logs_no_auth_level_warning(caplog: pytest.LogCaptureFixture) -> None:
    """azure-functions warns 'Auth level is not applied to non http function app' on the root
    logger whenever an app has no HTTP function: the function's log policy drops it."""
    quiet_library_loggers()
    with caplog.at_level(logging.DEBUG):
        _index_a_service_bus_app()
        logging.getLogger().warning("another root warning stays")
    assert [record.getMessage() for record in caplog.records] == ["another root warning stays"]


def test_the_policy_is_installed_once() -> None:
    """Building several processors (tests, the demo) adds the filter only once."""
    quiet_library_loggers()
    before = len(logging.getLogger().filters)
    quiet_library_loggers()
    assert len(logging.getLogger().filters) == before
