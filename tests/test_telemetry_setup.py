"""How telemetry is switched on in Azure, checked against the pinned worker and distro, and that
the function runs without OpenTelemetry while it is off."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

from cancel_handler import settings
from tests.test_infra_settings import FUNCTION_BICEP, bicep_app_settings

ROOT = Path(__file__).resolve().parents[1]


def app_settings() -> dict[str, str]:
    found = bicep_app_settings(FUNCTION_BICEP.read_text())
    return {name: value.strip("'") for name, value in found.items()}


def test_host_runs_in_opentelemetry_mode_without_sampling() -> None:
    """host.json: `telemetryMode` OpenTelemetry (the host's own telemetry as OpenTelemetry, and
    the worker's logs left to the worker), and no host-side sampling."""
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    assert host["logging"]["applicationInsights"]["samplingSettings"]["isEnabled"] is False


def test_the_pinned_worker_configures_the_distro_from_the_setting_infra_sets() -> None:
    """azure-functions-runtime (the worker the app pins) calls configure_azure_monitor() at
    worker init when PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is true, and then declares
    WorkerOpenTelemetryEnabled (the host stops forwarding worker logs: each log once)."""
    from azure_functions_runtime import handle_event, otel
    from azure_functions_runtime.utils import constants

    name = constants.PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
    assert name == "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
    init = inspect.getsource(handle_event.worker_init_request)
    assert "is_envvar_true(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY)" in init
    assert "initialize_azure_monitor()" in init
    assert "capabilities[WORKER_OPEN_TELEMETRY_ENABLED] = TRUE" in init
    assert "configure_azure_monitor(" in inspect.getsource(otel.initialize_azure_monitor)
    assert app_settings()[name] == "true"
    assert name in settings.TELEMETRY_SETTINGS


def test_no_span_is_sampled_away() -> None:
    """The distro's sampler is `always_on`, which it accepts: no failure is dropped, whatever
    the sender's sampling flag says."""
    from azure.monitor.opentelemetry._constants import SUPPORTED_OTEL_SAMPLERS

    sampler = app_settings()["OTEL_TRACES_SAMPLER"]
    assert sampler == "always_on"
    assert sampler in SUPPORTED_OTEL_SAMPLERS


def test_every_http_instrumentation_of_the_distro_is_off() -> None:
    """Each HTTP client instrumentation the distro bundles would record Graph URLs, which hold
    the UPN: all of them are disabled (the function records Graph calls by route template)."""
    from azure.monitor.opentelemetry._constants import _ALL_SUPPORTED_INSTRUMENTED_LIBRARIES

    http_clients = {"httpx", "httpx2", "requests", "urllib", "urllib3"}
    assert http_clients <= set(_ALL_SUPPORTED_INSTRUMENTED_LIBRARIES)
    disabled = set(app_settings()["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"].split(","))
    assert disabled == http_clients


def test_instrumentation_key_is_never_a_setting() -> None:
    """Application Insights is reached with the identity (local auth off): no key setting."""
    names = app_settings()
    assert "APPINSIGHTS_INSTRUMENTATIONKEY" not in names
    assert names["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].endswith(";Authorization=AAD")


def test_function_imports_no_opentelemetry_while_telemetry_is_off() -> None:
    """Indexing function_app and building its pipeline import nothing from OpenTelemetry or the
    distro: off, the function runs as it did before telemetry."""
    probe = (
        "import sys, function_app\n"
        "function_app.processor.pipeline\n"
        "print(type(function_app.processor.pipeline).__name__)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'"
        " or m.startswith('azure.monitor')))\n"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "CANCEL_QUEUE_NAME": "cancel-requests"},
    )
    assert done.stdout.splitlines() == ["Pipeline", "[]"]


def test_exemplars_are_off_because_azure_monitor_sends_none() -> None:
    """Azure Monitor's exporter turns a metric point into the same envelope whether the SDK
    kept exemplars for it or not, so the deployment turns them off (each point offered to the
    reservoirs costs CPU) and loses nothing."""
    from azure.monitor.opentelemetry.exporter.export.metrics._exporter import (
        _convert_point_to_envelope,
    )
    from opentelemetry.sdk.metrics import (
        AlwaysOffExemplarFilter,
        AlwaysOnExemplarFilter,
        MeterProvider,
    )
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    assert app_settings()["OTEL_METRICS_EXEMPLAR_FILTER"] == "always_off"
    envelopes = []
    for exemplar_filter in (AlwaysOnExemplarFilter(), AlwaysOffExemplarFilter()):
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader], exemplar_filter=exemplar_filter)
        histogram = provider.get_meter("probe").create_histogram("messaging.process.duration")
        with TracerProvider().get_tracer("probe").start_as_current_span("process"):
            histogram.record(0.25, {"cancel.outcome": "complete"})
        [resource] = reader.get_metrics_data().resource_metrics
        [scope] = resource.scope_metrics
        [metric] = scope.metrics
        [point] = metric.data.data_points
        envelope = _convert_point_to_envelope(point, metric.name, resource.resource, scope.scope)
        envelopes.append((len(point.exemplars), envelope.data.base_data.as_dict()))
    (kept, with_exemplar), (none, without) = envelopes
    assert (kept, none) == (1, 0)
    assert with_exemplar == without
