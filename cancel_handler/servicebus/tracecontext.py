"""The trace context a message the function sends carries on, as application properties.

Child requests, delayed-retry copies and replies are sent inside a span when telemetry is on;
`cancel_handler.telemetry` then sets the source of their W3C `traceparent` (and `tracestate`,
`Diagnostic-Id`, the name the Service Bus SDKs use) here, so the next consumer continues the
trace. Off, `trace_properties()` is an empty dict and nothing else is imported.
"""

from __future__ import annotations

from collections.abc import Callable

#: The application properties that carry a trace context, as the Service Bus SDKs set them.
TRACE_PROPERTIES = ("traceparent", "tracestate", "Diagnostic-Id")

_source: list[Callable[[], dict[str, str]]] = []


def set_trace_source(source: Callable[[], dict[str, str]] | None) -> None:
    """Take outgoing trace properties from `source()` from now on (None: carry none)."""
    _source[:] = [] if source is None else [source]


def trace_properties() -> dict[str, str]:
    """The trace properties for a message sent now: empty when telemetry is off or no span is
    active."""
    return _source[0]() if _source else {}


def without_trace(properties: dict[str, object]) -> dict[str, object]:
    """`properties` less any trace context (a copy must not carry the received one on)."""
    return {k: v for k, v in properties.items() if k not in TRACE_PROPERTIES}
