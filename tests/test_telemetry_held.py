"""The function's tracer holds spans as records and passes on the kept ones as the SDK's own
spans: the OpenTelemetry SDK's tracer is the oracle, given the same calls."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from cancel_handler.telemetry.held import HeldTracer, held_tracer

SENDER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED_SENDER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
INVOCATION = SpanContext(0x1234, 0x99, is_remote=True, trace_flags=TraceFlags(1))


def provider(sampler: Any = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    made = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exported))
    return made, exported


def a_message(tracer: Any, failed: bool = False) -> None:
    """What the function does to its spans for one message, through the tracer's API."""
    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": SENDER, "tracestate": "congo=t61rcWkgMzE"})
    with tracer.start_as_current_span(
        "process q", context=parent, kind=SpanKind.CONSUMER,
        attributes={"messaging.destination.name": "q", "cancel.delivery_count": 2},
        links=[Link(INVOCATION)], record_exception=False, set_status_on_exception=False,
    ) as consumer:
        with tracer.start_as_current_span(
            "POST /users/{id}/events/{id}/cancel", kind=SpanKind.CLIENT,
            attributes={"url.template": "/users/{id}/events/{id}/cancel"},
        ) as graph:
            graph.set_attribute("http.response.status_code", 429 if failed else 202)
            if failed:
                graph.add_event("exception", {"exception.type": "ReadTimeout"})
                graph.set_status(Status(StatusCode.ERROR))
        consumer.set_attributes({"cancel.outcome": "complete", "cancel.attempts": 1})
        consumer.update_name("process q (renamed)")


def shape(span: Any) -> tuple:
    """Everything an exporter reads from an ended span, ids as parent/child relations."""
    return (
        span.name, span.kind, span.parent.is_remote if span.parent else None,
        dict(span.attributes), [(e.name, dict(e.attributes)) for e in span.events],
        [(link.context.trace_id, link.context.span_id) for link in span.links],
        span.status.status_code, span.instrumentation_scope.name,
        span.context.trace_flags, span.context.is_remote, span.context.trace_state.to_header(),
        span.end_time >= span.start_time,
    )


@pytest.mark.parametrize("sampler", [None, ALWAYS_ON], ids=["sdk default", "always_on"])
@pytest.mark.parametrize("failed", [False, True])
def test_kept_spans_reach_the_processors_as_the_sdks_tracer_ends_them(
    failed: bool, sampler: Any
) -> None:
    """The SDK's default sampler (parent-based, always on) is asked; `always_on`, as deployed,
    is answered for without asking it, and the spans are the same."""
    sdk_provider, sdk_spans = provider(sampler)
    a_message(sdk_provider.get_tracer("cancel_handler"), failed)
    held_provider, held_spans = provider(sampler)
    a_message(HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0),
              failed)
    expected, got = sdk_spans.get_finished_spans(), held_spans.get_finished_spans()
    assert [shape(span) for span in got] == [shape(span) for span in expected]
    graph, consumer = got
    assert format(consumer.context.trace_id, "032x") == SENDER.split("-")[1]
    assert format(consumer.parent.span_id, "016x") == SENDER.split("-")[2]
    assert graph.parent.span_id == consumer.context.span_id
    assert graph.context.trace_id == consumer.context.trace_id
    assert consumer.resource is held_provider.resource


def test_a_dropped_message_reaches_no_processor_and_is_asked_for_by_its_trace_id() -> None:
    held_provider, held_spans = provider()
    asked: list[int] = []
    tracer = HeldTracer(held_provider, held_provider._active_span_processor,
                        lambda trace_id: asked.append(trace_id))
    a_message(tracer)
    assert held_spans.get_finished_spans() == ()
    assert asked == [int(SENDER.split("-")[1], 16)]
    a_message(tracer, failed=True)  # an ERROR span: kept whole, nobody asked
    assert len(held_spans.get_finished_spans()) == 2
    assert len(asked) == 1


def test_the_providers_sampler_decides_as_for_the_sdks_spans() -> None:
    """An unsampled sender under the default parent-based sampler, and a sampler that keeps
    nothing: a non-recording span, current (its context goes on), nothing held or exported."""
    for sampler, traceparent in ((None, UNSAMPLED_SENDER), (ALWAYS_OFF, SENDER)):
        held_provider, held_spans = provider(sampler)
        tracer = HeldTracer(held_provider, held_provider._active_span_processor,
                            lambda t: 100.0)
        parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        with tracer.start_as_current_span("process q", context=parent,
                                          kind=SpanKind.CONSUMER) as span:
            assert not span.is_recording()
            assert trace.get_current_span() is span
            assert not span.get_span_context().trace_flags.sampled
        assert held_spans.get_finished_spans() == ()
        assert tracer._held == {}


@pytest.mark.parametrize("attributes", [{"a": 1}, None])
@pytest.mark.parametrize("sampler", [ParentBased(TraceIdRatioBased(1.0)), ALWAYS_ON])
def test_a_root_span_gets_a_new_trace_and_the_samplers_attributes(
    sampler: Any, attributes: dict | None
) -> None:
    sdk_provider, sdk_spans = provider(sampler)
    held_provider, held_spans = provider(sampler)
    tracer = HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0)
    for made in (sdk_provider.get_tracer("cancel_handler"), tracer):
        made.start_span("send q", kind=SpanKind.PRODUCER, attributes=attributes).end()
    [expected], [got] = sdk_spans.get_finished_spans(), held_spans.get_finished_spans()
    assert got.parent is None and got.context.trace_id != 0
    assert got.context.trace_flags == expected.context.trace_flags
    assert dict(got.attributes) == dict(expected.attributes) == (attributes or {})


class RecordingSampler(Sampler):
    """Always on, keeping what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple] = []

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None) -> Any:
        self.asked.append((name, kind, dict(attributes or {}),
                           [link.context.span_id for link in links or ()]))
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "RecordingSampler"


def test_the_sampler_is_asked_what_the_sdks_tracer_asks_it() -> None:
    sdk_sampler, held_sampler = RecordingSampler(), RecordingSampler()
    sdk_provider, _ = provider(sdk_sampler)
    held_provider, _ = provider(held_sampler)
    a_message(sdk_provider.get_tracer("cancel_handler"))
    a_message(HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0))
    assert held_sampler.asked == sdk_sampler.asked
    assert [name for name, *_ in held_sampler.asked] == [
        "process q", "POST /users/{id}/events/{id}/cancel"]


def test_span_and_event_limits_and_times_follow_the_sdks() -> None:
    """Attribute counts and value lengths are bounded as the SDK's limits say (here 1 event
    attribute, values of 3 characters), exported attributes cannot be changed, an event keeps
    the time it was given or else gets the time it was added, and a status keeps its text."""
    held_provider, held_spans = provider()
    tracer = HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0)
    tracer.limits.max_event_attributes = 1
    tracer.limits.max_attribute_length = 3
    tracer.limits.max_span_attribute_length = 3
    span = tracer.start_span("x", attributes={"route": "/users/{id}"})
    assert span.is_recording()
    span.add_event("given", {"a": "abcdef", "b": "bcdefg"}, timestamp=42)
    span.add_event("now")
    span.set_status(StatusCode.ERROR, "Graph answered 503")
    span.end()
    assert not span.is_recording()
    [exported] = held_spans.get_finished_spans()
    assert dict(exported.attributes) == {"route": "/us"}
    given, now = exported.events
    assert (dict(given.attributes), given.timestamp) == ({"b": "bcd"}, 42)  # the SDK keeps the last
    assert exported.start_time <= now.timestamp <= exported.end_time
    assert exported.status.description == "Graph answered 503"
    for attributes in (exported.attributes, given.attributes):
        with pytest.raises(TypeError):
            attributes["added"] = 1


def test_span_rules_follow_the_sdks() -> None:
    """OK is final and UNSET ignored; nothing changes after the end; an exception is recorded
    by its type alone; the SDK's attribute limits hold (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT)."""
    held_provider, held_spans = provider()
    tracer = HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0)
    tracer.limits.max_span_attributes = 3
    span = tracer.start_span("x")
    span.set_status(StatusCode.ERROR, "boom")
    span.set_status(Status(StatusCode.UNSET))
    assert span.status.status_code is StatusCode.ERROR
    span.set_status(Status(StatusCode.OK))
    span.set_status(StatusCode.ERROR)
    assert span.status.status_code is StatusCode.OK
    span.record_exception(ValueError("adele.vance@contoso.com"))
    span.set_attributes({"a": 1, "b": 2, "c": 3, "d": 4})
    span.end()
    span.set_attribute("late", 1)
    span.add_event("late")
    span.end()
    [exported] = held_spans.get_finished_spans()
    assert len(exported.attributes) == 3 and "late" not in exported.attributes
    assert [(e.name, dict(e.attributes)) for e in exported.events] == [
        ("exception", {"exception.type": "ValueError"})]
    assert "adele" not in exported.to_json()


class OtherProvider(trace.NoOpTracerProvider):
    """Another library's tracer provider, which happens to have an attribute of that name."""

    _active_span_processor = object()

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(name)
        return super().get_tracer(name, *args, **kwargs)


def test_without_an_sdk_provider_the_providers_own_tracer_is_used() -> None:
    other = OtherProvider()
    tracer = held_tracer(other, lambda t: 100.0)
    assert not isinstance(tracer, HeldTracer)
    assert other.asked == ["cancel_handler"]
    with tracer.start_as_current_span("x") as span:
        assert not span.is_recording()
    plain = held_tracer(trace.NoOpTracerProvider(), lambda t: 100.0)
    assert not isinstance(plain, HeldTracer)


def test_a_given_start_time_is_kept_as_the_sdk_keeps_it() -> None:
    sdk_provider, sdk_spans = provider()
    held_provider, held_spans = provider()
    tracer = HeldTracer(held_provider, held_provider._active_span_processor, lambda t: 100.0)
    for made in (sdk_provider.get_tracer("cancel_handler"), tracer):
        made.start_span("x", start_time=1_000).end(end_time=2_000)
    [expected], [got] = sdk_spans.get_finished_spans(), held_spans.get_finished_spans()
    assert (got.start_time, got.end_time) == (expected.start_time, expected.end_time)


def test_a_block_that_raises_ends_its_span_restores_the_context_and_lets_the_error_out() -> None:
    """As the SDK's tracer does (its span ends, the previous span is current again, the error
    goes on), without recording the exception (the function records its type itself)."""
    outcomes = []
    for make in (
        lambda p: p.get_tracer("cancel_handler"),
        lambda p: HeldTracer(p, p._active_span_processor, lambda t: 100.0),
    ):
        made, exported = provider()
        tracer = make(made)
        with tracer.start_as_current_span("process q", kind=SpanKind.CONSUMER) as consumer:
            with pytest.raises(TimeoutError), tracer.start_as_current_span(
                "POST /x",
                kind=SpanKind.CLIENT,
                record_exception=False,
                set_status_on_exception=False,
            ):
                raise TimeoutError("https://graph.microsoft.com/v1.0/users/a@b/events")
            back = trace.get_current_span() is consumer
        outcomes.append(
            (
                back,
                [(s.name, s.events, s.status.status_code) for s in exported.get_finished_spans()],
            )
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[1] == (
        True,
        [("POST /x", (), StatusCode.UNSET), ("process q", (), StatusCode.UNSET)],
    )
