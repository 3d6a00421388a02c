"""Outcome replies over Service Bus request/reply, through the production path: real received
messages, `Processor.process`, azure-identity against the loopback identity endpoint, httpx
against the loopback Graph simulator, and replies sent as the SDK's `ServiceBusMessage` to a
recording double of the reply entity. One test per settlement row, field by field."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.devtools.host_message import decode_as_worker, host_message_content
from cancel_handler.servicebus.messages import sealed
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.fake_servicebus import Entity, FakeServiceBus
from tests.helpers import RecordingActions, RecordingSender, RecordingSleep, received_message
from tests.reply_schema import reply_event
from tests.test_cancel_path import GRAPH_ERROR_400

REPLIES = "cancel-replies"
CANCEL_QUEUE = "cancel-requests"  # FakeServiceBus's queue, the processor's CANCEL_QUEUE_NAME
REQUEST_MESSAGE_ID = "req-7f3a"
CORRELATION_ID = "booking-4711"
SESSION = "booking-tool-3"
ON = {"REPLY_TO_ALLOWED": REPLIES}
NO_WAIT = {"CANCEL_RETRY_BUDGET_SECONDS": "0"}
MALFORMED_ID = Fault(400, {"request-id": "rid-400"}, body=GRAPH_ERROR_400)


@pytest.fixture
def bus() -> FakeServiceBus:
    """A namespace with the cancel queue and a session-enabled reply queue."""
    fake = FakeServiceBus(queue_name=CANCEL_QUEUE)
    fake.add_entity(REPLIES, sessions=True)
    return fake


def request(body: Any, **options: Any):
    """A request asking for a reply on the reply queue, in the sender's session."""
    options.setdefault("message_id", REQUEST_MESSAGE_ID)
    options.setdefault("correlation_id", CORRELATION_ID)
    options.setdefault("reply_to", REPLIES)
    options.setdefault("reply_to_session_id", SESSION)
    return received_message(body, **options)


def run(loopback: Loopback, bus: FakeServiceBus, *messages, sleep=None, **settings: str):
    """Process the messages in order; return the outcomes and the settlement calls."""
    actions = RecordingActions()
    processor = loopback.processor(sleep or RecordingSleep(), replies=bus, **{**ON, **settings})
    outcomes = process_all(processor, list(messages), actions)
    return outcomes, actions


def only_reply(entity: Entity) -> tuple[Any, dict]:
    """The one reply the entity holds (validated against the published schema)."""
    assert len(entity.messages) == 1, [m.message_id for m in entity.messages]
    message = entity.messages[0]
    return message, reply_event(message)


def check_envelope(
    message: Any,
    event: dict,
    outcome: str,
    reason: str,
    *,
    request_message_id: str = REQUEST_MESSAGE_ID,
) -> None:
    """The Service Bus properties and the CloudEvents attributes of a reply."""
    reply_id = uuid.UUID(message.message_id)
    assert reply_id.version == 5, "derived (name-based), not random"
    assert message.message_id != request_message_id
    assert message.correlation_id == request_message_id
    assert message.session_id == SESSION
    assert message.subject == outcome
    assert message.application_properties == {"outcome": outcome, "reason": reason}
    assert message.content_type == "application/cloudevents+json; charset=utf-8"
    assert event["specversion"] == "1.0"
    assert event["id"] == message.message_id
    assert event["source"] == f"/cancel-handler/queues/{CANCEL_QUEUE}"
    assert event["type"] == "cancel-handler.outcome.v1"
    assert event["subject"] == outcome
    assert event["datacontenttype"] == "application/json"
    sent_at = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert sent_at.tzinfo is not None
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)


def test_accepted_cancel_replies_cancelled(loopback: Loopback, bus: FakeServiceBus) -> None:
    """Graph 202 → a `cancelled` reply with every field, sent before the request is completed;
    the comment is not in it."""
    loopback.graph.state.add_event(UPN, "EV1")
    loopback.graph.state.script(
        UPN, "EV1", Fault(202, {"request-id": "rid-202"}, body=b"", cancels=True)
    )
    message = request(cancel_body("EV1", comment="Room closed; see you next week."))
    _, actions = run(loopback, bus, message)
    assert actions.only.action == "complete"
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "cancelled", "Cancelled")
    assert event["data"] == {
        "requestMessageId": REQUEST_MESSAGE_ID,
        "correlationId": CORRELATION_ID,
        "outcome": "cancelled",
        "reason": "Cancelled",
        "userPrincipalName": UPN,
        "eventId": "EV1",
        "graphStatus": 202,
        "graphRequestId": "rid-202",
        "attempts": 1,
    }
    assert b"Room closed" not in b"".join(reply.body)


@pytest.mark.parametrize(
    ("setup", "reason", "status", "in_description"),
    [
        (lambda g: g.add_event(UPN, "EVX", organizer=False), "NotOrganizer", 400, "organizer"),
        (
            lambda g: g.script(UPN, "EVX", MALFORMED_ID),
            "GraphBadRequest",
            400,
            "ErrorInvalidIdMalformed",
        ),
        (lambda g: g.forbidden_mailboxes.add(UPN), "GraphForbidden", 403, "ErrorAccessDenied"),
        (lambda g: None, "EventNotFound", 404, "no such event"),
        (lambda g: g.script(UPN, "EVX", Fault(405)), "GraphRejected", 405, "Graph 405"),
    ],
    ids=["not-organizer", "bad-request", "forbidden", "not-found", "rejected"],
)
def test_graph_refusal_replies_dead_lettered(
    loopback: Loopback,
    bus: FakeServiceBus,
    setup: Any,
    reason: str,
    status: int,
    in_description: str,
) -> None:
    """Each dead-letter Graph's answer causes → a `deadLettered` reply with the same reason,
    the dead-letter description, Graph's status and request-id."""
    setup(loopback.graph.state)
    outcomes, actions = run(loopback, bus, request(cancel_body("EVX")))
    assert (actions.only.action, actions.only.reason) == ("deadletter", reason)
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "deadLettered", reason)
    data = event["data"]
    assert data["description"] == actions.only.description
    assert in_description in data["description"]
    assert data["graphRequestId"] == outcomes[0].request_id
    assert data["graphRequestId"] and data["graphRequestId"] in actions.only.description
    data.pop("description"), data.pop("graphRequestId")
    assert data == {
        "requestMessageId": REQUEST_MESSAGE_ID,
        "correlationId": CORRELATION_ID,
        "outcome": "deadLettered",
        "reason": reason,
        "userPrincipalName": UPN,
        "eventId": "EVX",
        "graphStatus": status,
        "attempts": 1,
    }


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ({"userPrincipalName": UPN}, "eventId: is required"),
        (b"\xff not json", "body is not UTF-8"),
    ],
    ids=["missing-field", "not-utf8"],
)
def test_invalid_request_replies_dead_lettered_without_target(
    loopback: Loopback, bus: FakeServiceBus, body: Any, description: str
) -> None:
    """A body that breaks the contract → `deadLettered` / InvalidMessage naming the problem;
    Graph is not called, so the reply has no target, Graph status or request-id."""
    _, actions = run(loopback, bus, request(body))
    assert (actions.only.action, actions.only.reason) == ("deadletter", "InvalidMessage")
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "deadLettered", "InvalidMessage")
    assert event["data"] == {
        "requestMessageId": REQUEST_MESSAGE_ID,
        "correlationId": CORRELATION_ID,
        "outcome": "deadLettered",
        "reason": "InvalidMessage",
        "description": actions.only.description,
        "attempts": 0,
    }
    assert description in event["data"]["description"]
    assert loopback.graph.state.calls == []


def test_not_found_on_redelivery_replies_already_cancelled(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A 404 on a redelivery completes as AlreadyCancelled → an `alreadyCancelled` reply (the
    meeting is cancelled) without a description."""
    _, actions = run(loopback, bus, request(cancel_body("GONE"), delivery_count=2))
    assert actions.only.action == "complete"
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "alreadyCancelled", "AlreadyCancelled")
    assert event["data"]["outcome"] == "alreadyCancelled"
    assert event["data"]["graphStatus"] == 404
    assert "description" not in event["data"]


def test_give_back_sends_no_reply(loopback: Loopback, bus: FakeServiceBus) -> None:
    """A transient failure given back for redelivery is still in progress: no reply."""
    loopback.graph.state.add_event(UPN, "EV503")
    loopback.graph.state.script(UPN, "EV503", Fault(503))
    _, actions = run(loopback, bus, request(cancel_body("EV503")), **NO_WAIT)
    assert actions.only.action == "abandon"
    assert bus.entities[REPLIES].sent == []


def test_scheduled_retry_sends_no_reply_and_the_copy_keeps_the_reply_address(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A delayed retry is in progress: no reply, and the scheduled copy carries `reply_to` and
    `reply_to_session_id` so that its final outcome is answered."""
    loopback.graph.state.add_event(UPN, "EV429")
    loopback.graph.state.script(UPN, "EV429", Fault(429, {"Retry-After": "120"}))
    sender = RecordingSender()
    processor = loopback.processor(
        RecordingSleep(), sender=sender, replies=bus, DELAYED_RETRY_MAX_COUNT="3", **ON
    )
    actions = RecordingActions()
    process_all(processor, [request(cancel_body("EV429"))], actions)
    assert (actions.only.action, actions.only.reason) == ("complete", None)
    assert bus.entities[REPLIES].sent == []
    [(copy, _)] = sender.scheduled
    assert (copy.reply_to, copy.reply_to_session_id) == (REPLIES, SESSION)


def test_last_delayed_retry_copy_replies_retries_exhausted_to_the_original_id(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """The last delayed-retry copy dead-letters RetriesExhausted and answers the sender's
    request: CorrelationId and requestMessageId are the original id, the reply id is derived
    from the copy's own MessageId."""
    loopback.graph.state.add_event(UPN, "EVR")
    loopback.graph.state.script(UPN, "EVR", Fault(503))
    copy = request(
        cancel_body("EVR"),
        message_id="copy-3",
        # A copy as the function's delayed-retry sender makes it (markers sealed).
        application_properties=sealed(
            "copy-3", {"cancelHandlerRetryCount": 3, "originalMessageId": REQUEST_MESSAGE_ID}
        ),
    )
    processor = loopback.processor(
        RecordingSleep(),
        sender=RecordingSender(),
        replies=bus,
        DELAYED_RETRY_MAX_COUNT="3",
        **NO_WAIT,
        **ON,
    )
    actions = RecordingActions()
    process_all(processor, [copy], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "RetriesExhausted")
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "deadLettered", "RetriesExhausted")
    assert event["data"]["requestMessageId"] == REQUEST_MESSAGE_ID
    assert "after 3 delayed retries" in event["data"]["description"]
    own = request(cancel_body("EVR"), message_id=REQUEST_MESSAGE_ID)
    bus2 = FakeServiceBus(queue_name=CANCEL_QUEUE)
    bus2.add_entity(REPLIES)
    loopback.graph.state.add_event(UPN, "EVR")
    run(loopback, bus2, own)
    assert bus2.entities[REPLIES].messages[0].message_id != reply.message_id


@pytest.mark.parametrize(
    ("delivery_count", "expected"),
    [
        (5, ("deadletter", "DeliveriesExhausted")),
        (6, ("deadletter", "DeliveriesExhausted")),
        (4, ("abandon", "TransientFailure")),
        (None, ("abandon", "TransientFailure")),
    ],
    ids=["last", "beyond-last", "before-last", "count-unknown"],
)
def test_last_delivery_dead_letters_deliveries_exhausted_and_replies(
    loopback: Loopback, bus: FakeServiceBus, delivery_count: int | None, expected: tuple
) -> None:
    """Still failing transiently on delivery MAX_DELIVERY_COUNT (5) → dead-letter
    DeliveriesExhausted and reply; before it, or with an unknown count, give back silently."""
    loopback.graph.state.add_event(UPN, "EVD")
    loopback.graph.state.script(UPN, "EVD", Fault(503))
    _, actions = run(
        loopback,
        bus,
        request(cancel_body("EVD"), delivery_count=delivery_count),
        MAX_DELIVERY_COUNT="5",
        **NO_WAIT,
    )
    settled = actions.only
    assert (settled.action, settled.reason or "TransientFailure") == expected
    entity = bus.entities[REPLIES]
    if settled.action == "abandon":
        assert entity.sent == []
        return
    reply, event = only_reply(entity)
    check_envelope(reply, event, "deadLettered", "DeliveriesExhausted")
    assert f"delivery {delivery_count}" in event["data"]["description"]
    assert "Graph answered 503" in event["data"]["description"]
    assert event["data"]["graphStatus"] == 503


def test_last_delivery_rule_is_off_by_default(loopback: Loopback, bus: FakeServiceBus) -> None:
    """Without MAX_DELIVERY_COUNT a give-back stays a give-back on any delivery."""
    loopback.graph.state.add_event(UPN, "EVD")
    loopback.graph.state.script(UPN, "EVD", Fault(503))
    _, actions = run(loopback, bus, request(cancel_body("EVD"), delivery_count=10), **NO_WAIT)
    assert actions.only.action == "abandon"
    assert bus.entities[REPLIES].sent == []


def test_redelivery_after_lost_settlement_replies_under_the_same_id(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """The reply goes out, then completing fails; the redelivery finds the event gone and
    replies `alreadyCancelled` under the same MessageId, which duplicate detection drops."""
    loopback.graph.state.add_event(UPN, "EVL")
    processor = loopback.processor(RecordingSleep(), replies=bus, **ON)
    actions = RecordingActions(fail_on={"complete"})

    async def deliver_twice() -> None:
        try:
            with pytest.raises(SettlementError):
                await processor.process(request(cancel_body("EVL")), actions)
            actions.fail_on = set()
            await processor.process(request(cancel_body("EVL"), delivery_count=2), actions)
        finally:
            await processor.aclose()

    asyncio.run(deliver_twice())
    assert actions.only.action == "complete"
    entity = bus.entities[REPLIES]
    first, second = entity.sent
    assert first.message_id == second.message_id
    assert (first.subject, second.subject) == ("cancelled", "alreadyCancelled")
    reply, event = only_reply(entity)
    assert reply is first, "the duplicate was dropped by the entity"
    check_envelope(reply, event, "cancelled", "Cancelled")
    reply_event(second)


@pytest.mark.parametrize(
    ("reply_to", "why"),
    [("someone-elses-queue", "not in REPLY_TO_ALLOWED"), (CANCEL_QUEUE, "cancel queue itself")],
    ids=["not-allowed", "cancel-queue"],
)
def test_refused_reply_to_logs_one_warning_and_settles_as_usual(
    loopback: Loopback, bus: FakeServiceBus, caplog, reply_to: str, why: str
) -> None:
    """A reply_to outside REPLY_TO_ALLOWED, or naming the cancel queue: nothing is sent, one
    warning line says why, and the request is settled exactly as without a reply."""
    caplog.set_level(logging.INFO, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVF")
    _, actions = run(loopback, bus, request(cancel_body("EVF"), reply_to=reply_to))
    assert actions.only.action == "complete"
    assert bus.entities[REPLIES].sent == []
    assert bus.events == [], "nothing was sent to the cancel queue either"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert why in warnings[0].getMessage()
    assert f"message_id={REQUEST_MESSAGE_ID}" in warnings[0].getMessage()


def test_reply_to_is_matched_case_insensitively(loopback: Loopback, bus: FakeServiceBus) -> None:
    """Service Bus entity names are case-insensitive: `Cancel-Replies` is the allowed queue."""
    loopback.graph.state.add_event(UPN, "EVC")
    run(loopback, bus, request(cancel_body("EVC"), reply_to="Cancel-Replies"))
    only_reply(bus.entities[REPLIES])


def test_request_without_reply_to_gets_no_reply_and_no_warning(
    loopback: Loopback, bus: FakeServiceBus, caplog
) -> None:
    """A request that asks for no reply is processed as before, silently."""
    caplog.set_level(logging.WARNING, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVN")
    _, actions = run(loopback, bus, request(cancel_body("EVN"), reply_to=None))
    assert actions.only.action == "complete"
    assert bus.entities[REPLIES].sent == []
    assert caplog.records == []


def test_failed_reply_gives_the_request_back_then_the_redelivery_answers(
    loopback: Loopback, bus: FakeServiceBus, caplog
) -> None:
    """Service Bus refuses the reply → the request is given back (not completed, nothing
    lost) with one warning; the redelivery replies `alreadyCancelled` and completes."""
    caplog.set_level(logging.WARNING, logger="cancel_handler.replies")
    loopback.graph.state.add_event(UPN, "EVS")
    entity = bus.entities[REPLIES]
    entity.fail_sends = 1
    outcomes, actions = run(
        loopback, bus, request(cancel_body("EVS")), request(cancel_body("EVS"), delivery_count=2)
    )
    assert [s.action for s in actions.settled] == ["abandon", "complete"]
    assert "reply to 'cancel-replies' not sent (ServiceBusError)" in (
        outcomes[0].settlement.description
    )
    assert (UPN.lower(), "EVS") in loopback.graph.state.cancelled
    [warning] = [r for r in caplog.records if r.name == "cancel_handler.replies"]
    assert "giving the request back" in warning.getMessage()
    reply, event = only_reply(entity)
    check_envelope(reply, event, "alreadyCancelled", "AlreadyCancelled")


def test_session_enabled_reply_queue_needs_reply_to_session_id(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """Without reply_to_session_id a session-enabled reply queue refuses the reply, so the
    request is given back (documented: such a queue needs ReplyToSessionId)."""
    loopback.graph.state.add_event(UPN, "EVQ")
    _, actions = run(loopback, bus, request(cancel_body("EVQ"), reply_to_session_id=None))
    assert actions.only.action == "abandon"
    assert bus.entities[REPLIES].sent == []


def test_a_reply_never_sent_ends_deliveries_exhausted_naming_the_decision(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A session-enabled reply queue and no reply_to_session_id: each delivery is given back,
    and on the queue's last (MAX_DELIVERY_COUNT=3) the function dead-letters the request as
    DeliveriesExhausted, saying the meeting was cancelled (the redeliveries' 404 reads as
    AlreadyCancelled), instead of giving it back for
    Service Bus to dead-letter as MaxDeliveryCountExceeded."""
    loopback.graph.state.add_event(UPN, "EVZ")
    deliveries = [
        request(cancel_body("EVZ"), reply_to_session_id=None, delivery_count=n)
        for n in (1, 2, 3)
    ]
    _, actions = run(loopback, bus, *deliveries, MAX_DELIVERY_COUNT="3")
    assert [s.action for s in actions.settled] == ["abandon", "abandon", "deadletter"]
    last = actions.settled[-1]
    assert (last.reason, last.description) == (
        "DeliveriesExhausted",
        "still failing on delivery 3 (MAX_DELIVERY_COUNT=3, the queue's last); last error: "
        "reply to 'cancel-replies' not sent (ServiceBusError) after it was decided: "
        "AlreadyCancelled",
    )
    assert (UPN.lower(), "EVZ") in loopback.graph.state.cancelled
    assert bus.entities[REPLIES].sent == []


def test_a_reply_refused_on_the_last_delivery_is_answered_with_the_dead_letter(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """The reply of the last delivery is refused once: the request is dead-lettered as
    DeliveriesExhausted naming the decision, and the sender is answered with that dead-letter
    (the second send goes through)."""
    loopback.graph.state.add_event(UPN, "EVL")
    bus.entities[REPLIES].fail_sends = 1
    _, actions = run(
        loopback, bus, request(cancel_body("EVL"), delivery_count=3), MAX_DELIVERY_COUNT="3"
    )
    description = (
        "still failing on delivery 3 (MAX_DELIVERY_COUNT=3, the queue's last); last error: "
        "reply to 'cancel-replies' not sent (ServiceBusError) after it was decided: Cancelled"
    )
    assert (actions.only.action, actions.only.reason, actions.only.description) == (
        "deadletter", "DeliveriesExhausted", description)
    reply, event = only_reply(bus.entities[REPLIES])
    check_envelope(reply, event, "deadLettered", "DeliveriesExhausted")
    assert event["data"]["description"] == description


def test_reply_to_an_entity_without_sessions_has_no_session_id(loopback: Loopback) -> None:
    """A queue or topic without sessions gets replies without SessionId when none was asked."""
    bus = FakeServiceBus(queue_name=CANCEL_QUEUE)
    topic = bus.add_entity("booking-events", sessions=False)
    loopback.graph.state.add_event(UPN, "EVT")
    run(
        loopback,
        bus,
        request(cancel_body("EVT"), reply_to="booking-events", reply_to_session_id=None),
        REPLY_TO_ALLOWED=f"{REPLIES}, booking-events",
    )
    [reply] = topic.messages
    assert reply.session_id is None
    assert reply_event(reply)["data"]["outcome"] == "cancelled"


def test_reply_never_carries_the_comment_or_a_token(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """The comment text and the bearer token Graph received appear nowhere in the reply."""
    loopback.graph.state.add_event(UPN, "EVK")
    comment = "Confidential: reorg announcement moved"
    run(loopback, bus, request(cancel_body("EVK", comment=comment)))
    reply, _ = only_reply(bus.entities[REPLIES])
    [call] = loopback.graph.state.calls
    text = b"".join(reply.body).decode()
    assert comment not in text
    assert call.token not in text and "eyJ" not in text
    assert comment not in json.dumps(reply.application_properties)


def test_shutdown_mid_request_sends_no_reply(loopback: Loopback, bus: FakeServiceBus) -> None:
    """An invocation cancelled by shutdown gives the request back and answers nothing."""
    loopback.graph.state.add_event(UPN, "EVZ")
    loopback.graph.state.script(UPN, "EVZ", Fault(503, {"Retry-After": "30"}))
    processor = loopback.processor(replies=bus, **ON)  # the real asyncio.sleep
    actions = RecordingActions()

    async def cancel_midway() -> None:
        try:
            task = asyncio.create_task(processor.process(request(cancel_body("EVZ")), actions))
            while not loopback.graph.state.calls:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # now inside the 30 s wait
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await processor.aclose()

    asyncio.run(cancel_midway())
    assert actions.only.action == "abandon"
    assert bus.entities[REPLIES].sent == []


def test_resubmitted_request_is_answered_again_under_a_new_reply_id(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """An operator's resubmission keeps the reply address: after the fix, its outcome reaches
    the sender, correlated to the original MessageId, under a reply id of its own (not a
    duplicate of the earlier dead-letter reply)."""
    from cancel_handler.ops.repair import resubmit_copy
    from tests.fake_servicebus import as_received

    loopback.graph.state.forbidden_mailboxes.add(UPN)
    run(loopback, bus, request(cancel_body("EVP")))
    [first] = bus.entities[REPLIES].messages
    assert first.application_properties["reason"] == "GraphForbidden"
    dead = request(cancel_body("EVP"), dead_letter_reason="GraphForbidden", sequence_number=41)
    copy = resubmit_copy(dead)
    assert (copy.reply_to, copy.reply_to_session_id) == (REPLIES, SESSION)
    loopback.graph.state.forbidden_mailboxes.clear()
    loopback.graph.state.add_event(UPN, "EVP")
    _, actions = run(loopback, bus, as_received(copy, 42))
    assert actions.only.action == "complete"
    second = bus.entities[REPLIES].messages[1]
    check_envelope(second, reply_event(second), "cancelled", "Cancelled")
    assert second.message_id != first.message_id


def test_production_senders_are_the_sdks_on_one_client() -> None:
    """The real factory builds azure-servicebus senders (no network until the first send) for
    each reply entity on one client authenticated with the function's credential."""
    from azure.core.credentials import AccessToken
    from azure.servicebus import ServiceBusSender

    from cancel_handler.servicebus.senders import servicebus_senders

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise AssertionError("no token is fetched before a send")

    made = []
    sender_for = servicebus_senders(
        "sb-test.servicebus.windows.net", lambda: made.append(1) or Credential()
    )
    queue, topic = sender_for("cancel-replies"), sender_for("booking-events")
    assert isinstance(queue, ServiceBusSender) and isinstance(topic, ServiceBusSender)
    assert (queue.entity_name, topic.entity_name) == ("cancel-replies", "booking-events")
    assert queue.fully_qualified_namespace == "sb-test.servicebus.windows.net"
    assert made == [1], "one client, one credential for every reply entity"


def test_replies_off_still_warns_once_when_a_request_asks(loopback: Loopback, caplog) -> None:
    """With REPLY_TO_ALLOWED empty nothing is sent; a request naming a reply_to is settled as
    usual and leaves one warning line, so operators see senders waiting for replies."""
    caplog.set_level(logging.WARNING, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVO")
    actions = RecordingActions()
    process_all(loopback.processor(RecordingSleep()), [request(cancel_body("EVO"))], actions)
    assert actions.only.action == "complete"
    [warning] = caplog.records
    assert "replies are off (REPLY_TO_ALLOWED is empty)" in warning.getMessage()


def test_a_forged_original_id_does_not_redirect_the_answer(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """A sender that sets `originalMessageId` itself (not a copy our tools made) gets its answer
    correlated to its own MessageId, never to the id it named."""
    loopback.graph.state.add_event(UPN, "EVF")
    forged = request(
        cancel_body("EVF"), application_properties={"originalMessageId": "someone-elses-request"}
    )
    run(loopback, bus, forged)
    reply, event = only_reply(bus.entities[REPLIES])
    assert reply.correlation_id == REQUEST_MESSAGE_ID
    assert event["data"]["requestMessageId"] == REQUEST_MESSAGE_ID


def _reply_warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, dict]]:
    """Each warning of the replies logger: level name, whole message, structured fields."""
    return [
        (r.levelname, r.getMessage(), r.cancel_handler)
        for r in caplog.records
        if r.name == "cancel_handler.replies"
    ]


def test_refused_reply_to_warning_line_is_whole_and_log_safe(
    loopback: Loopback, bus: FakeServiceBus, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning for a refused reply_to is one line with the reason, the request's id and
    the reply_to quoted (it holds a space) with its line break shown as `?`, and the same
    three as fields."""
    caplog.set_level(logging.INFO, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVW")
    asked = request(cancel_body("EVW"), reply_to="other queue\nforged: line")
    _, actions = run(loopback, bus, asked)
    assert actions.only.action == "complete"
    assert _reply_warnings(caplog) == [
        (
            "WARNING",
            "reply not sent: reply_to is not in REPLY_TO_ALLOWED message_id=req-7f3a "
            'reply_to="other queue?forged: line"',
            {
                "message_id": "req-7f3a",
                "reply_to": "other queue?forged: line",
                "detail": "reply_to is not in REPLY_TO_ALLOWED",
            },
        )
    ]


def test_request_without_message_id_is_settled_and_warned_with_a_dash(
    loopback: Loopback, bus: FakeServiceBus, caplog: pytest.LogCaptureFixture
) -> None:
    """A request with no MessageId cannot be correlated: no reply, the request settles as
    usual, and the warning shows `-` for the missing id (the fields hold None)."""
    caplog.set_level(logging.INFO, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVM")
    content = host_message_content(
        json.dumps(cancel_body("EVM")).encode(),
        lock_token=uuid.uuid4(),
        message_id=None,
        delivery_count=1,
        sequence_number=1,
        enqueued_time=datetime.now(UTC),
        reply_to=REPLIES,
        reply_to_session_id=SESSION,
    )
    nameless = decode_as_worker(content)
    assert nameless.message_id is None
    _, actions = run(loopback, bus, nameless)
    assert actions.only.action == "complete"
    assert bus.entities[REPLIES].sent == []
    assert _reply_warnings(caplog) == [
        (
            "WARNING",
            "reply not sent: the request has no MessageId message_id=- reply_to=cancel-replies",
            {
                "message_id": None,
                "reply_to": "cancel-replies",
                "detail": "the request has no MessageId",
            },
        )
    ]


def test_failed_reply_warning_line_is_whole(
    loopback: Loopback, bus: FakeServiceBus, caplog: pytest.LogCaptureFixture
) -> None:
    """When Service Bus refuses the reply, the request is given back as a transient failure
    whose description says why and what had been decided, and the warning names the error
    type, the request's id and the allowed entity the reply was for."""
    caplog.set_level(logging.INFO, logger="cancel_handler")
    loopback.graph.state.add_event(UPN, "EVR")
    bus.entities[REPLIES].fail_sends = 1
    [outcome], actions = run(loopback, bus, request(cancel_body("EVR"), reply_to="CANCEL-REPLIES"))
    assert actions.only.action == "abandon"
    assert outcome.settlement == Settlement(
        Action.ABANDON,
        Reason.TRANSIENT_FAILURE,
        "reply to 'cancel-replies' not sent (ServiceBusError) after it was decided: Cancelled",
    )
    detail = "sending failed (ServiceBusError); giving the request back"
    assert _reply_warnings(caplog) == [
        (
            "WARNING",
            f"reply not sent: {detail} message_id=req-7f3a reply_to=cancel-replies",
            {"message_id": "req-7f3a", "reply_to": "cancel-replies", "detail": detail},
        )
    ]


def test_ids_sent_as_binary_that_is_not_utf8_are_read_with_replacement_characters(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """AMQP binary MessageId and CorrelationId that are not UTF-8 (the SDK hands them over as
    bytes) are answered with each bad byte read as U+FFFD, not crashed on."""
    loopback.graph.state.add_event(UPN, "EVB")
    asked = request(
        cancel_body("EVB"), message_id=b"req-\xff7f3a", correlation_id=b"booking-\xfe4711"
    )
    assert (asked.message_id, asked.correlation_id) == (b"req-\xff7f3a", b"booking-\xfe4711")
    _, actions = run(loopback, bus, asked)
    assert actions.only.action == "complete"
    reply, event = only_reply(bus.entities[REPLIES])
    assert reply.correlation_id == "req-\ufffd7f3a"
    assert event["data"]["requestMessageId"] == "req-\ufffd7f3a"
    assert event["data"]["correlationId"] == "booking-\ufffd4711"


def test_a_uuid_correlation_id_is_answered_as_its_text(
    loopback: Loopback, bus: FakeServiceBus
) -> None:
    """An AMQP uuid CorrelationId (the SDK hands over a `uuid.UUID`, as a non-.NET sender may
    send it) is answered as its text, as the .NET SDK renders it, and the request completes."""
    loopback.graph.state.add_event(UPN, "EVU")
    booking = uuid.UUID("6f1e2a7b-4c11-4d57-9d0c-3b0f9d528a1e")
    asked = request(cancel_body("EVU"), correlation_id=booking)
    assert asked.correlation_id == booking
    _, actions = run(loopback, bus, asked)
    assert actions.only.action == "complete"
    _, event = only_reply(bus.entities[REPLIES])
    assert event["data"]["correlationId"] == "6f1e2a7b-4c11-4d57-9d0c-3b0f9d528a1e"
    assert event["data"]["requestMessageId"] == REQUEST_MESSAGE_ID


def test_one_sender_per_reply_entity_serves_every_reply() -> None:
    """Replies to the same entity share the sender made for it on first use (one AMQP link
    per entity, not one per reply); another entity gets its own."""
    from cancel_handler.core.outcome import Outcome
    from cancel_handler.core.reply import RequestFacts, build_reply
    from cancel_handler.servicebus.replies import Replies
    from cancel_handler.servicebus.senders import SenderPool

    class Sender:
        def __init__(self) -> None:
            self.sent: list[Any] = []

        def send_messages(self, message: Any) -> None:
            self.sent.append(message)

    made: list[str] = []
    senders: dict[str, Sender] = {}

    def sender_for(entity: str) -> Sender:
        made.append(entity)
        return senders.setdefault(entity, Sender())

    replies = Replies((REPLIES, "booking-events"), CANCEL_QUEUE, SenderPool(sender_for))
    done = Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED), attempts=1, graph_status=202)

    async def answer_three() -> None:
        for request_message_id, entity in [("a", REPLIES), ("b", REPLIES), ("c", "booking-events")]:
            reply = build_reply(done, RequestFacts(request_message_id), entity=entity, source="/s")
            assert reply is not None
            await replies.send(reply)

    asyncio.run(answer_three())
    assert made == [REPLIES, "booking-events"]
    assert [m.correlation_id for m in senders[REPLIES].sent] == ["a", "b"]
    assert [m.correlation_id for m in senders["booking-events"].sent] == ["c"]
