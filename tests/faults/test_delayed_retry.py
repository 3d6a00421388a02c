"""Delayed retries: a long Retry-After or a spent budget schedules a copy (new MessageId, retry
count, original id) and completes the original only after the schedule succeeded; without a sender
or when scheduling fails the message is abandoned; past DELAYED_RETRY_MAX_COUNT it is dead-lettered
as RetriesExhausted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusMessage

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.errors import SettlementError
from cancel_handler.core.outcome import Outcome
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.servicebus.delayed_retry import Schedule, plan
from cancel_handler.servicebus.messages import (
    COPY_CHECK_PROPERTY,
    ORIGINAL_ID_PROPERTY,
    RETRY_COUNT_PROPERTY,
    copy_check,
    read_markers,
    sealed,
)
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import (
    RecordingActions,
    RecordingSender,
    RecordingSleep,
    as_delivered,
    received_message,
)

GIVE_BACK = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph answered 429; gave up")
ON = {"DELAYED_RETRY_MAX_COUNT": "3"}

DELAY_CAP_SECONDS = 3600.0  # the README: delayed retries wait at most 1 h


@pytest.mark.parametrize(
    ("outcome", "retry_count", "max_count", "jitter", "expected"),
    [
        (Outcome(GIVE_BACK, retry_after=120.0), 0, 0, 1.0, None),
        (Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED)), 0, 3, 1.0, None),
        (
            Outcome(Settlement(Action.DEADLETTER, Reason.EVENT_NOT_FOUND, "x")),
            0,
            3,
            1.0,
            None,
        ),
        (Outcome(GIVE_BACK, retry_after=120.0), 0, 3, 1.0, Schedule(120.0, 1)),
        (Outcome(GIVE_BACK, retry_after=2.5), 2, 3, 0.0, Schedule(2.5, 3)),
        (Outcome(GIVE_BACK, retry_after=0.0), 0, 3, 1.0, Schedule(1.0, 1)),
        (Outcome(GIVE_BACK, retry_after=86400.0), 0, 3, 1.0, Schedule(DELAY_CAP_SECONDS, 1)),
        (Outcome(GIVE_BACK), 0, 3, 1.0, Schedule(30.0, 1)),
        (Outcome(GIVE_BACK), 1, 3, 1.0, Schedule(60.0, 2)),
        (Outcome(GIVE_BACK), 1, 3, 0.0, Schedule(30.0, 2)),
        (Outcome(GIVE_BACK), 10, 20, 1.0, Schedule(DELAY_CAP_SECONDS, 11)),
    ],
    ids=[
        "off",
        "completed",
        "dead-lettered",
        "retry-after",
        "retry-after-last-retry",
        "retry-after-zero-clamped",
        "retry-after-capped",
        "backoff-first",
        "backoff-second",
        "backoff-jitter-low",
        "backoff-capped",
    ],
)
def test_plan_table(
    outcome: Outcome, retry_count: int, max_count: int, jitter: float, expected: Any
) -> None:
    """The pure decision: off / not a give-back → None; else schedule after Retry-After
    (clamped to 1 s … 1 h) or a doubling backoff from 30 s."""
    assert plan(outcome, retry_count=retry_count, max_count=max_count, jitter=jitter) == expected


@pytest.mark.parametrize("retry_count", [3, 4, 99])
def test_plan_dead_letters_when_retries_are_exhausted(retry_count: int) -> None:
    """At or beyond the cap: dead-letter RetriesExhausted saying how many and the last error."""
    verdict = plan(Outcome(GIVE_BACK, retry_after=5.0), retry_count=retry_count, max_count=3)
    assert isinstance(verdict, Settlement)
    assert (verdict.action, verdict.reason) == (Action.DEADLETTER, Reason.RETRIES_EXHAUSTED)
    assert f"after {retry_count} delayed retries" in verdict.description
    assert "DELAYED_RETRY_MAX_COUNT=3" in verdict.description
    assert "last error: Graph answered 429" in verdict.description


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({}, 0),
        ({b"cancelHandlerRetryCount": b"2"}, 2),
        ({b"cancelHandlerRetryCount": 3}, 3),
        ({b"cancelHandlerRetryCount": b"-1"}, 0),
        ({b"cancelHandlerRetryCount": b"many"}, 0),
        ({b"cancelHandlerRetryCount": True}, 0),
        ({b"other": b"5"}, 0),
    ],
)
def test_retry_count_is_read_from_bytes_properties(properties: dict, expected: int) -> None:
    """Received application properties have bytes keys and values; on a copy that carries its
    copy check, junk counts as 0."""
    decoded = {k.decode(): v.decode() if isinstance(v, bytes) else v for k, v in properties.items()}
    check = copy_check("copy-1", decoded).encode()
    message = received_message(
        cancel_body("X"),
        message_id="copy-1",
        application_properties={**properties, COPY_CHECK_PROPERTY.encode(): check},
    )
    assert read_markers(message).retry_count == expected


def test_long_retry_after_schedules_a_copy_then_completes(loopback: Loopback) -> None:
    """Retry-After beyond the budget → one real ServiceBusMessage scheduled at now + Retry-After
    with the same body, correlation id, content type and properties, a new MessageId, the
    original id and retry count 1; only then is the original completed."""
    loopback.graph.state.add_event(UPN, "DR1")
    loopback.graph.state.script(UPN, "DR1", Fault(429, {"Retry-After": "120"}))
    actions = RecordingActions()

    class OrderCheckingSender(RecordingSender):
        def schedule_messages(self, messages: Any, schedule_time_utc: Any) -> list[int]:
            assert actions.settled == [], "the original must not be settled before the copy"
            return super().schedule_messages(messages, schedule_time_utc)

    sender = OrderCheckingSender()
    body = cancel_body("DR1", comment="Moved online.")
    message = received_message(
        body,
        message_id="orig-1",
        correlation_id="corr-1",
        application_properties={b"tenant": b"contoso"},
    )
    before = datetime.now(UTC)
    [outcome] = process_all(
        loopback.processor(RecordingSleep(), sender=sender, **ON), [message], actions
    )
    assert (actions.only.action, outcome.settlement.reason) == ("complete", "RetryScheduled")
    [(copy, when)] = sender.scheduled
    assert isinstance(copy, ServiceBusMessage)
    assert b"".join(copy.body) == b"".join(received_message(body).body)
    assert copy.message_id not in (None, "orig-1")
    assert copy.correlation_id == "corr-1" and copy.content_type == "application/json"
    assert copy.application_properties == {
        "tenant": "contoso",
        RETRY_COUNT_PROPERTY: 1,
        ORIGINAL_ID_PROPERTY: "orig-1",
        COPY_CHECK_PROPERTY: copy_check(copy.message_id, copy.application_properties),
    }
    assert copy.scheduled_enqueue_time_utc == when
    assert timedelta(seconds=119) <= when - before <= timedelta(seconds=125)
    assert (UPN, "DR1") not in loopback.graph.state.cancelled


def test_copy_of_a_copy_keeps_the_first_original_id_and_counts_up(loopback: Loopback) -> None:
    """Retry 2 carries retry count 2 and still the very first message's id."""
    loopback.graph.state.script(UPN, "DR2", *[Fault(503, {"Retry-After": "600"})] * 2)
    sender = RecordingSender()
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    process_all(processor, [received_message(cancel_body("DR2"), message_id="first")], actions)
    first_copy = sender.scheduled[0][0]
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    process_all(processor, [as_delivered(first_copy)], actions)
    second_copy = sender.scheduled[1][0]
    assert second_copy.application_properties[RETRY_COUNT_PROPERTY] == 2
    assert second_copy.application_properties[ORIGINAL_ID_PROPERTY] == "first"
    assert len({"first", first_copy.message_id, second_copy.message_id}) == 3


def test_copy_ends_cancelled_when_graph_recovers(loopback: Loopback) -> None:
    """The scheduled copy, delivered later, cancels the meeting and completes."""
    loopback.graph.state.add_event(UPN, "DR3")
    loopback.graph.state.script(UPN, "DR3", Fault(429, {"Retry-After": "300"}))
    sender = RecordingSender()
    actions = RecordingActions()
    message = received_message(cancel_body("DR3"))
    process_all(loopback.processor(RecordingSleep(), sender=sender, **ON), [message], actions)
    copy = sender.scheduled[0][0]
    process_all(
        loopback.processor(RecordingSleep(), sender=sender, **ON), [as_delivered(copy)], actions
    )
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert (UPN, "DR3") in loopback.graph.state.cancelled


def test_copy_after_an_unknown_outcome_treats_404_as_done(loopback: Loopback) -> None:
    """A 504 that hid a cancel, then a copy that gets 404: the copy completes (the earlier
    attempt did it), it is not dead-lettered as EventNotFound."""
    loopback.graph.state.add_event(UPN, "DR4")
    loopback.graph.state.script(UPN, "DR4", Fault(504, {"Retry-After": "900"}, cancels=True))
    sender = RecordingSender()
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    process_all(processor, [received_message(cancel_body("DR4"))], actions)
    copy = sender.scheduled[0][0]
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    [outcome] = process_all(processor, [as_delivered(copy)], actions)
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert outcome.settlement.reason == "AlreadyCancelled"


def test_spent_budget_schedules_a_backoff_copy(loopback: Loopback) -> None:
    """No Retry-After but the in-process budget is spent → copy after the 30 s-based backoff."""
    loopback.graph.state.script(UPN, "DR5", *[Fault(503)] * 20)
    sender = RecordingSender()
    actions = RecordingActions()
    processor = loopback.processor(
        RecordingSleep(), sender=sender, CANCEL_RETRY_BUDGET_SECONDS="2", **ON
    )
    before = datetime.now(UTC)
    process_all(processor, [received_message(cancel_body("DR5"))], actions)
    assert actions.only.action == "complete"
    [(_, when)] = sender.scheduled
    assert timedelta(seconds=14) <= when - before <= timedelta(seconds=35)


def test_exhausted_retries_are_dead_lettered(loopback: Loopback) -> None:
    """A copy already at DELAYED_RETRY_MAX_COUNT that fails again → RetriesExhausted, nothing
    scheduled; the description names the count and the last error."""
    loopback.graph.state.script(UPN, "DR6", Fault(429, {"Retry-After": "120"}))
    sender = RecordingSender()
    actions = RecordingActions()
    markers = sealed("copy-3", {RETRY_COUNT_PROPERTY: 3, ORIGINAL_ID_PROPERTY: "first"})
    message = received_message(
        cancel_body("DR6"),
        message_id="copy-3",
        application_properties={k.encode(): v for k, v in markers.items()},
    )
    process_all(loopback.processor(RecordingSleep(), sender=sender, **ON), [message], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "RetriesExhausted")
    assert "after 3 delayed retries" in actions.only.description
    assert "Graph answered 429" in actions.only.description
    assert sender.scheduled == []


def test_failed_schedule_falls_back_to_abandon(loopback: Loopback) -> None:
    """When the sender fails (e.g. the Data Sender role is missing) the original is abandoned,
    never completed: the request stays on the queue."""
    loopback.graph.state.script(UPN, "DR7", Fault(429, {"Retry-After": "120"}))
    actions = RecordingActions()
    sender = RecordingSender(fail=True)
    message = received_message(cancel_body("DR7"))
    process_all(loopback.processor(RecordingSleep(), sender=sender, **ON), [message], actions)
    assert actions.only.action == "abandon"


@pytest.mark.parametrize(
    "settings",
    [
        {"DELAYED_RETRY_MAX_COUNT": "0"},
        {"DELAYED_RETRY_MAX_COUNT": "3"},  # no namespace, no sender: scheduling not configured
    ],
    ids=["off", "no-namespace"],
)
def test_without_scheduling_the_message_is_abandoned(loopback: Loopback, settings: dict) -> None:
    """Delayed retries off or not configured → abandon as before."""
    loopback.graph.state.script(UPN, "DR8", Fault(429, {"Retry-After": "120"}))
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), **settings)
    assert processor.delayed_retries is None
    process_all(processor, [received_message(cancel_body("DR8"))], actions)
    assert actions.only.action == "abandon"


def test_namespace_and_count_enable_the_real_sender(loopback: Loopback) -> None:
    """With a namespace, a queue name and a count, production wiring builds delayed retries
    (the sender itself is made on first use)."""
    processor = loopback.processor(
        ServiceBusConnection__fullyQualifiedNamespace="sb-test.servicebus.windows.net",
        CANCEL_QUEUE_NAME="meeting-cancellations",
        **ON,
    )
    assert processor.delayed_retries is not None
    assert processor.delayed_retries.max_count == 3


def test_completion_failure_after_schedule_raises_and_stays_safe(loopback: Loopback) -> None:
    """Copy scheduled, then completing the original fails → the invocation raises; the original
    is redelivered and cancels, and the copy later gets 404 and completes: one cancel, no
    dead-letter."""
    state = loopback.graph.state
    state.add_event(UPN, "DR9")
    state.script(UPN, "DR9", Fault(429, {"Retry-After": "120"}))
    sender = RecordingSender()
    message = received_message(cancel_body("DR9"), message_id="orig-9")
    with pytest.raises(SettlementError):
        process_all(
            loopback.processor(RecordingSleep(), sender=sender, **ON),
            [message],
            RecordingActions(fail_on={"complete"}),
        )
    assert len(sender.scheduled) == 1
    actions = RecordingActions()
    redelivered = received_message(cancel_body("DR9"), message_id="orig-9", delivery_count=2)
    copy = as_delivered(sender.scheduled[0][0])
    outcomes = process_all(
        loopback.processor(RecordingSleep(), sender=sender, **ON), [redelivered, copy], actions
    )
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert [o.settlement.reason for o in outcomes] == ["Cancelled", "AlreadyCancelled"]
    assert [c.status for c in state.calls] == [429, 202, 404]
