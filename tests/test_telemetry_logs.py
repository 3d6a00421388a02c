"""The settlement log line as Application Insights stores it with telemetry on: the logging
handler the worker's Azure Monitor distro attaches (opentelemetry-instrumentation-logging's,
azure-monitor-opentelemetry 1.8.11 `_configure.py`) and the pinned exporter's conversion to a
`traces` row."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, RecordingSleep, received_message

COMMENT = "Adele's private note"


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    logger = logging.getLogger("cancel_handler")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield exporter
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_settlement_fields_become_custom_dimensions(
    loopback: Loopback, exported: InMemoryLogRecordExporter
) -> None:
    """Each field of the settlement line is its own customDimensions entry, named as on the
    message's span (`cancel.outcome`, `cancel.reason`, ...): the extra= fields arrive, and
    none of them holds the UPN or the comment."""
    loopback.graph.state.add_event(UPN, "EV1")
    message = received_message(
        cancel_body("EV1", comment=COMMENT), message_id="req-1", correlation_id="booking-4711"
    )
    process_all(loopback.processor(RecordingSleep()), [message], RecordingActions())
    rows = [
        dict(_convert_log_to_envelope(record).data.base_data.properties)
        for record in exported.get_finished_logs()
    ]
    [settlement] = [row for row in rows if row.get("logger_name") == "cancel_handler.settlement"]
    assert {key: settlement[key] for key in settlement if key.startswith("cancel.")} == {
        "cancel.message_id": "req-1",
        "cancel.correlation_id": "booking-4711",
        "cancel.outcome": "complete",
        "cancel.reason": "Cancelled",
        "cancel.graph.status": "202",
        "cancel.graph.request_id": settlement["cancel.graph.request_id"],
        "cancel.attempts": "1",
        "cancel.elapsed_ms": settlement["cancel.elapsed_ms"],
    }
    text = repr(rows).lower()
    assert UPN not in text and COMMENT.lower() not in text
