"""OpenTelemetry outside Azure: the demo's span output and the command line's producer spans.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans (and the demo's metrics) go there over OTLP/HTTP
(the OpenTelemetry SDK reads the endpoint and its companions from the environment); otherwise
the demo prints one line per span. Never part of the Function App (.funcignore): in Azure the
worker installs the Azure Monitor distro.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def span_line(span: ReadableSpan) -> str:
    """One line per span: trace, span and parent ids, kind, name, attributes."""
    context = span.get_span_context()
    parent = format(span.parent.span_id, "016x") if span.parent else "-" * 16
    kind = span.kind.name.lower() if span.kind is not None else "internal"
    status = " ERROR" if span.status.status_code.name == "ERROR" else ""
    attributes = " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items())
    trace_id = format(context.trace_id, "032x") if context else "?"
    span_id = format(context.span_id, "016x") if context else "?"
    return (
        f"  span {trace_id[:8]} {span_id} <- {parent} {kind:<8} {span.name}{status}  "
        f"{attributes}\n"
    )


def configure_demo(
    environ: Mapping[str, str] = os.environ, stream: TextIO = sys.stdout
) -> tuple[Any, Any]:
    """Install global tracer and meter providers for the demo: OTLP when an endpoint is set,
    else spans printed to `stream`. Returns the two providers (flush them before exiting)."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider

    resource = Resource.create({"service.name": "cancel-handler-demo"})
    tracer_provider = TracerProvider(resource=resource)
    readers: list[Any] = []
    if environ.get(OTLP_ENDPOINT):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    else:
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(ConsoleSpanExporter(out=stream, formatter=span_line))
        )
    trace.set_tracer_provider(tracer_provider)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def sender_tracer_provider(environ: Mapping[str, str] = os.environ) -> TracerProvider:
    """A tracer provider for `cancel-handler send`: its producer spans are real (so every request
    carries a `traceparent` the function continues), exported over OTLP when an endpoint is
    set, otherwise kept nowhere. Not installed globally."""
    provider = TracerProvider(resource=Resource.create({"service.name": "cancel-handler-cli"}))
    if environ.get(OTLP_ENDPOINT):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
