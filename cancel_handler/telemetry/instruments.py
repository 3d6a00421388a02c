"""The function's tracer and metric instruments, made once per process from the providers.

:func:`configured` decides whether telemetry is on: only when an OpenTelemetry SDK provider
has been installed (in Azure by the Python worker's Azure Monitor distro, locally by
`cancel_handler.telemetry.local`). Otherwise the function runs its plain pipeline and never
imports OpenTelemetry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from cancel_handler.telemetry import names
from cancel_handler.telemetry.mailbox import mailbox_hash

if TYPE_CHECKING:
    from cancel_handler.telemetry.sampling import Decide

#: Mailbox pseudonyms an instance keeps computed (about 200 bytes each).
MAILBOX_HASHES_KEPT = 4096

#: Histogram buckets for durations in seconds (the conventions' advice for HTTP durations, up to
#: the longest a message may take: retry budget + timeouts).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


class Telemetry:
    """The tracer, the five instruments and the mailbox-hash key. The tracer holds each
    message's spans until its end (:mod:`cancel_handler.telemetry.held`); with `successes`,
    plain successes' traces are kept at that rule's share, without, every trace is kept."""

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        *,
        hash_key: bytes = b"",
        successes: Decide | None = None,
    ) -> None:
        from opentelemetry import metrics, trace

        from cancel_handler.telemetry.held import held_tracer
        from cancel_handler.telemetry.sampling import EVERY

        self.tracer = held_tracer(
            tracer_provider or trace.get_tracer_provider(),
            successes if successes is not None else lambda trace_id: EVERY,
        )
        meter = metrics.get_meter(names.SCOPE, meter_provider=meter_provider)
        self.process_duration = meter.create_histogram(
            names.METRIC_PROCESS_DURATION,
            unit="s",
            description="Duration of processing one message, settlement included (its count: "
            "the messages settled)",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.graph_duration = meter.create_histogram(
            names.METRIC_GRAPH_DURATION,
            unit="s",
            description="Duration of one Microsoft Graph call",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.graph_throttles = meter.create_counter(
            names.METRIC_GRAPH_THROTTLES,
            unit="{response}",
            description="Graph answers asking to slow down (429, or 503 with Retry-After)",
        )
        self.retry_budget = meter.create_histogram(
            names.METRIC_RETRY_BUDGET,
            unit="1",
            description="Share of the retry budget one message waited",
            explicit_bucket_boundaries_advisory=(0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0),
        )
        self.fanout_size = meter.create_histogram(
            names.METRIC_FANOUT_SIZE,
            unit="{message}",
            description="Child requests one date range was fanned out into",
            explicit_bucket_boundaries_advisory=(0, 1, 5, 10, 25, 50, 100, 250, 500, 800),
        )
        # The mailbox's pseudonym (`cancel.mailbox.hash`) of a UPN. Recent ones are kept in
        # memory, never exported: a message asks twice, an organizer's meetings many times.
        self.mailbox: Callable[[str], str] = lru_cache(maxsize=MAILBOX_HASHES_KEPT)(
            partial(mailbox_hash, hash_key)
        )


def configured(hash_key: bytes, successes_per_second: float | None = None) -> Telemetry | None:
    """Telemetry on the process-wide providers when an SDK provider is installed; else None.
    Never imports OpenTelemetry itself: whoever installed a provider already did.
    `successes_per_second`: plain successes' traces kept a second (None: every one)."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    if successes_per_second is None:
        return Telemetry(hash_key=hash_key)
    from cancel_handler.telemetry.sampling import rate_limited

    return Telemetry(hash_key=hash_key, successes=rate_limited(successes_per_second))
