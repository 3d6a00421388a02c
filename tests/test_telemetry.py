"""Traces and metrics of each end state, through the production path (host-format messages,
`Processor.process`, the loopback Graph simulator and identity endpoint), exported to the
OpenTelemetry SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from cancel_handler.core.decision import DEADLETTER_REASONS
from cancel_handler.devtools.graph_simulator import Fault, Meeting
from cancel_handler.runtime import configure_process
from cancel_handler.servicebus.messages import sealed
from cancel_handler.telemetry import names
from cancel_handler.telemetry.instruments import Telemetry
from cancel_handler.telemetry.mailbox import mailbox_hash
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import (
    RecordingActions,
    RecordingSender,
    RecordingSleep,
    as_delivered,
    received_message,
)
from tests.test_cancel_path import GRAPH_ERROR_400
from tests.test_range_replies import END, NOW, START, leave

KEY = b"test-key"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SENDER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{SENDER_SPAN}-01"
COMMENT = "Room closed; Adele's private note for Alex"
REPLIES = "cancel-replies"
QUEUE = "cancel-requests"


class Recorded:
    """An SDK tracer and meter provider exporting to memory, and the Telemetry on them."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = Telemetry(self.tracer_provider, self.meter_provider, hash_key=KEY)

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def one(self, kind: SpanKind, name: str | None = None) -> Any:
        found = [s for s in self.finished() if s.kind is kind and name in (None, s.name)]
        assert len(found) == 1, [(s.name, s.kind) for s in self.finished()]
        return found[0]

    def points(self) -> dict[str, list[tuple[dict, Any]]]:
        """Every metric's data points as (attributes, point), by metric name."""
        data = self.reader.get_metrics_data()
        result: dict[str, list[tuple[dict, Any]]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    result[metric.name] = [
                        (dict(p.attributes or {}), p) for p in metric.data.data_points
                    ]
        return result

    def dump(self) -> str:
        """Everything exported, as text: span names, attributes, events, links; metric points."""
        spans = [span.to_json() for span in self.finished()]
        metrics = self.reader.get_metrics_data()
        return "\n".join(spans) + (metrics.to_json() if metrics else "")


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture
def bus() -> FakeServiceBus:
    fake = FakeServiceBus(queue_name=QUEUE)
    fake.add_entity(REPLIES, sessions=True)
    return fake


def run(
    loopback: Loopback, recorded: Recorded, *messages: Any, bus: FakeServiceBus | None = None,
    actions: RecordingActions | None = None, sender: RecordingSender | None = None,
    **settings: str,
) -> RecordingActions:
    actions = actions or RecordingActions()
    options: dict[str, Any] = {"sender": sender} if sender is not None else {}
    if bus is not None:
        options |= {"replies": bus, "fan_out": bus, "REPLY_TO_ALLOWED": REPLIES}
    processor = loopback.processor(
        RecordingSleep(), telemetry=recorded.telemetry, now=lambda: NOW,
        CANCEL_QUEUE_NAME=QUEUE, **options, **settings,
    )
    process_all(processor, list(messages), actions)
    return actions


def traced(body: Any, application_properties: dict | None = None, **options: Any) -> Any:
    """A request as a tracing sender's SDK sends it (Diagnostic-Id and traceparent)."""
    options.setdefault("message_id", "req-1")
    options.setdefault("correlation_id", "booking-4711")
    return received_message(
        body,
        application_properties={
            "Diagnostic-Id": TRACEPARENT, "traceparent": TRACEPARENT,
            **(application_properties or {}),
        },
        **options,
    )


#: `cancel.target.kind` of each dead-letter case that does not name an eventId.
TARGET_KIND = {"InvalidMessage": "none", "AmbiguousEvent": "iCalUId",
               "MailboxNotFound": "iCalUId", "RangeTooLarge": "range"}


def consumer_attributes(**outcome: Any) -> dict[str, Any]:
    return {
        names.MESSAGING_SYSTEM: "servicebus",
        names.MESSAGING_OPERATION_TYPE: "process",
        names.MESSAGING_DESTINATION: QUEUE,
        names.MESSAGING_MESSAGE_ID: "req-1",
        names.MESSAGING_CONVERSATION_ID: "booking-4711",
        names.MESSAGE_ID: "req-1",
        names.CORRELATION_ID: "booking-4711",
        **outcome,
    }


def test_cancelled_continues_the_senders_trace_with_one_graph_client_span(
    loopback: Loopback, recorded: Recorded
) -> None:
    """A cancelled request is one consumer span under the sender's span, with one Graph client
    span under it named by route template, and a point of each message metric."""
    loopback.graph.state.add_event(UPN, "EV1")
    run(loopback, recorded, traced(cancel_body("EV1", comment=COMMENT)))
    consumer = recorded.one(SpanKind.CONSUMER)
    graph = recorded.one(SpanKind.CLIENT)
    assert consumer.name == f"process {QUEUE}"
    assert format(consumer.context.trace_id, "032x") == TRACE_ID
    assert format(consumer.parent.span_id, "016x") == SENDER_SPAN
    assert consumer.parent.is_remote
    attributes = dict(consumer.attributes)
    # 1 once the process keeps the count (configure_process; see test_delivery_count.py).
    assert attributes.pop(names.MESSAGING_DELIVERY_COUNT, 1) == 1
    assert attributes.pop(names.DELIVERY_COUNT, 1) == 1
    assert attributes == consumer_attributes(**{
        names.OUTCOME: "complete", names.REASON: "Cancelled", names.ATTEMPTS: 1,
        names.TARGET_KIND: "eventId", names.GRAPH_STATUS: 202,
        names.GRAPH_REQUEST_ID: dict(graph.attributes)[names.GRAPH_REQUEST_ID],
        names.MAILBOX_HASH: mailbox_hash(KEY, UPN),
    })
    assert consumer.status.status_code is StatusCode.UNSET
    assert graph.name == "POST /users/{id}/events/{id}/cancel"
    assert graph.parent.span_id == consumer.context.span_id
    assert dict(graph.attributes) == {
        names.HTTP_METHOD: "POST", names.URL_TEMPLATE: names.ROUTE_CANCEL,
        names.SERVER_ADDRESS: "127.0.0.1", names.ATTEMPT: 1, names.HTTP_STATUS: 202,
        names.GRAPH_ROUTE: names.ROUTE_CANCEL,
        names.GRAPH_REQUEST_ID: dict(graph.attributes)[names.GRAPH_REQUEST_ID],
        names.MAILBOX_HASH: mailbox_hash(KEY, UPN),
    }
    points = recorded.points()
    [(attributes, point)] = points[names.METRIC_PROCESS_DURATION]
    assert (attributes, point.count) == (
        {names.MESSAGING_DESTINATION: QUEUE, names.OUTCOME: "complete", names.REASON: "Cancelled"},
        1,
    )
    [(attributes, point)] = points[names.METRIC_GRAPH_DURATION]
    assert attributes == {
        names.HTTP_METHOD: "POST", names.URL_TEMPLATE: names.ROUTE_CANCEL,
        names.SERVER_ADDRESS: "127.0.0.1", names.HTTP_STATUS: 202,
    }
    assert point.count == 1
    assert names.METRIC_GRAPH_THROTTLES not in points
    assert names.METRIC_RETRY_BUDGET not in points  # nothing waited for a retry


#: Reasons whose case needs settings (and a delayed-retry sender) of its own.
CASE_SETTINGS: dict[str, dict[str, str]] = {
    "RangeTooLarge": {"RANGE_MAX_EVENTS": "1"},
    "DeliveriesExhausted": {"MAX_DELIVERY_COUNT": "1", "CANCEL_RETRY_BUDGET_SECONDS": "0"},
    "RetriesExhausted": {"DELAYED_RETRY_MAX_COUNT": "3", "CANCEL_RETRY_BUDGET_SECONDS": "0"},
}


def dead_letter_cases(loopback: Loopback) -> dict[str, tuple[Any, int | None]]:
    """A request for each dead-letter reason, and the Graph status that leads there."""
    configure_process()  # the delivery count is read as the function reads it
    state = loopback.graph.state
    soon = NOW + timedelta(days=3)
    state.add_event(UPN, "ATTENDEE", organizer=False)
    for event_id, fault in (
        ("LOCKED", Fault(403, {"request-id": "rid-403"})),
        ("MALFORMED", Fault(400, body=GRAPH_ERROR_400)),
        ("CONFLICT", Fault(412)),
        ("BUSY", Fault(503)),
        ("BUSY-COPY", Fault(503)),
    ):
        state.add_event(UPN, event_id)
        state.script(UPN, event_id, fault)
    for event_id in ("IMM-D1", "IMM-D2"):
        state.add_meeting(UPN, Meeting(event_id, soon, soon + timedelta(hours=1), ical_uid="UID-D"))
    state.missing_mailboxes.add("gone@contoso.com")
    leave(loopback)
    range_body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END,
                  "comment": COMMENT}
    markers = {"cancelHandlerRetryCount": 3, "originalMessageId": "req-1"}
    return {
        "InvalidMessage": (traced({"userPrincipalName": UPN, "comment": COMMENT}), None),
        "NotOrganizer": (traced(cancel_body("ATTENDEE", comment=COMMENT)), 400),
        "EventNotFound": (traced(cancel_body("GONE", comment=COMMENT)), 404),
        "GraphForbidden": (traced(cancel_body("LOCKED", comment=COMMENT)), 403),
        "GraphBadRequest": (traced(cancel_body("MALFORMED", comment=COMMENT)), 400),
        "GraphRejected": (traced(cancel_body("CONFLICT", comment=COMMENT)), 412),
        "AmbiguousEvent": (traced({"userPrincipalName": UPN, "iCalUId": "UID-D"}), 200),
        "MailboxNotFound": (
            traced({"userPrincipalName": "gone@contoso.com", "iCalUId": "UID-1"}), 404),
        "RangeTooLarge": (traced(range_body), 200),
        "DeliveriesExhausted": (traced(cancel_body("BUSY", comment=COMMENT)), 503),
        "RetriesExhausted": (
            traced(cancel_body("BUSY-COPY", comment=COMMENT), message_id="copy-3",
                   application_properties=sealed("copy-3", markers)), 503),
    }


@pytest.mark.parametrize("reason", sorted(DEADLETTER_REASONS))
def test_each_dead_letter_is_a_span_naming_its_reason(
    loopback: Loopback, recorded: Recorded, reason: str
) -> None:
    """A dead-lettered request's consumer span names the outcome, its reason and the Graph
    status that led there; its status stays unset (a decided outcome, not a failed run, so the
    failed-runs alert does not double the dead-letter alert); the message metric counts it
    under that reason."""
    message, status = dead_letter_cases(loopback)[reason]
    actions = run(
        loopback, recorded, message, sender=RecordingSender(), **CASE_SETTINGS.get(reason, {})
    )
    assert (actions.only.action, actions.only.reason) == ("deadletter", reason)
    consumer = recorded.one(SpanKind.CONSUMER)
    attributes = dict(consumer.attributes)
    assert consumer.status.status_code is StatusCode.UNSET
    assert names.ERROR_TYPE not in attributes
    assert (attributes[names.OUTCOME], attributes[names.REASON]) == ("deadletter", reason)
    assert attributes.get(names.GRAPH_STATUS) == status
    assert attributes[names.TARGET_KIND] == TARGET_KIND.get(reason, "eventId")
    clients = [s for s in recorded.finished() if s.kind is SpanKind.CLIENT]
    assert [dict(s.attributes).get(names.HTTP_STATUS) for s in clients] == (
        [] if status is None else [status]
    )
    [(metric, point)] = recorded.points()[names.METRIC_PROCESS_DURATION]
    assert (metric[names.OUTCOME], metric[names.REASON], point.count) == (
        "deadletter", reason, 1)


def test_give_back_keeps_every_attempt_as_a_client_span_and_counts_throttles(
    loopback: Loopback, recorded: Recorded
) -> None:
    """Throttled beyond the budget: the message is given back (status unset, it is not a
    failure yet); each Graph attempt is a client span numbered in order, ERROR with its status;
    each 429 is a throttle point."""
    loopback.graph.state.add_event(UPN, "EV1")
    loopback.graph.state.script(
        UPN, "EV1", Fault(429, {"Retry-After": "1"}), Fault(429, {"Retry-After": "1"})
    )
    actions = run(loopback, recorded, traced(cancel_body("EV1")),
                  CANCEL_RETRY_BUDGET_SECONDS="1")
    assert actions.only.action == "abandon"
    consumer = recorded.one(SpanKind.CONSUMER)
    assert consumer.status.status_code is StatusCode.UNSET
    attributes = dict(consumer.attributes)
    assert (attributes[names.OUTCOME], attributes[names.REASON], attributes[names.ATTEMPTS]) == (
        "abandon", "TransientFailure", 2)
    clients = sorted(
        (s for s in recorded.finished() if s.kind is SpanKind.CLIENT),
        key=lambda s: dict(s.attributes)[names.ATTEMPT],
    )
    assert [(dict(s.attributes)[names.ATTEMPT], dict(s.attributes)[names.HTTP_STATUS],
             s.status.status_code) for s in clients] == [
        (1, 429, StatusCode.ERROR), (2, 429, StatusCode.ERROR)]
    points = recorded.points()
    [(metric, point)] = points[names.METRIC_GRAPH_THROTTLES]
    assert (metric, point.value) == (
        {names.URL_TEMPLATE: names.ROUTE_CANCEL, names.HTTP_STATUS: 429}, 2)
    [(_, budget)] = points[names.METRIC_RETRY_BUDGET]
    assert (budget.count, budget.sum) == (1, 1.0)


def test_fan_out_children_continue_the_trace_through_the_producer_span(
    loopback: Loopback, recorded: Recorded, bus: FakeServiceBus
) -> None:
    """A date range's children are sent in a producer span under the request's consumer span;
    each child carries that span's context, so its own consumer span continues the same trace
    under it and names its parent request; the fan-out size is one point."""
    leave(loopback)
    body = {"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END,
            "comment": COMMENT}
    run(loopback, recorded, traced(body, message_id="req-1"), bus=bus)
    parent = recorded.one(SpanKind.CONSUMER)
    producer = recorded.one(SpanKind.PRODUCER, f"send {QUEUE}")
    assert producer.parent.span_id == parent.context.span_id
    assert dict(producer.attributes) == {
        names.MESSAGING_SYSTEM: "servicebus", names.MESSAGING_OPERATION_TYPE: "send",
        names.MESSAGING_OPERATION_NAME: "send", names.MESSAGING_DESTINATION: QUEUE,
        names.MESSAGING_BATCH_COUNT: 2, names.REASON: "FannedOut"}
    assert dict(parent.attributes)[names.FANOUT_SIZE] == 2
    assert dict(parent.attributes)[names.TARGET_KIND] == "range"
    children = bus.sent
    expected = f"00-{TRACE_ID}-{format(producer.context.span_id, '016x')}-01"
    assert [c.application_properties["traceparent"] for c in children] == [expected, expected]
    [(_, size)] = recorded.points()[names.METRIC_FANOUT_SIZE]
    assert (size.count, size.sum) == (1, 2)

    recorded.spans.clear()
    run(loopback, recorded, as_delivered(children[0]), bus=bus)
    child = recorded.one(SpanKind.CONSUMER)
    assert format(child.context.trace_id, "032x") == TRACE_ID
    assert child.parent.span_id == producer.context.span_id
    assert dict(child.attributes)[names.PARENT_MESSAGE_ID] == "req-1"
    assert dict(child.attributes)[names.REASON] == "Cancelled"


def test_reply_is_a_producer_span_whose_context_the_reply_carries(
    loopback: Loopback, recorded: Recorded, bus: FakeServiceBus
) -> None:
    """The reply is sent in a producer span under the consumer span, and carries its context."""
    loopback.graph.state.add_event(UPN, "EV1")
    run(loopback, recorded, traced(cancel_body("EV1"), reply_to=REPLIES,
                                   reply_to_session_id="s-1"), bus=bus)
    consumer = recorded.one(SpanKind.CONSUMER)
    producer = recorded.one(SpanKind.PRODUCER, f"send {REPLIES}")
    assert producer.parent.span_id == consumer.context.span_id
    [reply] = bus.entities[REPLIES].messages
    properties = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in reply.application_properties.items()
    }
    span_id = format(producer.context.span_id, "016x")
    assert properties["traceparent"] == f"00-{TRACE_ID}-{span_id}-01"
    assert properties["Diagnostic-Id"] == properties["traceparent"]
    assert (properties["outcome"], properties["reason"]) == ("cancelled", "Cancelled")


def test_failed_settlement_records_the_error_type_only(
    loopback: Loopback, recorded: Recorded
) -> None:
    """A settlement the host refuses: the span is ERROR with `error.type` and an exception event
    holding the type alone (an exception's text may hold a URL, so a UPN)."""
    loopback.graph.state.add_event(UPN, "EV1")
    with pytest.raises(Exception, match="complete"):
        run(loopback, recorded, traced(cancel_body("EV1")),
            actions=RecordingActions(fail_on={"complete"}))
    consumer = recorded.one(SpanKind.CONSUMER)
    attributes = dict(consumer.attributes)
    assert consumer.status.status_code is StatusCode.ERROR
    assert (attributes[names.ERROR_TYPE], attributes[names.OUTCOME]) == (
        "SettlementError", "settlement_failed")
    [event] = consumer.events
    assert (event.name, dict(event.attributes)) == (
        "exception", {names.EXCEPTION_TYPE: "SettlementError"})
    [(metric, _)] = recorded.points()[names.METRIC_PROCESS_DURATION]
    assert metric[names.OUTCOME] == "settlement_failed"


def test_a_request_without_trace_context_starts_its_own_trace(
    loopback: Loopback, recorded: Recorded
) -> None:
    """No traceparent (a sender without tracing): the consumer span is a root."""
    loopback.graph.state.add_event(UPN, "EV1")
    run(loopback, recorded, received_message(cancel_body("EV1"), message_id="req-1"))
    assert recorded.one(SpanKind.CONSUMER).parent is None


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING])
def test_no_personal_data_in_any_span_or_metric(
    loopback: Loopback, recorded: Recorded, bus: FakeServiceBus, level: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every end state at once, with the fixtures' UPNs and comment texts: nothing exported
    (span names, attributes, events, links; metric points) holds a UPN, a comment or a token,
    at every log level."""
    caplog.set_level(level)
    upns = [UPN, "alex.wilber@contoso.com"]
    for event_id in ("EV1", "ATTENDEE"):
        loopback.graph.state.add_event(UPN, event_id, organizer=event_id == "EV1")
    loopback.graph.state.add_meeting(upns[1], Meeting("LEAVE1", NOW.replace(day=11), NOW.replace(
        day=11, hour=13)))
    messages = [
        traced(cancel_body("EV1", comment=COMMENT), reply_to=REPLIES, reply_to_session_id="s-1"),
        traced(cancel_body("ATTENDEE", comment=COMMENT)),
        traced(cancel_body("GONE", upn=upns[1], comment=COMMENT)),
        traced({"userPrincipalName": upns[1], "comment": COMMENT}),
        traced({"userPrincipalName": upns[1], "startDateTime": START, "endDateTime": END,
                "comment": COMMENT}, message_id="req-range"),
        traced({"userPrincipalName": UPN, "iCalUId": "uid-1", "comment": COMMENT}),
    ]
    run(loopback, recorded, *messages, bus=bus)
    assert len(recorded.finished()) >= len(messages)
    exported = recorded.dump().lower()
    tokens = [token.lower() for token in loopback.authority._issued]
    assert tokens
    for secret in [*upns, "adele.vance", "alex.wilber", "contoso.com", COMMENT.lower(),
                   "private note", "bearer", *tokens]:
        assert secret.lower() not in exported, secret
    assert "/users/" not in exported.replace("/users/{id}", "")


def test_send_api_opens_the_producer_span_the_function_continues(
    loopback: Loopback, recorded: Recorded
) -> None:
    """`send_cancel_requests` sends inside a `send <queue>` producer span whose context the
    request carries; the function's consumer span for it is that span's child."""
    from cancel_handler.ops.requests import prepare_request
    from cancel_handler.ops.send import send_cancel_requests

    bus = FakeServiceBus(queue_name=QUEUE)
    outgoing = prepare_request(UPN, "EV1", COMMENT, message_id="req-1")
    summary = send_cancel_requests(
        bus, QUEUE, [outgoing], tracer_provider=recorded.tracer_provider
    )
    assert summary.error is None
    producer = recorded.one(SpanKind.PRODUCER)
    assert producer.name == f"send {QUEUE}"
    assert dict(producer.attributes) == {
        names.MESSAGING_SYSTEM: "servicebus", names.MESSAGING_OPERATION_TYPE: "send",
        names.MESSAGING_OPERATION_NAME: "send", names.MESSAGING_DESTINATION: QUEUE,
        names.MESSAGING_BATCH_COUNT: 1, names.MESSAGING_MESSAGE_ID: "req-1"}
    [sent] = bus.sent
    assert sent.application_properties["traceparent"].rsplit("-", 1)[0] == (
        f"00-{format(producer.context.trace_id, '032x')}-"
        f"{format(producer.context.span_id, '016x')}"
    )
    loopback.graph.state.add_event(UPN, "EV1")
    run(loopback, recorded, as_delivered(sent))
    consumer = recorded.one(SpanKind.CONSUMER)
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent.span_id == producer.context.span_id
    assert COMMENT.lower() not in recorded.dump().lower()


def test_send_api_without_a_tracing_sender_adds_no_properties() -> None:
    """A sender without an OpenTelemetry SDK: the span is a no-op and the request carries no
    trace properties (exactly what was sent before)."""
    from opentelemetry.trace import NoOpTracerProvider

    from cancel_handler.ops.requests import prepare_request
    from cancel_handler.ops.send import send_cancel_requests

    bus = FakeServiceBus(queue_name=QUEUE)
    send_cancel_requests(
        bus, QUEUE, [prepare_request(UPN, "EV1", message_id="req-1")],
        tracer_provider=NoOpTracerProvider(),
    )
    [sent] = bus.sent
    assert not sent.application_properties


def test_each_mailbox_keeps_its_own_pseudonym_asked_in_any_order(recorded: Recorded) -> None:
    """The telemetry remembers recent mailboxes' hashes; another mailbox never gets one, and a
    mailbox asked again after thousands of others still gets its own."""
    other = "alex.wilber@contoso.com"
    asked = [UPN, UPN, other, UPN, other, other]
    assert [recorded.telemetry.mailbox(user) for user in asked] == [
        mailbox_hash(KEY, user) for user in asked]
    assert mailbox_hash(KEY, UPN) != mailbox_hash(KEY, other)
    many = [f"user{i}@contoso.com" for i in range(5000)]
    assert len({recorded.telemetry.mailbox(user) for user in many}) == 5000
    assert recorded.telemetry.mailbox(UPN) == mailbox_hash(KEY, UPN)
    # At most 4,096 remembered (docs/operate.md, "Cost"): memory does not grow with mailboxes.
    assert recorded.telemetry.mailbox.cache_info().currsize == 4096


def test_each_metric_has_the_kind_and_unit_operate_md_documents(recorded: Recorded) -> None:
    """docs/operate.md's metrics table is what operators read: each instrument's kind and unit
    are the ones it names, and the duration buckets start with the semantic conventions'
    advice for HTTP durations (0.005 s to 10 s), extended to the longest a message may take."""
    import re as regex
    from pathlib import Path

    table = (Path(__file__).resolve().parent.parent / "docs" / "operate.md").read_text()
    documented = {
        name: (kind, unit)
        for name, kind, unit in regex.findall(
            r"^\| `([\w.]+)`[^|]*\| (histogram|counter), `([^`]+)`", table, regex.MULTILINE
        )
    }
    telemetry = recorded.telemetry
    telemetry.process_duration.record(0.3, {})
    telemetry.graph_duration.record(0.3, {})
    telemetry.graph_throttles.add(1, {})
    telemetry.retry_budget.record(0.5, {})
    telemetry.fanout_size.record(3, {})
    [resource] = recorded.reader.get_metrics_data().resource_metrics
    [scope] = resource.scope_metrics
    exported = {
        metric.name: (
            "histogram" if hasattr(metric.data.data_points[0], "explicit_bounds") else "counter",
            metric.unit,
        )
        for metric in scope.metrics
    }
    assert exported == documented
    advised = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
    for metric in scope.metrics:
        if metric.unit == "s":
            bounds = tuple(metric.data.data_points[0].explicit_bounds)
            assert bounds[: len(advised)] == advised and bounds[-1] == 300, metric.name
