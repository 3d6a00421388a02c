"""Which traces are kept: every message that tells of trouble whole, plain successes at a share,
counted in full by the metrics. Through the production path (host-format messages,
`Processor.process`, the loopback Graph simulator) into the SDK's in-memory exporter, standing
where the distro's batch processor stands; Azure Monitor's own sampler and envelope converter
decide the share and the `itemCount`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.monitor.opentelemetry.exporter.export.trace import _rate_limited_sampling
from azure.monitor.opentelemetry.exporter.export.trace._exporter import (
    _convert_span_to_envelope,
)
from opentelemetry.trace import SpanKind

from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.telemetry import names
from cancel_handler.telemetry.instruments import Telemetry
from cancel_handler.telemetry.sampling import rate_limited, sample_score
from tests.conftest import UPN, Loopback, cancel_body
from tests.test_telemetry import COMMENT, KEY, TRACE_ID, Recorded, run, traced

#: Azure Monitor's exporter reads the share from this span attribute (its _SAMPLE_RATE_KEY).
SAMPLE_RATE = "_MS.sampleRate"


class Sampled(Recorded):
    """Recorded spans behind the success sampling, with `decide` answering for successes."""

    def __init__(self, decide: Any) -> None:
        super().__init__()
        self.asked: list[int] = []

        def recording(trace_id: int) -> float | None:
            self.asked.append(trace_id)
            return decide(trace_id)

        self.telemetry = Telemetry(
            self.tracer_provider, self.meter_provider, hash_key=KEY, successes=recording
        )

    def counted(self) -> list[tuple[str, str, int]]:
        """The messages counted by the duration histogram: (outcome, reason, count)."""
        return [
            (attributes[names.OUTCOME], attributes[names.REASON], point.count)
            for attributes, point in self.points()[names.METRIC_PROCESS_DURATION]
        ]


def test_a_success_left_out_exports_no_span_and_is_still_counted(loopback: Loopback) -> None:
    loopback.graph.state.add_event(UPN, "EV1")
    sampled = Sampled(lambda trace_id: None)
    actions = run(loopback, sampled, traced(cancel_body("EV1", comment=COMMENT)))
    assert actions.only.action == "complete"
    assert sampled.finished() == []
    assert sampled.asked == [int(TRACE_ID, 16)]
    assert sampled.counted() == [("complete", "Cancelled", 1)]


def test_a_success_kept_at_a_share_carries_it_on_every_span(loopback: Loopback) -> None:
    """Kept at 12.5 %: the consumer and its Graph span both say so, still parent and child,
    and Azure Monitor's converter makes each an envelope counted 8 times (100 / 12.5)."""
    loopback.graph.state.add_event(UPN, "EV1")
    sampled = Sampled(lambda trace_id: 12.5)
    run(loopback, sampled, traced(cancel_body("EV1", comment=COMMENT)))
    consumer = sampled.one(SpanKind.CONSUMER)
    graph = sampled.one(SpanKind.CLIENT)
    assert graph.parent.span_id == consumer.context.span_id
    assert dict(consumer.attributes)[names.REASON] == "Cancelled"
    for span in (consumer, graph):
        assert dict(span.attributes)[SAMPLE_RATE] == 12.5
        assert _convert_span_to_envelope(span).sample_rate == 12.5
    assert sampled.counted() == [("complete", "Cancelled", 1)]


def test_a_success_kept_whole_carries_no_share(loopback: Loopback) -> None:
    loopback.graph.state.add_event(UPN, "EV1")
    sampled = Sampled(lambda trace_id: 100.0)
    run(loopback, sampled, traced(cancel_body("EV1")))
    spans = sampled.finished()
    assert sorted(span.kind.name for span in spans) == ["CLIENT", "CONSUMER"]
    assert all(SAMPLE_RATE not in span.attributes for span in spans)


def _trouble(loopback: Loopback, case: str) -> tuple[Any, dict[str, str], tuple[str, str]]:
    """A message that tells of trouble, the settings it runs with, and its (outcome, reason)."""
    state = loopback.graph.state
    if case == "invalid":  # no Graph call, so no span in ERROR: the outcome alone decides
        invalid = traced({"userPrincipalName": UPN, "comment": COMMENT})
        return invalid, {}, ("deadletter", "InvalidMessage")
    if case == "dead-letter":
        state.add_event(UPN, "ATTENDEE", organizer=False)
        return traced(cancel_body("ATTENDEE")), {}, ("deadletter", "NotOrganizer")
    state.add_event(UPN, "EV1")
    throttled = Fault(429, {"Retry-After": "1"})
    if case == "given back":
        state.script(UPN, "EV1", throttled, throttled)
        budget = {"CANCEL_RETRY_BUDGET_SECONDS": "1"}
        return traced(cancel_body("EV1")), budget, ("abandon", "TransientFailure")
    state.script(UPN, "EV1", throttled)
    return traced(cancel_body("EV1")), {}, ("complete", "Cancelled")


@pytest.mark.parametrize(
    "case", ["invalid", "dead-letter", "given back", "cancelled after a 429"]
)
def test_a_message_that_tells_of_trouble_is_kept_whole(loopback: Loopback, case: str) -> None:
    """Whatever the share for successes (none here), every span of a dead-letter, a give-back
    and a success that needed a retry is exported as it ended, and no share is asked for."""
    message, settings, (outcome, reason) = _trouble(loopback, case)
    sampled = Sampled(lambda trace_id: None)
    actions = run(loopback, sampled, message, **settings)
    assert actions.only.action == outcome
    consumer = sampled.one(SpanKind.CONSUMER)
    clients = [span for span in sampled.finished() if span.kind is SpanKind.CLIENT]
    assert (dict(consumer.attributes)[names.OUTCOME], dict(consumer.attributes)[names.REASON]) == (
        outcome, reason)
    assert (case == "invalid") is not bool(clients)
    assert all(span.parent.span_id == consumer.context.span_id for span in clients)
    assert all(SAMPLE_RATE not in span.attributes for span in sampled.finished())
    assert sampled.asked == []
    assert sampled.counted() == [(outcome, reason, 1)]


def test_spans_outside_a_message_pass_straight_on() -> None:
    """Another library's span, and one of ours with no message around it (the send API's
    producer span), are exported at once: only a message's spans wait for its outcome."""
    sampled = Sampled(lambda trace_id: None)
    sampled.tracer_provider.get_tracer("azure.servicebus").start_span("ServiceBus.send").end()
    sampled.telemetry.tracer.start_span("send cancel-requests", kind=SpanKind.PRODUCER).end()
    assert [span.name for span in sampled.finished()] == [
        "ServiceBus.send", "send cancel-requests"]
    assert sampled.asked == []


def test_a_busy_instance_keeps_successes_at_the_share_azure_monitor_computes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1,000 successes a second (its clock advanced 1 ms a call) against 100 a second: most are
    left out, and the kept ones carry the share below 100 % that Azure Monitor's sampler put on
    its own result."""
    clock = iter(range(10**9, 10**12, 10**6))
    fake_time = SimpleNamespace(time_ns=lambda: next(clock))
    monkeypatch.setattr(_rate_limited_sampling, "time", fake_time)
    decide = rate_limited(100.0)
    shares = [decide(int(TRACE_ID, 16) + n * 7919) for n in range(2000)]
    kept = [share for share in shares if share is not None]
    assert 0 < len(kept) < 1000
    assert all(0 < share < 100.0 for share in kept)


def test_azure_monitors_rate_limited_sampler_decides_the_share() -> None:
    """No successes a second keeps none; a rate far above the traffic keeps every one, at
    100 % (no share to carry)."""
    none, every = rate_limited(0.0), rate_limited(1e9)
    trace_ids = [int(TRACE_ID, 16) + n for n in range(50)]
    assert [none(trace_id) for trace_id in trace_ids] == [None] * 50
    assert [every(trace_id) for trace_id in trace_ids] == [100.0] * 50


def test_the_decision_is_azure_monitors_own_for_every_trace_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For 20,000 random trace ids, at a rate that keeps a share between none and all, the
    decision and the share carried are those of Azure Monitor's `RateLimitedSampler` for a
    trace without a parent, each asked at the same instant."""
    import random

    from azure.monitor.opentelemetry.exporter import RateLimitedSampler

    now = [10**12]
    monkeypatch.setattr(_rate_limited_sampling, "time", SimpleNamespace(time_ns=lambda: now[0]))
    ours, theirs = rate_limited(50.0), RateLimitedSampler(50.0)
    draws = random.Random(20261207)
    decisions = []
    for _ in range(20_000):
        trace_id = draws.getrandbits(128)
        result = theirs.should_sample(None, trace_id, "process cancel-requests")
        expected = (
            float((result.attributes or {}).get(names.SAMPLE_RATE, 100.0))
            if result.decision.is_sampled()
            else None
        )
        decisions.append((ours(trace_id), expected))
        now[0] += 2 * 10**6  # 500 a second
    assert all(mine == expected for mine, expected in decisions)
    kept = [mine for mine, _ in decisions if mine is not None]
    assert 0 < len(kept) < 20_000 and all(0 < share < 100.0 for share in kept)


@pytest.mark.parametrize(
    "trace_id",
    [
        0,
        2**128 - 1,
        int(TRACE_ID, 16),
        # Its DJB2 hash is the signed 32-bit minimum, which Azure Monitor scores as the maximum
        # (found by a meet-in-the-middle search over the hash's weighted-sum form).
        0xA5CE61EE4BB1C9CB4A52CAAE489CAF94,
    ],
)
def test_the_sample_score_is_azure_monitors(trace_id: int) -> None:
    assert sample_score(trace_id) == microsofts_score(trace_id)


def test_a_trace_scored_at_the_maximum_is_left_out_even_at_a_full_share() -> None:
    """Azure Monitor keeps a trace when its score is below the share, so even at 100 % the
    trace id scored 1.0 (its hash is the 32-bit minimum) is dropped: as its sampler does."""
    from azure.monitor.opentelemetry.exporter import RateLimitedSampler

    trace_id = 0xA5CE61EE4BB1C9CB4A52CAAE489CAF94
    theirs = RateLimitedSampler(1e9).should_sample(None, trace_id, "process cancel-requests")
    assert not theirs.decision.is_sampled()
    assert rate_limited(1e9)(trace_id) is None
    assert rate_limited(1e9)(int(TRACE_ID, 16)) == 100.0


def test_the_sample_score_is_azure_monitors_for_many_trace_ids() -> None:
    trace_ids = [n * 0x9E3779B97F4A7C15F39CC0605CEDC834 % 2**128 for n in range(1, 5000)]
    assert [t for t in trace_ids if sample_score(t) != microsofts_score(t)] == []


def microsofts_score(trace_id: int) -> float:
    """The score Azure Monitor's `RateLimitedSampler` computes for a trace id."""
    from azure.monitor.opentelemetry.exporter.export.trace._utils import _get_DJB2_sample_score
    from opentelemetry.trace import format_trace_id

    return _get_DJB2_sample_score(format_trace_id(trace_id).lower())


def test_with_no_successes_a_second_only_trouble_is_exported(loopback: Loopback) -> None:
    state = loopback.graph.state
    state.add_event(UPN, "EV1")
    state.add_event(UPN, "ATTENDEE", organizer=False)
    recorded = Recorded()
    recorded.telemetry = Telemetry(
        recorded.tracer_provider, recorded.meter_provider, hash_key=KEY,
        successes=rate_limited(0.0),
    )
    run(loopback, recorded, traced(cancel_body("EV1")), traced(cancel_body("ATTENDEE")))
    consumer = recorded.one(SpanKind.CONSUMER)
    assert dict(consumer.attributes)[names.REASON] == "NotOrganizer"
