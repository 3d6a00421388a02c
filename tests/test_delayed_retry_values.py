"""Delayed retries against the README's published values (30 s · 2ⁿ with jitter, 1 s … 1 h,
DELAYED_RETRY_MAX_COUNT from 1), the copy built as the SDK's real ServiceBusMessage, and the
production sender built as the SDK's real ServiceBusSender."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from azure.identity import ManagedIdentityCredential
from azure.servicebus import ServiceBusSender

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.outcome import Outcome
from cancel_handler.runtime import Processor
from cancel_handler.servicebus.delayed_retry import DelayedRetries, Schedule, build_copy, plan
from cancel_handler.servicebus.delivery import Delivery, delivery_of
from cancel_handler.servicebus.messages import CopyMarkers, sealed
from cancel_handler.servicebus.senders import SenderPool, servicebus_senders
from cancel_handler.settings import load_settings
from tests.helpers import RecordingSender, received_message
from tests.randomness import FixedRandom

GIVE_BACK = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "Graph answered 503"))
NOW = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
QUEUE = "meeting-cancellations"


def pool(make) -> SenderPool:
    """A sender pool whose one sender (for any entity) `make()` makes."""
    return SenderPool(lambda entity: make())


def delivered(body: bytes = b"{}", retry_count: int = 0, **options) -> Delivery:
    """A received message read as the pipeline reads it, as delayed retry `retry_count`."""
    return replace(
        delivery_of(received_message(body, **options)), markers=CopyMarkers(retry_count)
    )


def test_the_production_factory_builds_the_sdks_queue_sender() -> None:
    """servicebus_senders makes azure-servicebus's real ServiceBusSender for the queue and
    namespace, authenticated with the credential it is given (no connection is opened)."""
    credential = ManagedIdentityCredential()
    sender = servicebus_senders("sb-test.servicebus.windows.net", lambda: credential)(QUEUE)
    try:
        assert isinstance(sender, ServiceBusSender)
        assert sender.entity_name == "meeting-cancellations"
        assert sender.fully_qualified_namespace == "sb-test.servicebus.windows.net"
        assert sender._credential is credential  # the SDK authenticates the AMQP link with it
    finally:
        sender.close()


def test_the_processor_wires_the_real_sender_from_app_settings() -> None:
    """With a namespace, a queue and DELAYED_RETRY_MAX_COUNT, the processor's delayed retries
    make the SDK's ServiceBusSender for that queue on first use."""
    processor = Processor(
        load_settings(
            {
                "ServiceBusConnection__fullyQualifiedNamespace": "sb-test.servicebus.windows.net",
                "CANCEL_QUEUE_NAME": "meeting-cancellations",
                "DELAYED_RETRY_MAX_COUNT": "2",
            }
        ),
        credential=ManagedIdentityCredential(),
    )
    assert processor.delayed_retries is not None
    sender = asyncio.run(processor.delayed_retries._senders.use(QUEUE, lambda sender: sender))
    try:
        assert isinstance(sender, ServiceBusSender)
        assert sender.entity_name == "meeting-cancellations"
    finally:
        sender.close()


def test_one_delayed_retry_is_allowed_when_the_count_is_one() -> None:
    """DELAYED_RETRY_MAX_COUNT=1: the first give-back schedules copy number 1; the copy's own
    give-back is dead-lettered as RetriesExhausted after 1 delayed retry."""
    assert plan(GIVE_BACK, retry_count=0, max_count=1, jitter=1.0) == Schedule(30.0, 1)
    exhausted = plan(GIVE_BACK, retry_count=1, max_count=1)
    assert isinstance(exhausted, Settlement)
    assert exhausted.description == (
        "gave up after 1 delayed retry (DELAYED_RETRY_MAX_COUNT=1); last error: Graph answered 503"
    )


def test_off_means_no_plan() -> None:
    """DELAYED_RETRY_MAX_COUNT=0 leaves every give-back to the queue."""
    assert plan(GIVE_BACK, retry_count=0, max_count=0) is None


@pytest.mark.parametrize(
    "settlement",
    [
        Settlement(Action.COMPLETE, Reason.CANCELLED),
        Settlement(Action.DEADLETTER, Reason.EVENT_NOT_FOUND, "Graph 404"),
    ],
)
def test_only_give_backs_are_planned(settlement: Settlement) -> None:
    """A completion or a dead-letter is never turned into a delayed retry."""
    assert plan(Outcome(settlement), retry_count=0, max_count=5) is None


@pytest.mark.parametrize(
    ("retry_count", "jitter", "delay"),
    [
        (0, 1.0, 30.0),
        (0, 0.0, 15.0),
        (0, 0.5, 22.5),
        (1, 1.0, 60.0),
        (2, 1.0, 120.0),
        (3, 0.0, 120.0),
        (6, 1.0, 1920.0),
        (7, 1.0, 3600.0),
        (0, -5.0, 15.0),
        (0, 7.0, 30.0),
    ],
)
def test_backoff_doubles_from_30_seconds_to_one_hour(
    retry_count: int, jitter: float, delay: float
) -> None:
    """Without a Retry-After, copy n+1 waits half to all of 30 s · 2ⁿ, at most 1 h; jitter
    outside [0, 1] is clamped."""
    step = plan(GIVE_BACK, retry_count=retry_count, max_count=100, jitter=jitter)
    assert step == Schedule(delay, retry_count + 1)


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [(0.2, 1.0), (1.0, 1.0), (1.5, 1.5), (3599.0, 3599.0), (3600.0, 3600.0), (3601.0, 3600.0)],
)
def test_graphs_wait_is_used_within_one_second_and_one_hour(
    retry_after: float, delay: float
) -> None:
    """The wait Graph asked for is used as is between 1 s and 1 h, clamped outside."""
    outcome = Outcome(GIVE_BACK.settlement, retry_after=retry_after)
    assert plan(outcome, retry_count=0, max_count=3, jitter=0.0) == Schedule(delay, 1)


def test_the_copy_carries_everything_but_the_message_id() -> None:
    """The copy is the SDK's ServiceBusMessage with the same body, content type, correlation id,
    subject and properties (decoded), the retry number, the original id and a copy check over
    them, a new MessageId and the scheduled time."""
    original = received_message(
        b'{"x": 1}',
        message_id="orig-1",
        correlation_id="corr-1",
        subject="cancel",
        application_properties={b"source": b"rooms", b"n": 7},
    )
    copy = build_copy(delivery_of(original), Schedule(30.0, 1), NOW)
    assert b"".join(copy.body) == b'{"x": 1}'
    assert copy.content_type == "application/json"
    assert (copy.correlation_id, copy.subject) == ("corr-1", "cancel")
    expected = {"source": "rooms", "n": 7, "cancelHandlerRetryCount": 1}
    expected["originalMessageId"] = "orig-1"
    assert copy.application_properties == sealed(copy.message_id, expected)
    assert len(copy.application_properties["cancelHandlerCopyCheck"]) == 32
    assert copy.message_id not in (None, "orig-1") and len(copy.message_id) == 36
    other = build_copy(delivery_of(original), Schedule(30.0, 1), NOW)
    assert other.message_id != copy.message_id, "each copy gets its own MessageId"
    assert copy.scheduled_enqueue_time_utc == NOW


def test_a_copy_of_a_copy_keeps_the_first_id() -> None:
    """A copy made from a copy keeps the first message's id and gets the next retry number."""
    first_copy = received_message(
        b"{}",
        message_id="copy-1",
        application_properties=sealed(
            "copy-1", {"originalMessageId": "orig-1", "cancelHandlerRetryCount": 1}
        ),
    )
    copy = build_copy(delivery_of(first_copy), Schedule(60.0, 2), NOW)
    assert copy.application_properties["originalMessageId"] == "orig-1"
    assert copy.application_properties["cancelHandlerRetryCount"] == 2


def test_bytes_header_values_are_decoded_for_the_copy() -> None:
    """Ids the AMQP layer hands over as bytes are copied as text (bad bytes as U+FFFD)."""

    class BytesMessage:
        body = b"{}"
        application_properties = None
        message_id = b"orig-b"
        content_type = b"application/json"
        correlation_id = b"corr-\xff"
        subject = b"subj"
        session_id = b"sess"
        reply_to = b"replies"
        reply_to_session_id = b"rs"

    copy = build_copy(delivery_of(BytesMessage()), Schedule(1.0, 1), NOW)
    assert copy.application_properties["originalMessageId"] == "orig-b"
    assert (copy.content_type, copy.correlation_id, copy.subject, copy.session_id) == (
        "application/json",
        "corr-\ufffd",
        "subj",
        "sess",
    )
    assert (copy.reply_to, copy.reply_to_session_id) == ("replies", "rs")


def test_apply_schedules_once_per_give_back_with_one_sender() -> None:
    """Two give-backs → two copies scheduled through one sender made once; each original
    completes as RetryScheduled with the copy's time and id in the description."""
    sender = RecordingSender()
    made: list[RecordingSender] = []

    def factory() -> RecordingSender:
        made.append(sender)
        return sender

    retries = DelayedRetries(3, pool(factory), QUEUE, now=lambda: NOW, rng=FixedRandom(0.0))
    message = delivered(message_id="orig-1")

    async def run() -> list[Outcome]:
        return [await retries.apply(message, GIVE_BACK) for _ in range(2)]

    outcomes = asyncio.run(run())
    assert len(made) == 1 and len(sender.scheduled) == 2
    copy, when = sender.scheduled[0]
    assert when == datetime(2026, 3, 1, 9, 0, 15, tzinfo=UTC)  # 30 s, jitter at its low end
    settlement = outcomes[0].settlement
    assert (settlement.action, settlement.reason) == (Action.COMPLETE, Reason.RETRY_SCHEDULED)
    assert settlement.description == (
        f"delayed retry 1/3 scheduled for 2026-03-01T09:00:15+00:00 as message "
        f"{copy.message_id}; Graph answered 503"
    )


def test_a_failed_schedule_gives_the_message_back_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sender that fails leaves the outcome a give-back and logs a warning naming the error
    type (not its text, which may name the namespace)."""
    retries = DelayedRetries(3, pool(lambda: RecordingSender(fail=True)), QUEUE, now=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="cancel_handler.servicebus.delayed_retry"):
        outcome = asyncio.run(retries.apply(delivered(), GIVE_BACK))
    assert outcome is GIVE_BACK
    [record] = caplog.records
    assert record.getMessage() == (
        "delayed retry not scheduled (ConnectionError); giving the message back instead"
    )
    assert record.cancel_handler == {"error": "ConnectionError"}


def test_apply_leaves_other_outcomes_alone_and_dead_letters_exhausted_ones() -> None:
    """A completion passes through unchanged; a give-back past the cap becomes the
    RetriesExhausted dead-letter with the original's other facts kept."""
    retries = DelayedRetries(2, pool(RecordingSender), QUEUE, now=lambda: NOW)
    done = Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED), attempts=1, graph_status=202)
    failing = Outcome(GIVE_BACK.settlement, attempts=4, graph_status=503)

    async def run() -> tuple[Outcome, Outcome]:
        return (
            await retries.apply(delivered(), done),
            await retries.apply(delivered(retry_count=2), failing),
        )

    unchanged, exhausted = asyncio.run(run())
    assert unchanged is done
    assert exhausted.settlement.reason is Reason.RETRIES_EXHAUSTED
    assert (exhausted.attempts, exhausted.graph_status) == (4, 503)


def test_a_long_last_error_still_fits_the_completion_description() -> None:
    """The RetryScheduled description keeps to Service Bus's 4096 characters however long the
    last error was."""
    long_give_back = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "e" * 5000))
    retries = DelayedRetries(3, pool(RecordingSender), QUEUE, now=lambda: NOW)
    outcome = asyncio.run(retries.apply(delivered(), long_give_back))
    assert outcome.settlement.reason is Reason.RETRY_SCHEDULED
    assert len(outcome.settlement.description) == 4096
