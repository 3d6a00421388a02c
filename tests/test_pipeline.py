"""The pipeline's stages, driven with a Delivery value directly (no host bytes, no SDK message):
their order and what each does with the outcome before it."""

from __future__ import annotations

import asyncio
from typing import Any

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.outcome import Outcome
from cancel_handler.pipeline import Pipeline
from cancel_handler.servicebus.delivery import Delivery
from cancel_handler.servicebus.fanout import FanOut
from cancel_handler.servicebus.replies import Replies
from cancel_handler.servicebus.senders import SenderPool

REPLIES = "cancel-replies"
GIVE_BACK = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph answered 503"))
CANCELLED = Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED), attempts=1, graph_status=202)


class ScriptedHandler:
    """Stands in for the cancel handler: answers every body with `outcome`, records the calls."""

    def __init__(self, outcome: Outcome | BaseException) -> None:
        self.outcome = outcome
        self.calls: list[tuple[bytes, int | None, bool]] = []

    async def handle(
        self, body: bytes, *, delivery_count: int | None, may_be_cancelled_already: bool
    ) -> Outcome:
        self.calls.append((body, delivery_count, may_be_cancelled_already))
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class ReplyQueue:
    """A reply entity's sender that keeps what it was sent, or refuses `refusals` sends."""

    def __init__(self, refusals: int = 0) -> None:
        self.sent: list[Any] = []
        self.refusals = refusals

    def send_messages(self, message: Any) -> None:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("refused")
        self.sent.append(message)


def pipeline(handler: ScriptedHandler, queue: ReplyQueue, max_delivery_count: int = 0) -> Pipeline:
    return Pipeline(
        handler,  # type: ignore[arg-type]
        fan_out=FanOut(None, "cancel-requests"),
        delayed_retries=None,
        replies=Replies((REPLIES,), "cancel-requests", SenderPool(lambda entity: queue)),
        max_delivery_count=max_delivery_count,
    )


def delivery(count: int | None = 1, **options: Any) -> Delivery:
    return Delivery(
        b'{"userPrincipalName": "x"}',
        message_id="m-1",
        reply_to=REPLIES,
        delivery_count=count,
        **options,
    )


def test_a_body_that_is_not_amqp_data_is_refused_before_the_handler() -> None:
    """No body: InvalidMessage with the reason read at the edge; the handler is never asked."""
    handler, queue = ScriptedHandler(CANCELLED), ReplyQueue()
    unreadable = Delivery(None, message_id="m-2", body_problem="message body must be AMQP data")
    outcome = asyncio.run(pipeline(handler, queue).decide(unreadable))
    assert outcome.settlement == Settlement(
        Action.DEADLETTER, Reason.INVALID_MESSAGE, "message body must be AMQP data"
    )
    assert handler.calls == []


def test_the_handler_gets_the_body_and_delivery_count_read_once() -> None:
    handler, queue = ScriptedHandler(CANCELLED), ReplyQueue()
    outcome = asyncio.run(pipeline(handler, queue).decide(delivery(count=3)))
    assert handler.calls == [(b'{"userPrincipalName": "x"}', 3, False)]
    assert outcome is CANCELLED
    assert [m.subject for m in queue.sent] == ["cancelled"]


def test_last_delivery_comes_before_the_reply() -> None:
    """A give-back on the queue's last delivery is dead-lettered first, so the sender is
    answered `deadLettered` DeliveriesExhausted, not left waiting."""
    handler, queue = ScriptedHandler(GIVE_BACK), ReplyQueue()
    outcome = asyncio.run(pipeline(handler, queue, max_delivery_count=3).decide(delivery(3)))
    assert outcome.settlement.reason is Reason.DELIVERIES_EXHAUSTED
    [reply] = queue.sent
    assert (reply.subject, reply.application_properties["reason"]) == (
        "deadLettered",
        "DeliveriesExhausted",
    )


def test_a_give_back_before_the_last_delivery_is_not_answered() -> None:
    handler, queue = ScriptedHandler(GIVE_BACK), ReplyQueue()
    outcome = asyncio.run(pipeline(handler, queue, max_delivery_count=3).decide(delivery(2)))
    assert outcome is GIVE_BACK
    assert queue.sent == []


def test_a_defect_in_the_handler_is_a_give_back_and_still_meets_the_last_delivery_rule() -> None:
    """An exception in a stage gives the message back (never unsettled); on the last delivery
    that too ends as DeliveriesExhausted naming the error type."""
    handler, queue = ScriptedHandler(KeyError("x")), ReplyQueue()
    early = asyncio.run(pipeline(handler, queue, max_delivery_count=3).decide(delivery(1)))
    assert early.settlement == Settlement(
        Action.ABANDON, Reason.TRANSIENT_FAILURE, "unexpected error: KeyError"
    )
    last = asyncio.run(pipeline(handler, queue, max_delivery_count=3).decide(delivery(3)))
    assert last.settlement.reason is Reason.DELIVERIES_EXHAUSTED
    assert last.settlement.description.endswith("last error: unexpected error: KeyError")


def test_a_defect_is_logged_by_type_and_stack_frames_only(caplog) -> None:
    """One ERROR line: the exception's type and the message id, then its stack frames as the
    traceback module prints them (never the exception's text, which may hold a UPN)."""
    handler, queue = ScriptedHandler(KeyError("adele.vance@contoso.com")), ReplyQueue()
    with caplog.at_level("ERROR", logger="cancel_handler"):
        asyncio.run(pipeline(handler, queue).decide(delivery()))
    [record] = [r for r in caplog.records if r.name == "cancel_handler"]
    first, *frames = record.getMessage().split("\n")
    assert first == "unexpected KeyError while processing message m-1; giving it back"
    assert frames and frames[0].startswith('  File "')
    assert all(line.startswith("  ") for line in frames)
    assert "adele.vance" not in record.getMessage()


def test_a_delivery_without_a_body_or_a_reason_is_invalid_as_no_body() -> None:
    handler, queue = ScriptedHandler(CANCELLED), ReplyQueue()
    outcome = asyncio.run(pipeline(handler, queue).decide(Delivery(None, message_id="m-3")))
    assert outcome.settlement == Settlement(Action.DEADLETTER, Reason.INVALID_MESSAGE, "no body")


def test_markers_set_not_as_our_tools_set_them_are_named_in_one_warning(caplog) -> None:
    from cancel_handler.servicebus.messages import CopyMarkers

    handler, queue = ScriptedHandler(CANCELLED), ReplyQueue()
    forged = delivery(markers=CopyMarkers(ignored=("originalMessageId", "parentMessageId")))
    with caplog.at_level("WARNING", logger="cancel_handler"):
        asyncio.run(pipeline(handler, queue).decide(forged))
    assert [r.getMessage() for r in caplog.records if r.name == "cancel_handler"] == [
        "message m-1 carries originalMessageId, parentMessageId, reserved for the copies "
        "cancel-handler's tools make, but not as they set them; ignored (see docs/integrate.md)"
    ]
    assert handler.calls[0][2] is False  # and they change nothing


def test_a_cancelled_invocation_gives_the_message_back_then_stops() -> None:
    """The host cancelling the invocation (shutdown): the message is given back through the
    settlement call, saying why, and the cancellation goes on."""
    from tests.helpers import RecordingActions, received_message

    handler, queue = ScriptedHandler(asyncio.CancelledError()), ReplyQueue()
    message, actions = received_message(b"{}"), RecordingActions()
    try:
        asyncio.run(pipeline(handler, queue).process(message, actions))
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    assert actions.only.message is message
    assert actions.only.action == "abandon"
    assert handler.calls
