"""Test building blocks: real Service Bus received messages and a recording settlement double."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage
from azure.servicebus._pyamqp.message import Header, Message, Properties


def received_message(
    body: bytes | dict,
    *,
    delivery_count: int = 1,
    message_id: str | None = None,
    correlation_id: str | None = None,
    application_properties: dict | None = None,
    sequence_number: int = 1,
    enqueued_time: datetime | None = None,
    subject: str | None = None,
    dead_letter_reason: str | None = None,
    dead_letter_error_description: str | None = None,
) -> ServiceBusReceivedMessage:
    """A real `azure.servicebus.ServiceBusReceivedMessage` with a lock token, as the binding
    hands it to the function. (Built through the SDK's private AMQP types, only here.)

    Dead-lettered messages carry `DeadLetterReason`/`DeadLetterErrorDescription` as application
    properties (bytes, as on the wire); the enqueued time is the `x-opt-enqueued-time`
    annotation in milliseconds since the epoch."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    properties = dict(application_properties or {})
    if dead_letter_reason is not None:
        properties[b"DeadLetterReason"] = dead_letter_reason.encode()
    if dead_letter_error_description is not None:
        properties[b"DeadLetterErrorDescription"] = dead_letter_error_description.encode()
    annotations: dict = {b"x-opt-sequence-number": sequence_number}
    if enqueued_time is not None:
        annotations[b"x-opt-enqueued-time"] = int(enqueued_time.timestamp() * 1000)
    amqp = Message(
        header=Header(delivery_count=delivery_count),
        properties=Properties(
            message_id=message_id or str(uuid.uuid4()),
            correlation_id=correlation_id,
            content_type="application/json",
            subject=subject.encode() if subject is not None else None,
        ),
        application_properties=properties,
        delivery_annotations={b"x-opt-lock-token": uuid.uuid4()},
        message_annotations=annotations,
        data=[body],
    )
    return ServiceBusReceivedMessage(amqp, receiver=None)


def as_delivered(copy: Any, delivery_count: int = 1, **changes: Any) -> ServiceBusReceivedMessage:
    """A `ServiceBusMessage` our tools sent, as the trigger later receives it (bytes keys and
    string values, as on the wire); `changes` replace the message id or application properties."""
    sent = changes.pop("application_properties", None) or copy.application_properties or {}
    properties = {
        key.encode(): value.encode() if isinstance(value, str) else value
        for key, value in sent.items()
    }
    return received_message(
        b"".join(copy.body),
        delivery_count=delivery_count,
        message_id=changes.pop("message_id", copy.message_id),
        correlation_id=copy.correlation_id,
        application_properties=properties,
    )


@dataclass
class Settled:
    """One settlement call as the host would receive it."""

    action: str
    message: Any
    reason: str | None = None
    description: str | None = None


@dataclass
class RecordingActions:
    """Has `ServiceBusMessageActions`' settlement signatures; records calls, can be told to fail."""

    fail_on: set[str] = field(default_factory=set)
    settled: list[Settled] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, item: Settled) -> None:
        if item.action in self.fail_on:
            raise RuntimeError(f"host refused {item.action}: LockToken not found")
        with self._lock:
            self.settled.append(item)

    def complete(self, message: Any) -> None:
        self._record(Settled("complete", message))

    def abandon(self, message: Any) -> None:
        self._record(Settled("abandon", message))

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self._record(
            Settled("deadletter", message, deadletter_reason, deadletter_error_description)
        )

    @property
    def only(self) -> Settled:
        """The single settlement recorded (fails the test if there is not exactly one)."""
        assert len(self.settled) == 1, self.settled
        return self.settled[0]


class RecordingSleep:
    """An injected `sleep` that records the waits and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class RecordingSender:
    """Has the one `ServiceBusSender` method delayed retries use; keeps the SDK's real
    `ServiceBusMessage` objects it was given, or raises when told to fail."""

    fail: bool = False
    scheduled: list[tuple[Any, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def schedule_messages(self, messages: Any, schedule_time_utc: Any) -> list[int]:
        if self.fail:
            raise ConnectionError("amqp:unauthorized-access: Unauthorized access to the queue")
        items = list(messages) if isinstance(messages, list) else [messages]
        with self._lock:
            self.scheduled.extend((m, schedule_time_utc) for m in items)
            return list(range(len(self.scheduled) - len(items), len(self.scheduled)))
