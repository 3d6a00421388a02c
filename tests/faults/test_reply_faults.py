"""Seeded fault run for replies: requests that ask for a reply, delivered like Service Bus does
(abandon or a failed invocation → redelivery, delivery_count + 1, the broker dead-letters after
MAX_DELIVERY_COUNT), with transient Graph faults, refused settlements and refused reply sends.
Every request the function settled for good has exactly one answer in the reply queue, and that
answer agrees with a final decision the function made for it."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault
from tests.conftest import UPN, Loopback, cancel_body
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSleep, received_message
from tests.reply_schema import reply_event

MAX_DELIVERIES = 5
REPLIES = "cancel-replies"
COUNT = 150
SEED = 12
KINDS = ["ok", "ok", "transient", "transient", "exhausting", "missing", "forbidden", "invalid"]
#: The answers each kind of request may get (application property `reason`).
ANSWERS = {
    "ok": {"Cancelled", "AlreadyCancelled"},
    "transient": {"Cancelled", "AlreadyCancelled"},
    "exhausting": {"DeliveriesExhausted"},
    "missing": {"EventNotFound", "AlreadyCancelled"},  # a 404 on a redelivery counts as done
    "forbidden": {"GraphForbidden"},
    "invalid": {"InvalidMessage"},
}


def _setup(rng: random.Random, index: int, loopback: Loopback) -> tuple[str, Any]:
    """One request of a seeded kind, its event and faults set up in the simulator."""
    kind = rng.choice(KINDS)
    event_id = f"RF{index:04d}"
    state = loopback.graph.state
    if kind == "invalid":
        return kind, b'{"userPrincipalName": 1}'
    if kind == "forbidden":
        return kind, cancel_body(event_id, upn="locked@fabrikam.com")
    if kind != "missing":
        state.add_event(UPN, event_id)
    if kind == "transient":
        state.script(UPN, event_id, *(Fault(503) for _ in range(rng.randint(1, 2))))
    if kind == "exhausting":
        state.script(UPN, event_id, *(Fault(503) for _ in range(MAX_DELIVERIES + 2)))
    return kind, cancel_body(event_id, comment="Sorry")


def test_every_request_settled_for_good_has_exactly_one_answer(loopback: Loopback) -> None:
    """Under refused settlements, refused reply sends and transient faults: one kept reply per
    request the function ended, at most one for those the broker dead-lettered, one reply id per
    request, each valid against the schema and the answer its kind of request may get."""
    rng = random.Random(SEED)
    loopback.graph.state.forbidden_mailboxes.add("locked@fabrikam.com")
    bus = FakeServiceBus(queue_name="cancel-requests")
    entity = bus.add_entity(REPLIES)
    processor = loopback.processor(
        RecordingSleep(), replies=bus, REPLY_TO_ALLOWED=REPLIES,
        MAX_DELIVERY_COUNT=str(MAX_DELIVERIES), CANCEL_RETRY_BUDGET_SECONDS="0",
    )
    ended_by_function: set[str] = set()
    broker_dead_lettered: set[str] = set()

    async def run() -> None:
        try:
            for index in range(COUNT):
                kind, body = _setup(rng, index, loopback)
                message_id = f"rq-{index}-{kind}"
                for delivery in range(1, MAX_DELIVERIES + 1):
                    actions = RecordingActions()
                    if rng.random() < 0.1:
                        actions.fail_on = {rng.choice(["complete", "deadletter", "abandon"])}
                    entity.fail_sends = 1 if rng.random() < 0.1 else 0
                    message = received_message(
                        body, delivery_count=delivery, message_id=message_id,
                        reply_to=REPLIES, reply_to_session_id="s",
                    )
                    try:
                        outcome = await processor.process(message, actions)
                    except SettlementError:
                        outcome = None
                    if outcome is None:
                        continue
                    settled = actions.only
                    if settled.action != "abandon":
                        ended_by_function.add(message_id)
                        assert outcome.settlement.reason.value in {
                            "Cancelled", "AlreadyCancelled", "NotOrganizer", "GraphForbidden",
                            "EventNotFound", "InvalidMessage", "DeliveriesExhausted",
                        }
                        break
                else:
                    broker_dead_lettered.add(message_id)
        finally:
            await processor.aclose()

    asyncio.run(run())
    kept: dict[str, list] = defaultdict(list)
    for reply in entity.messages:
        reply_event(reply)
        kept[reply.correlation_id].append(reply)
    for message_id in ended_by_function:
        assert len(kept[message_id]) == 1, message_id
    for message_id, replies in kept.items():
        kind = message_id.rsplit("-", 1)[1]
        assert replies[0].application_properties["reason"] in ANSWERS[kind], message_id
    for message_id in broker_dead_lettered:
        assert len(kept[message_id]) <= 1, message_id
    sent_ids = defaultdict(set)
    for reply in entity.sent:
        sent_ids[reply.correlation_id].add(reply.message_id)
    assert all(len(ids) == 1 for ids in sent_ids.values()), "one reply id per request"
    assert len(ended_by_function) + len(broker_dead_lettered) == COUNT
    assert len(ended_by_function) > COUNT * 0.8
    assert any(m.endswith("exhausting") for m in kept), "the last-delivery rule answered"
