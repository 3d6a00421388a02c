"""Keep every trace that tells of trouble, and a rate-limited share of plain successes.

A head sampler decides when a span starts and so cannot know that a message will fail: the
function's tracer provider keeps every span (`OTEL_TRACES_SAMPLER=always_on`). This span
processor stands between the function's spans and the processors the Python worker's distro
installed (its batch processor and Azure Monitor's exporter). It holds each message's Graph and
producer spans until the message's consumer span ends, then decides for the whole message:

- kept whole, always: every outcome but `complete` (dead-letters, give-backs, failed runs) and
  any message with a span whose status is ERROR: a throttled or failed Graph call (so every
  message that needed a retry), a send that failed;
- a plain success (outcome `complete`, no error) is kept at the share that
  Azure Monitor's own `RateLimitedSampler` computes for `TRACE_SUCCESSES_PER_SECOND` successful
  messages a second on this instance, by the trace id's score as that sampler does. Its spans
  then carry `_MS.sampleRate` (the share in percent), so Application Insights counts each kept
  one as 100 ÷ share (`itemCount`).

Metrics are never sampled: counts come from them. The exporter's conversion of each span to its
envelope is what telemetry costs most per message (docs/performance.md, section 7), and it is
spent only on the spans kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from cancel_handler.telemetry import names

#: Decides one plain success by its trace id: None to drop it, else the share kept in percent.
Decide = Callable[[int], float | None]

#: A share of 100 % adds no attribute: every span counts once, as unsampled.
EVERY = 100.0


def rate_limited(successes_per_second: float) -> Decide:
    """Azure Monitor's rate-limited sampling, applied to plain successes only."""
    from azure.monitor.opentelemetry.exporter import RateLimitedSampler

    sampler = RateLimitedSampler(successes_per_second)

    def decide(trace_id: int) -> float | None:
        result = sampler.should_sample(None, trace_id, "")
        if not result.decision.is_sampled():
            return None
        return float((result.attributes or {}).get(names.SAMPLE_RATE, EVERY))

    return decide


class SuccessSampling(SpanProcessor):
    """Holds a message's spans until its consumer span ends, then passes on all of them, a
    share of them (plain successes) or none, to `delegate`. Other spans pass straight on."""

    def __init__(self, delegate: Any, decide: Decide) -> None:
        self._delegate = delegate
        self._decide = decide
        self._held: dict[int, list[Any]] = {}
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Open a group for the function's consumer spans; pass every start on."""
        if span.kind is SpanKind.CONSUMER and span.instrumentation_scope.name == names.SCOPE:
            with self._lock:
                self._held[span.context.span_id] = []
        self._delegate.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
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
            self._delegate.on_end(span)
            return
        group.append(span)
        share = EVERY if _tells_of_trouble(group) else self._decide(span.context.trace_id)
        if share is None:
            return
        for held in group:
            self._delegate.on_end(held if share == EVERY else _with_sample_rate(held, share))

    def shutdown(self) -> None:
        """Shut the delegate down."""
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the delegate (messages still in progress are not held back by it)."""
        return self._delegate.force_flush(timeout_millis)


def _tells_of_trouble(group: list[Any]) -> bool:
    """Anything but a plain success: not completed, or an ERROR status anywhere."""
    if (group[-1].attributes or {}).get(names.OUTCOME) != "complete":
        return True
    return any(span.status.status_code is StatusCode.ERROR for span in group)


def _with_sample_rate(span: Any, share: float) -> ReadableSpan:
    """The ended span again, carrying the share it was kept at (`_MS.sampleRate`)."""
    attributes = {**(span.attributes or {}), names.SAMPLE_RATE: share}
    return ReadableSpan(
        span.name, span.context, span.parent, span.resource, attributes, span.events,
        span.links, span.kind, None, span.status, span.start_time, span.end_time,
        span.instrumentation_scope,
    )


def sampled_provider(provider: Any, decide: Decide) -> Any:
    """A tracer provider for the function's spans: `provider`'s resource and sampler, its span
    processors behind :class:`SuccessSampling`. `provider` itself is left as it is, so other
    libraries' spans reach its processors unchanged. Without an SDK provider's processors to
    put it in front of, `provider` is returned and every span is kept."""
    from opentelemetry.sdk.trace import TracerProvider

    # The SDK keeps its processors in `_active_span_processor` (opentelemetry-sdk 1.45.1, the
    # version azure-monitor-opentelemetry 1.8.11 installs); tests/test_telemetry_worker.py runs
    # this through the worker's own set-up of the distro.
    delegate = getattr(provider, "_active_span_processor", None)
    if not isinstance(provider, TracerProvider) or delegate is None:
        return provider
    return TracerProvider(
        sampler=provider.sampler,
        resource=provider.resource,
        active_span_processor=SuccessSampling(delegate, decide),
        shutdown_on_exit=False,  # `provider` shuts its processors down at exit, once
    )
