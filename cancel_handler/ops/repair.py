"""Resubmit or purge dead-lettered messages, one sequence number at a time, never losing one.

Both receive from the dead-letter queue in peek-lock mode. Resubmit sends the copies first and
completes the dead-lettered originals only after Service Bus accepted the send; a failed send
abandons them (they stay dead-lettered) and stops, so the order of what was resubmitted is
kept. Messages received but not selected are held locked until the end, then abandoned (their
delivery count rises; dead-lettered messages never expire and cannot be dead-lettered again).

A resubmitted copy gets a new MessageId derived from the original id and the dead-letter
sequence number: the same dead-lettered message always gets the same new id, so repeating a
resubmit inside the duplicate-detection window (a crash between send and complete) is dropped by
Service Bus, while an id never collides with the original's still-remembered id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cancel_handler.core.redaction import first_line
from cancel_handler.ops.deadletters import DEADLETTER_PROPERTY_PREFIX, message_body
from cancel_handler.ops.parameters import parameters_of
from cancel_handler.servicebus.batches import fill_batches
from cancel_handler.servicebus.messages import (
    ORIGINAL_ID_PROPERTY,
    RESUBMIT_COUNT_PROPERTY,
    RESUBMITTED_FROM_PROPERTY,
    RETRY_COUNT_PROPERTY,
    carried_properties,
    kept_fields,
    sealed,
)

#: Namespace of the derived ids (uuid5); fixed forever, or a crash-rerun would not dedupe.
RESUBMIT_ID_NAMESPACE = uuid.UUID("6c1f3e0a-5d5e-4b8e-9a51-2f0e8f3c7a10")
RECEIVE_BATCH = 100
RECEIVE_WAIT_SECONDS = 5.0

Progress = Callable[[int], None]


@dataclass
class RepairSummary:
    """Sequence numbers by outcome. `not_removed`: resubmitted, but the dead-lettered original
    could not be completed (it is still there); `skipped`: selected but not received (gone,
    locked by someone else) or not attempted after a failure."""

    done: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    not_removed: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every selected message was handled."""
        return not (self.failed or self.not_removed or self.skipped)


def resubmitted_id(original_message_id: str | None, sequence_number: int) -> str:
    """The MessageId of the copy of dead-lettered message `sequence_number`."""
    return str(uuid.uuid5(RESUBMIT_ID_NAMESPACE, f"{original_message_id}|{sequence_number}"))


def resubmit_copy(message: Any) -> Any:
    """The message to send back to the queue for a received dead-lettered `message`: body,
    correlation id, content type, subject, reply address and application properties kept
    (minus DeadLetter*),
    `originalMessageId` set once, `resubmitCount` incremented, new MessageId. The dead-letter
    reason goes along as `resubmittedFromReason` (after an exhausted retry the function then
    counts a 404 as done), and the delayed-retry count restarts. Markers the dead-lettered
    message carried but our tools did not set are dropped; the copy gets a fresh copy check."""
    from azure.servicebus import ServiceBusMessage

    properties = {
        key: value
        for key, value in carried_properties(message).items()
        if not key.startswith(DEADLETTER_PROPERTY_PREFIX) and key != RETRY_COUNT_PROPERTY
    }
    try:
        count = int(properties.get(RESUBMIT_COUNT_PROPERTY, 0))
    except (TypeError, ValueError):
        count = 0
    properties[RESUBMIT_COUNT_PROPERTY] = count + 1
    properties.setdefault(ORIGINAL_ID_PROPERTY, message.message_id)
    if message.dead_letter_reason:
        properties[RESUBMITTED_FROM_PROPERTY] = message.dead_letter_reason
    message_id = resubmitted_id(message.message_id, message.sequence_number)
    return ServiceBusMessage(
        message_body(message),
        message_id=message_id,
        application_properties=sealed(message_id, properties),
        **kept_fields(message),
    )


class _Drain:
    """The parameters of both repairs, and the receive loop they share."""

    def __init__(
        self,
        client: Any,
        queue_name: str,
        sequence_numbers: Iterable[int],
        *,
        on_progress: Progress | None = None,
        max_wait_time: float = RECEIVE_WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.queue_name = queue_name
        self.wanted = set(sequence_numbers)
        self.on_progress = on_progress
        self.max_wait_time = max_wait_time
        self.summary = RepairSummary()

    def run(self, handle: Callable[[Any, list[Any]], bool]) -> RepairSummary:
        """Receive (peek-lock) until every wanted message was handled, a receive brings nothing
        new, or `handle` reports a failure; then give back everything not settled."""
        from azure.servicebus import ServiceBusReceiveMode, ServiceBusSubQueue

        summary = self.summary
        pending, seen, unsettled = set(self.wanted), set(), {}
        receiver = self.client.get_queue_receiver(
            self.queue_name,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
        )
        with receiver:
            try:
                while pending:
                    received = receiver.receive_messages(
                        max_message_count=RECEIVE_BATCH, max_wait_time=self.max_wait_time
                    )
                    fresh = {m.sequence_number for m in received} - seen
                    seen |= fresh
                    selected = sorted(
                        (m for m in received if m.sequence_number in pending),
                        key=lambda m: m.sequence_number,
                    )
                    unsettled.update((m.sequence_number, m) for m in received)
                    pending -= {m.sequence_number for m in selected}
                    done_before = len(summary.done)
                    keep_going = not selected or handle(receiver, selected)
                    for seq in summary.done[done_before:]:
                        unsettled.pop(seq, None)
                    if not keep_going or not fresh:
                        break
            finally:
                for message in unsettled.values():
                    try:
                        receiver.abandon_message(message)
                    except Exception:  # noqa: S112 - lock already lost: it is back anyway
                        continue
        handled = set(summary.done)
        handled |= {seq for seq, _ in [*summary.failed, *summary.not_removed]}
        summary.skipped = sorted(self.wanted - handled)
        return summary


@parameters_of(_Drain)
def resubmit_dead_letters(*args: Any, **kwargs: Any) -> RepairSummary:
    """Move the selected dead-lettered messages back to the queue, in sequence-number order."""
    drain = _Drain(*args, **kwargs)
    with drain.client.get_queue_sender(drain.queue_name) as sender:

        def handle(receiver: Any, selected: list[Any]) -> bool:
            return _resubmit(receiver, sender, selected, drain.summary, drain.on_progress)

        return drain.run(handle)


@parameters_of(_Drain)
def purge_dead_letters(*args: Any, **kwargs: Any) -> RepairSummary:
    """Delete (complete) the selected dead-lettered messages."""
    drain = _Drain(*args, **kwargs)

    def handle(receiver: Any, selected: list[Any]) -> bool:
        for message in selected:
            _complete(receiver, message, drain.summary, drain.summary.failed)
        if drain.on_progress is not None:
            drain.on_progress(len(selected))
        return True

    return drain.run(handle)


def _resubmit(receiver, sender, selected, summary: RepairSummary, on_progress) -> bool:
    from azure.servicebus.exceptions import MessageSizeExceededError

    batches = fill_batches(selected, resubmit_copy, sender.create_message_batch)
    flushed = 0
    try:
        for batch, members in batches:
            if not _flush(receiver, sender, batch, members, summary, on_progress):
                return False
            flushed += len(members)
    except MessageSizeExceededError as exc:
        # Every message before this one went out in an earlier batch.
        too_large = selected[flushed].sequence_number
        summary.failed.append((too_large, f"too large to resend: {exc}"))
        return False
    return True


def _flush(receiver, sender, batch, members, summary: RepairSummary, on_progress) -> bool:
    try:
        sender.send_messages(batch)
    except Exception as exc:
        # Nothing of a failed batch was enqueued: the originals stay dead-lettered (abandoned
        # at the end of the drain).
        why = first_line(exc) or type(exc).__name__
        summary.failed.extend((m.sequence_number, why) for m in members)
        return False
    for message in members:
        _complete(receiver, message, summary, summary.not_removed)
    if on_progress is not None:
        on_progress(len(members))
    return True


def _complete(receiver, message, summary: RepairSummary, on_error: list) -> None:
    try:
        receiver.complete_message(message)
    except Exception as exc:
        on_error.append((message.sequence_number, first_line(exc) or type(exc).__name__))
    else:
        summary.done.append(message.sequence_number)
