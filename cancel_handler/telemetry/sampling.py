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
from functools import cache
from operator import getitem
from typing import Any

from opentelemetry.trace import StatusCode

from cancel_handler.telemetry import names

#: Decides one plain success by its trace id: None to drop it, else the share kept in percent.
Decide = Callable[[int], float | None]

#: A share of 100 % adds no attribute: every span counts once, as unsampled.
EVERY = 100.0


def rate_limited(successes_per_second: float) -> Decide:
    """Azure Monitor's rate-limited sampling, applied to plain successes only: what its
    `RateLimitedSampler` decides for a trace without a parent (keep when the trace id's score
    is below the share; the share carried unless it is 100 %), with the share from that
    sampler's own adaptive rate and the score computed by :func:`sample_score`."""
    from azure.monitor.opentelemetry.exporter.export.trace._rate_limited_sampling import (
        RateLimitedSamplingPercentage,
    )

    share = RateLimitedSamplingPercentage(successes_per_second)

    def decide(trace_id: int) -> float | None:
        percentage = share.get()
        return percentage if sample_score(trace_id) * 100.0 < percentage else None

    return decide


_INT32_MAX = 2**31 - 1
_HEX_DIGITS = b"0123456789abcdef"


@cache
def _djb2_tables() -> tuple[int, tuple[tuple[int, ...], ...]]:
    """DJB2 over 32 characters, modulo 2**32, is one weighted sum: 5381 * 33**32 plus each
    character's code times 33**(31 - its index). That start, and for each byte of a trace id
    (two hex digits) the share each of its 256 values adds to the sum."""
    weights = [pow(33, 31 - index, 2**32) for index in range(32)]
    tables = tuple(
        tuple(
            (
                _HEX_DIGITS[byte >> 4] * weights[2 * pair]
                + _HEX_DIGITS[byte & 15] * weights[2 * pair + 1]
            )
            % 2**32
            for byte in range(256)
        )
        for pair in range(16)
    )
    return 5381 * pow(33, 32, 2**32) % 2**32, tables


def sample_score(trace_id: int) -> float:
    """Azure Monitor's sampling score of a trace id, from 0 to 1: the DJB2 hash of its 32
    lower-case hex digits as a signed 32-bit integer, its absolute value (the minimum counts as
    the maximum) over 2**31 - 1 (`_get_DJB2_sample_score` in azure-monitor-opentelemetry-exporter,
    whose per-character loop costs about 7 us a trace; this, about 1 us)."""
    start, tables = _djb2_tables()
    value = (start + sum(map(getitem, tables, trace_id.to_bytes(16, "big")))) % 2**32
    if value >= 2**31:
        value -= 2**32
    return (_INT32_MAX if value == -(2**31) else abs(value)) / _INT32_MAX


def tells_of_trouble(group: list[Any]) -> bool:
    """Anything but a plain success: its consumer span (the last of `group`) did not
    complete, or any span of it has an ERROR status."""
    if (group[-1].attributes or {}).get(names.OUTCOME) != "complete":
        return True
    return any(span.status.status_code is StatusCode.ERROR for span in group)
