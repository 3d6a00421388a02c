"""The producer span of `cancel-handler send` and the send API: the requests sent inside it
carry its context (`traceparent`, `Diagnostic-Id`), so the function's consumer span continues
the sender's trace. A no-op span unless the sending application installed an OpenTelemetry SDK
(the command line installs one: `cancel_handler.telemetry.local.configure_sender`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cancel_handler.telemetry import names
from cancel_handler.telemetry.propagation import carry_trace_context
from cancel_handler.telemetry.spans import open_span, producer_attributes


@contextmanager
def producer_span(
    queue: str, messages: int, message_id: str | None = None, tracer_provider: Any = None
) -> Iterator[Any]:
    """A `send <queue>` producer span around sending `messages` requests."""
    carry_trace_context()
    attributes = producer_attributes(queue, "send", messages)
    if message_id is not None:
        attributes[names.MESSAGING_MESSAGE_ID] = message_id
    tracer = trace.get_tracer(names.SCOPE, tracer_provider=tracer_provider)
    with open_span(tracer, f"send {queue}", SpanKind.PRODUCER, attributes) as span:
        yield span


def failed(span: Any, exc: BaseException) -> None:
    """Mark the span failed by the error's type alone."""
    span.set_attribute(names.ERROR_TYPE, type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR))
