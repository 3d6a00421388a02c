"""Runs function_app with telemetry on as the library worker turns it on, and reports.

tests/test_telemetry_worker.py starts it in a fresh interpreter (the distro installs process-wide
providers) with the app settings of infra/app/function.bicep and an ingestion endpoint on
loopback. It does what azure-functions-runtime 1.3.0's worker_init_request does when
PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is true (otel.initialize_azure_monitor: the Azure
Monitor distro's configure_azure_monitor), then indexes function_app, processes the message
given as JSON on standard input, flushes the exporters and prints one JSON report (with
the number of spans still alive after the flush).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys

from azure_functions_runtime.otel import initialize_azure_monitor, otel_manager
from azure_functions_runtime.utils.app_setting_manager import is_envvar_true

# The worker passes the function's log records on from INFO up, its default level.
logging.getLogger().setLevel(logging.INFO)
if is_envvar_true("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"):
    initialize_azure_monitor()

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_ON  # noqa: E402

import function_app  # noqa: E402 - after the worker's set-up, as in Azure
from tests.helpers import RecordingActions, received_message  # noqa: E402


async def main() -> dict:
    request = json.loads(sys.stdin.read())
    message = received_message(
        request["body"],
        message_id=request["message_id"],
        application_properties=request["properties"],
    )
    actions = RecordingActions()
    try:
        await function_app.processor.process(message, actions)
    finally:
        await function_app.processor.aclose()
    return {
        "azure_monitor_configured": otel_manager.get_azure_monitor_available(),
        # OTEL_TRACES_SAMPLER=always_on (the Bicep setting): the sampler the function's tracer
        # answers for itself (cancel_handler/telemetry/held.py).
        "sampler": trace.get_tracer_provider().sampler is ALWAYS_ON,
        # OTEL_METRICS_EXEMPLAR_FILTER=always_off (the Bicep setting), as the SDK read it.
        "exemplar_filter": type(metrics.get_meter_provider()._sdk_config.exemplar_filter).__name__,
        "pipeline": type(function_app.processor.pipeline).__name__,
        "settled": actions.only.action,
    }


report = asyncio.run(main())
trace.get_tracer_provider().force_flush()
metrics.get_meter_provider().force_flush()
gc.collect()
# Spans of the finished message something still holds on to (in a long-running worker, memory
# that grows with every message).
report["spans_alive"] = sum(
    1 for o in gc.get_objects()
    if isinstance(o, trace.Span) and not isinstance(o, trace.NonRecordingSpan)
)
print(json.dumps(report))
