"""The trace context the messages the function sends carry on: none without a source, the
source's while one is set, and never the received one on a copy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cancel_handler.servicebus import tracecontext
from cancel_handler.servicebus.tracecontext import set_trace_source, trace_properties, without_trace

#: W3C Trace Context's example traceparent.
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def source_kept() -> Iterator[None]:
    """Whatever source another test's pipeline set is back afterwards."""
    saved = list(tracecontext._source)
    yield
    tracecontext._source[:] = saved


def test_without_a_source_a_message_carries_no_trace_context() -> None:
    set_trace_source(lambda: {"traceparent": TRACEPARENT})
    set_trace_source(None)
    assert trace_properties() == {}


def test_with_a_source_a_message_carries_what_it_gives_now() -> None:
    spans = iter(["01", "02"])
    set_trace_source(lambda: {"traceparent": TRACEPARENT[:-2] + next(spans)})
    assert [trace_properties()["traceparent"][-2:] for _ in range(2)] == ["01", "02"]


def test_a_copy_drops_the_received_trace_context_and_keeps_the_rest() -> None:
    """traceparent and tracestate (W3C) and Diagnostic-Id (the Service Bus SDKs' name)."""
    received = {
        "traceparent": TRACEPARENT,
        "tracestate": "congo=t61rcWkgMzE",
        "Diagnostic-Id": TRACEPARENT,
        "cancelHandlerRetryCount": 1,
        "originalMessageId": "req-1",
    }
    assert without_trace(received) == {"cancelHandlerRetryCount": 1, "originalMessageId": "req-1"}
