"""The function's tracer: a message's spans are held as plain records until its consumer span
ends, and become SDK spans only if its trace is kept.

Most plain successes' traces are left out (:mod:`cancel_handler.telemetry.sampling`), so the
OpenTelemetry SDK's own work for a span (its attribute checks, locks, processor calls), paid by
every span it starts whether kept or not, was most of what telemetry cost per message
(docs/performance.md, section 7). A :class:`HeldSpan` is a `opentelemetry.trace.Span` that
records into a dict: it is current while it runs (so logs, and the messages the function sends,
carry its context), and the tracer follows the SDK's own rules for ids, the provider's sampler,
trace flags and status. When a message's consumer span ends, its spans are decided together and
the kept ones reach the provider's span processors (the worker's distro: its batch processor and
Azure Monitor's exporter) as the SDK's `ReadableSpan`, attributes and events bounded by the
SDK's limits, exactly as the SDK would have ended them. Spans dropped never reach a processor.

What differs from the SDK's tracer, on purpose: processors get no `on_start` for these spans
(none of the distro's processors uses it for spans of this scope: the GenAI agent processor
copies `gen_ai` attributes this function never sets, and it held every span it saw start
until that span's `on_end`, which a dropped span never gets); and an exception is never
recorded by the tracer itself: the function records the error's type, never its text, which may
hold a Graph URL and so a UPN.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from cancel_handler.telemetry import names
from cancel_handler.telemetry.sampling import EVERY, Decide, tells_of_trouble


class HeldSpan(trace.Span):
    """A span recorded as plain values; :class:`HeldTracer` decides at the end what becomes of
    it. It follows the SDK span's rules: nothing changes once it ended, an OK status is final,
    an UNSET status is ignored."""

    def __init__(
        self,
        tracer: HeldTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        links: Sequence[trace.Link],
        start_time: int | None = None,
    ) -> None:
        self._tracer = tracer
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = attributes
        self.links = tuple(links)
        self.events: list[Event] = []
        self.status = Status(StatusCode.UNSET)
        self.start_time = start_time or time.time_ns()
        self.end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        """The span's context, as the SDK made it."""
        return self.context

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (ignored once ended)."""
        if self.end_time is None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes (ignored once ended)."""
        if self.end_time is None:
            self.attributes.update(attributes)

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        """Add an event, its attributes bounded as the SDK bounds them."""
        if self.end_time is None:
            limits = self._tracer.limits
            bounded = BoundedAttributes(
                limits.max_event_attributes, attributes,
                max_value_len=limits.max_attribute_length, immutable=True,
            )  # fmt: skip
            self.events.append(Event(name, bounded, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        """Rename the span (ignored once ended)."""
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status as the SDK does: OK is final, UNSET is ignored."""
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if not isinstance(status, Status):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        """An `exception` event with the exception's type only, never its text."""
        self.add_event("exception", {names.EXCEPTION_TYPE: type(exception).__name__})

    def end(self, end_time: int | None = None) -> None:
        """End the span once; its tracer then holds it or passes it on."""
        if self.end_time is None:
            self.end_time = end_time or time.time_ns()
            self._tracer.ended(self)


class HeldTracer:
    """A tracer for the function's scope on an SDK `provider`: its id generator, sampler,
    resource and span processors; the SDK's span limits. Each consumer span opens a message's
    group; every span ending inside it waits for the consumer's end, when the whole group is
    passed on (kept whole, or a share carried as `_MS.sampleRate`) or dropped, by
    :func:`~cancel_handler.telemetry.sampling.tells_of_trouble` and `decide`. Other spans pass
    on when they end."""

    def __init__(self, provider: TracerProvider, processor: Any, decide: Decide) -> None:
        self._ids = provider.id_generator
        self._sampler = provider.sampler
        self._resource = provider.resource
        self._processor = processor
        self._decide = decide
        self._scope = InstrumentationScope(names.SCOPE)
        self.limits = SpanLimits()
        self._held: dict[int, list[HeldSpan]] = {}
        self._lock = threading.Lock()

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[trace.Link] | None = (),
        start_time: int | None = None,
        **_exceptions: Any,
    ) -> trace.Span:
        """A span whose parent is `context`'s span (else the current one), as the SDK's
        `Tracer.start_span` makes it: the provider's sampler asked, a non-recording span when it
        says drop. The SDK's exception options are accepted and have no effect (see the
        module's text)."""
        links = links or ()
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
        else:
            parent = None
            trace_id, random_id = self._ids.generate_trace_id(), self._ids.is_trace_id_random()
        if self._sampler is ALWAYS_ON:
            # As deployed (OTEL_TRACES_SAMPLER=always_on): what that sampler answers, without
            # asking it: record and sample, the attributes as given, the parent's trace state.
            recording, flags = True, TraceFlags.SAMPLED
            state = parent.trace_state if parent is not None else None
            held_attributes = dict(attributes) if attributes else {}
        else:
            sampled = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
            recording = sampled.decision.is_recording()
            flags = TraceFlags.SAMPLED if sampled.decision.is_sampled() else TraceFlags.DEFAULT
            state, held_attributes = sampled.trace_state, dict(sampled.attributes)
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False,
            trace_flags=TraceFlags(flags), trace_state=state,
        )  # fmt: skip
        if not recording:
            return NonRecordingSpan(span_context)
        span = HeldSpan(
            self, name, span_context, parent, kind, held_attributes, links, start_time
        )
        if kind is SpanKind.CONSUMER:
            with self._lock:
                self._held[span_context.span_id] = []
        return span

    def start_as_current_span(self, name: str, **options: Any) -> _Current:
        """:meth:`start_span` with the same options, current while the block runs and ended
        when it leaves (an exception is not recorded: see the module's text)."""
        return _Current(self.start_span(name, **options))

    def ended(self, span: HeldSpan) -> None:
        """Hold a span of an open message; at its consumer span's end, decide for them all."""
        with self._lock:
            group = self._held.pop(span.context.span_id, None)
            if group is None:
                parent = span.parent
                siblings = self._held.get(parent.span_id) if parent is not None else None
                if siblings is not None:
                    siblings.append(span)
                    return
        if group is None:
            self._pass_on([span], EVERY)
            return
        group.append(span)
        share = EVERY if tells_of_trouble(group) else self._decide(span.context.trace_id)
        if share is not None:
            self._pass_on(group, share)

    def _pass_on(self, spans: list[HeldSpan], share: float) -> None:
        """The spans as the SDK ends them, to the provider's processors."""
        limits = self.limits
        for span in spans:
            attributes = span.attributes
            if share != EVERY:
                attributes = {**attributes, names.SAMPLE_RATE: share}
            self._processor.on_end(
                ReadableSpan(
                    name=span.name,
                    context=span.context,
                    parent=span.parent,
                    resource=self._resource,
                    attributes=BoundedAttributes(
                        limits.max_span_attributes,
                        attributes,
                        max_value_len=limits.max_span_attribute_length,
                        immutable=True,
                    ),
                    events=tuple(span.events),
                    links=span.links,
                    kind=span.kind,
                    status=span.status,
                    start_time=span.start_time,
                    end_time=span.end_time,
                    instrumentation_scope=self._scope,
                )
            )


class _Current:
    """A span made current for a `with` block and ended when it leaves (a class rather than a
    generator: it is entered twice a message)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def __enter__(self) -> trace.Span:
        self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *exc_info: object) -> None:
        context_api.detach(self._token)
        self._span.end()


def held_tracer(provider: Any, decide: Decide) -> Any:
    """The function's tracer on `provider`: a :class:`HeldTracer` when it is the SDK's tracer
    provider (its processors are where the kept spans go), else `provider`'s own tracer, every
    span kept."""
    # The SDK keeps its processors in `_active_span_processor` (opentelemetry-sdk 1.45.1, the
    # version azure-monitor-opentelemetry 1.8.11 installs); tests/test_telemetry_worker.py runs
    # this through the worker's own set-up of the distro.
    processor = getattr(provider, "_active_span_processor", None)
    if not isinstance(provider, TracerProvider) or processor is None:
        return trace.get_tracer(names.SCOPE, tracer_provider=provider)
    return HeldTracer(provider, processor, decide)
