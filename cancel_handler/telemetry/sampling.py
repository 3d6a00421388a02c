"""Which traces are kept: every trace that tells of trouble, and a rate-limited share of plain
successes.

A head sampler decides when a span starts and so cannot know that a message will fail: the
function's tracer provider keeps every span (`OTEL_TRACES_SAMPLER=always_on`), and the
function's tracer (:mod:`cancel_handler.telemetry.held`) holds each message's spans until its
consumer span ends, then decides for the whole message:

- kept whole, always: every outcome but `complete` (dead-letters, give-backs, failed runs) and
  any message with a span whose status is ERROR: a throttled or failed Graph call (so every
  message that needed a retry), a send that failed;
- a plain success (outcome `complete`, no error) is kept at the share that
  Azure Monitor's own `RateLimitedSampler` computes for `TRACE_SUCCESSES_PER_SECOND` successful
  messages a second on this instance, by the trace id's score as that sampler does. Its spans
  then carry `_MS.sampleRate` (the share in percent), so Application Insights counts each kept
  one as 100 ÷ share (`itemCount`).

Metrics are never sampled: counts come from them. The SDK's work on a span and the exporter's
conversion of it to its envelope are what telemetry costs most per message
(docs/performance.md, section 7), and both are spent only on the spans kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.trace import StatusCode

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


def tells_of_trouble(group: list[Any]) -> bool:
    """Anything but a plain success: its consumer span (the last of `group`) did not
    complete, or any span of it has an ERROR status."""
    if (group[-1].attributes or {}).get(names.OUTCOME) != "complete":
        return True
    return any(span.status.status_code is StatusCode.ERROR for span in group)
