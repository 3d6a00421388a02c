"""The function's Service Bus senders: one per entity, asked for the right entity, and one
entity's sender never waits for another's."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.outcome import FanOutPlan, Outcome, RangeReport
from cancel_handler.core.selection import CalendarEvent, RangeSelection
from cancel_handler.servicebus.delayed_retry import DelayedRetries
from cancel_handler.servicebus.delivery import Delivery
from cancel_handler.servicebus.fanout import FanOut
from cancel_handler.servicebus.senders import SenderPool
from tests.helpers import RecordingSender

QUEUE = "meeting-cancellations"
GIVE_BACK = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph answered 503"))
START = datetime(2030, 1, 7, 9, tzinfo=UTC)


class Batch:
    """Just enough of the SDK's ServiceBusMessageBatch for one small child."""

    def __init__(self) -> None:
        self.messages: list = []

    def add_message(self, message: object) -> None:
        self.messages.append(message)


class Sender(RecordingSender):
    def create_message_batch(self) -> Batch:
        return Batch()

    def send_messages(self, batch: Batch) -> None:
        self.batches = [*getattr(self, "batches", []), batch]


def recording_pool() -> tuple[SenderPool, list[str], Sender]:
    """A pool that makes one shared sender and records the entities it was asked for."""
    asked: list[str] = []
    sender = Sender()

    def make(entity: str) -> Sender:
        asked.append(entity)
        return sender

    return SenderPool(make), asked, sender


def test_delayed_retries_schedule_on_the_cancel_queue() -> None:
    pool, asked, sender = recording_pool()
    retries = DelayedRetries(3, pool, QUEUE)
    asyncio.run(retries.apply(Delivery(b"{}", message_id="m-1"), GIVE_BACK))
    assert asked == [QUEUE]
    assert len(sender.scheduled) == 1


def test_fan_out_sends_the_children_to_the_cancel_queue() -> None:
    pool, asked, sender = recording_pool()
    event = CalendarEvent("AAMk1=", True, False, "singleInstance", START, 1, START)
    report = RangeReport(RangeSelection((event,), {}, 1), list_calls=1)
    planned = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE), range_report=report)
    plan = FanOutPlan(CancelRequest("leaver@contoso.com", event_id=None), planned)
    outcome = asyncio.run(FanOut(pool, QUEUE).send(Delivery(b"{}", message_id="p-1"), plan))
    assert outcome.settlement.reason is Reason.FANNED_OUT
    assert asked == [QUEUE]
    [batch] = sender.batches
    assert [child.message_id for child in batch.messages] == list(
        outcome.range_report.child_message_ids
    )


def test_one_entitys_sender_does_not_wait_for_anothers() -> None:
    """While a send to one entity is in progress, a send to another entity goes ahead: each
    entity has a lock of its own (a shared one would leave the first waiting for ever)."""
    pool = SenderPool(lambda entity: entity)
    second_ran = threading.Event()

    def first(sender: str) -> bool:
        return second_ran.wait(timeout=10)

    def second(sender: str) -> None:
        second_ran.set()

    async def both() -> list:
        return await asyncio.gather(pool.use("replies-a", first), pool.use("replies-b", second))

    assert asyncio.run(both())[0] is True


def test_a_sender_is_made_once_per_entity() -> None:
    made: list[str] = []
    pool = SenderPool(lambda entity: made.append(entity) or entity)

    async def uses() -> list[str]:
        return [await pool.use(name, lambda sender: sender) for name in ("a", "b", "a", "a")]

    assert asyncio.run(uses()) == ["a", "b", "a", "a"]
    assert made == ["a", "b"]
