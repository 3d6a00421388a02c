"""W3C trace context in and out of Service Bus application properties.

A sender's Service Bus SDK (with tracing on) sets `Diagnostic-Id` and, in newer versions,
`traceparent` on every message it sends; the function continues that trace. Messages the
function and `cancel-handler send` send carry the current span's context the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from cancel_handler.servicebus.tracecontext import set_trace_source

_PROPAGATOR = TraceContextTextMapPropagator()


def inject_current() -> dict[str, str]:
    """`traceparent` (also as `Diagnostic-Id`) and `tracestate` of the current span; empty when
    no span is recording a valid context."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    if "traceparent" in carrier:
        carrier["Diagnostic-Id"] = carrier["traceparent"]
    return carrier


def sender_context(properties: Mapping[str, Any]) -> Context | None:
    """The sender's trace context from a received message's application properties:
    `traceparent` (with `tracestate`), else a W3C `Diagnostic-Id`; None when there is none or it
    does not parse."""
    parent = properties.get("traceparent") or properties.get("Diagnostic-Id")
    if not isinstance(parent, str):
        return None
    carrier = {"traceparent": parent}
    state = properties.get("tracestate")
    if isinstance(state, str):
        carrier["tracestate"] = state
    context = _PROPAGATOR.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def carry_trace_context() -> None:
    """Messages the function sends from now on carry the current span's context."""
    set_trace_source(inject_current)
