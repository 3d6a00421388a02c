"""The pipeline with telemetry: the same stages, each wrapped once.

- the whole message is one consumer span, `process {queue}`, continuing the sender's trace
  (`traceparent` / `Diagnostic-Id`) and linked to the invocation's own context (the Functions
  host's) when that is another trace;
- each Graph call inside it is a client span (:mod:`cancel_handler.telemetry.graph`);
- fan-out, delayed retry and reply sends are producer spans, and the messages they send carry
  their context on, so a child request's and a reply's consumers continue the trace;
- the settlement sets the outcome's attributes and records the message's metric points; the
  span's status is ERROR only when the run itself failed (settlement refused, shutdown).

Values are ids, counts, codes and the mailbox's keyed hash: never a UPN, a comment, a token or
a URL (docs/operate.md, "Telemetry").
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from cancel_handler.core.decision import Action, Reason
from cancel_handler.core.errors import SettlementError
from cancel_handler.core.outcome import FanOutPlan, Outcome
from cancel_handler.pipeline import Pipeline
from cancel_handler.telemetry import names
from cancel_handler.telemetry.graph import graph_calls
from cancel_handler.telemetry.propagation import carry_trace_context, sender_context
from cancel_handler.telemetry.spans import open_span, producer_attributes

if TYPE_CHECKING:
    from cancel_handler.servicebus.delivery import Delivery
    from cancel_handler.servicebus.settle import MessageActions
    from cancel_handler.telemetry.instruments import Telemetry

#: The outcome attributes of the message being processed (its metric points' attributes).
_settled: ContextVar[dict[str, Any] | None] = ContextVar("settled", default=None)


class TracedPipeline(Pipeline):
    """A :class:`Pipeline` that reports each message as spans and metric points."""

    def __init__(
        self,
        *args: Any,
        telemetry: Telemetry,
        queue: str,
        retry_budget_seconds: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.telemetry = telemetry
        self.queue = queue
        self.retry_budget_seconds = retry_budget_seconds
        carry_trace_context()

    async def run(self, message: Any, actions: MessageActions, delivery: Delivery) -> Outcome:
        """The consumer span around every stage after reading the message."""
        invocation = trace.get_current_span().get_span_context()
        parent = sender_context(delivery.properties)
        links = (
            [Link(invocation)]
            if parent is not None
            and invocation.is_valid
            and invocation.trace_id != trace.get_current_span(parent).get_span_context().trace_id
            else None
        )
        token = graph_calls.set([0])
        outcome_attributes: dict[str, Any] = {}
        settled = _settled.set(outcome_attributes)
        started = time.perf_counter()
        try:
            with open_span(
                self.telemetry.tracer,
                f"process {self.queue}",
                SpanKind.CONSUMER,
                self._delivery_attributes(delivery),
                context=parent,
                links=links,
            ) as span:
                try:
                    return await super().run(message, actions, delivery)
                except BaseException as exc:
                    _record_error(span, exc)
                    if isinstance(exc, SettlementError):
                        outcome_attributes[names.OUTCOME] = "settlement_failed"
                    elif not outcome_attributes:
                        outcome_attributes[names.OUTCOME] = Action.ABANDON.value
                        outcome_attributes[names.REASON] = Reason.TRANSIENT_FAILURE.value
                    span.set_attribute(names.OUTCOME, outcome_attributes[names.OUTCOME])
                    raise
        finally:
            graph_calls.reset(token)
            _settled.reset(settled)
            # One point a message: its count is the messages by outcome and reason, as the
            # conventions count requests by their duration histogram's count.
            metric = {names.MESSAGING_DESTINATION: self.queue, **outcome_attributes}
            self.telemetry.process_duration.record(time.perf_counter() - started, metric)

    async def settle(
        self, message: Any, actions: MessageActions, delivery: Delivery, outcome: Outcome
    ) -> None:
        """Set the outcome on the consumer span and record its points, then settle."""
        span = trace.get_current_span()
        settlement = outcome.settlement
        attributes = _outcome_attributes(outcome)
        if outcome.request is not None:
            attributes[names.MAILBOX_HASH] = self.telemetry.mailbox(
                outcome.request.user_principal_name
            )
        # A dead-letter is a decided outcome (cancel.outcome), not a failed run: the span's
        # status stays unset, so Application Insights' failed requests (and the "failed runs"
        # alert) count only what went wrong in the function itself.
        span.set_attributes(attributes)
        slot = _settled.get()
        if slot is not None:
            slot.update(
                {names.OUTCOME: settlement.action.value, names.REASON: settlement.reason.value}
            )
        if self.retry_budget_seconds > 0 and outcome.waited_seconds > 0:
            self.telemetry.retry_budget.record(
                min(outcome.waited_seconds / self.retry_budget_seconds, 1.0),
                {names.MESSAGING_DESTINATION: self.queue},
            )
        report = outcome.range_report
        if report is not None and settlement.reason is Reason.FANNED_OUT:
            self.telemetry.fanout_size.record(
                len(report.child_message_ids), {names.MESSAGING_DESTINATION: self.queue}
            )
        await super().settle(message, actions, delivery, outcome)

    async def send_children(self, delivery: Delivery, decided: Outcome | FanOutPlan) -> Outcome:
        """A producer span around sending a date range's child requests."""
        if not isinstance(decided, FanOutPlan):
            return await super().send_children(delivery, decided)
        report = decided.outcome.range_report
        count = len(report.selection.selected) if report is not None else 0
        with self._producer(self.queue, "send", count) as span:
            outcome = await super().send_children(delivery, decided)
            span.set_attribute(names.REASON, outcome.settlement.reason.value)
            if outcome.settlement.action is Action.ABANDON:
                span.set_status(Status(StatusCode.ERROR))
            return outcome

    async def delay_retry(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """A producer span around scheduling a delayed-retry copy."""
        if self.delayed_retries is None or outcome.settlement.action is not Action.ABANDON:
            return await super().delay_retry(delivery, outcome)
        with self._producer(self.queue, "schedule", 1) as span:
            result = await super().delay_retry(delivery, outcome)
            span.set_attribute(names.REASON, result.settlement.reason.value)
            return result

    async def reply(self, delivery: Delivery, outcome: Outcome) -> Outcome:
        """A producer span around the reply, when the request asked for one it may get."""
        if not delivery.reply_to or delivery.reply_to not in self.replies.allowed:
            return await super().reply(delivery, outcome)
        with self._producer(delivery.reply_to, "send", None) as span:
            result = await super().reply(delivery, outcome)
            if result.settlement.action is Action.ABANDON and outcome.settlement.action is not (
                Action.ABANDON
            ):
                span.set_status(Status(StatusCode.ERROR))
            return result

    def _producer(self, destination: str, operation: str, count: int | None) -> Any:
        return open_span(
            self.telemetry.tracer,
            f"{operation} {destination}",
            SpanKind.PRODUCER,
            producer_attributes(destination, operation, count),
        )

    def _delivery_attributes(self, delivery: Delivery) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            names.MESSAGING_SYSTEM: names.MESSAGING_SYSTEM_SERVICEBUS,
            names.MESSAGING_OPERATION_TYPE: "process",
            names.MESSAGING_DESTINATION: self.queue,
        }
        if delivery.message_id:
            attributes[names.MESSAGING_MESSAGE_ID] = delivery.message_id
            attributes[names.MESSAGE_ID] = delivery.message_id
        if delivery.correlation_id:
            attributes[names.MESSAGING_CONVERSATION_ID] = delivery.correlation_id
            attributes[names.CORRELATION_ID] = delivery.correlation_id
        if delivery.delivery_count is not None:
            attributes[names.MESSAGING_DELIVERY_COUNT] = delivery.delivery_count
            attributes[names.DELIVERY_COUNT] = delivery.delivery_count
        if delivery.markers.parent_id:
            attributes[names.PARENT_MESSAGE_ID] = delivery.markers.parent_id
        if delivery.markers.original_id:
            attributes[names.REQUEST_MESSAGE_ID] = delivery.markers.original_id
        return attributes


def _outcome_attributes(outcome: Outcome) -> dict[str, Any]:
    settlement = outcome.settlement
    request = outcome.request
    attributes: dict[str, Any] = {
        names.OUTCOME: settlement.action.value,
        names.REASON: settlement.reason.value,
        names.ATTEMPTS: outcome.attempts,
        names.TARGET_KIND: (
            names.TARGET_KINDS[request.target] if request is not None else names.TARGET_NONE
        ),
    }
    if outcome.graph_status is not None:
        attributes[names.GRAPH_STATUS] = outcome.graph_status
    if outcome.request_id:
        attributes[names.GRAPH_REQUEST_ID] = outcome.request_id
    report = outcome.range_report
    if report is not None:
        attributes[names.FANOUT_SIZE] = len(report.child_message_ids)
    return attributes


def _record_error(span: Any, exc: BaseException) -> None:
    """The exception's type on the span, never its text (it may hold a URL and so a UPN)."""
    error = "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
    span.set_attribute(names.ERROR_TYPE, error)
    span.add_event("exception", {names.EXCEPTION_TYPE: type(exc).__name__})
    span.set_status(Status(StatusCode.ERROR))
