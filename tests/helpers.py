"""Test building blocks: Service Bus messages as the function receives them (host bytes decoded
by the binding extension) and recording settlement doubles."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage

from cancel_handler.devtools.host_message import delivered_copy, host_delivered_message
from cancel_handler.settings import CODE_SETTINGS

#: The machine's identity and app settings that azure-identity or the app would read; every test
#: starts without them.
AMBIENT_SETTINGS = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IMDS_ENDPOINT",
    "SERVICEBUS_NAMESPACE",
    # Every setting the app's code reads, so a new setting is cleared without a second list.
    *CODE_SETTINGS,
)


def received_message(
    body: bytes | dict,
    *,
    delivery_count: int | None = 1,
    message_id: str | None = None,
    correlation_id: str | None = None,
    application_properties: dict | None = None,
    sequence_number: int = 1,
    enqueued_time: datetime | None = None,
    subject: str | None = None,
    dead_letter_reason: str | None = None,
    dead_letter_error_description: str | None = None,
    reply_to: str | None = None,
    reply_to_session_id: str | None = None,
    content_type: str = "application/json",
) -> ServiceBusReceivedMessage:
    """A real `azure.servicebus.ServiceBusReceivedMessage` as the function receives it: the
    host's bytes (lock token + whole AMQP message) decoded by the binding extension.

    Application properties may be given as received (bytes keys and values); they are sent as
    the strings a sender sets. Dead-lettered messages carry `DeadLetterReason` and
    `DeadLetterErrorDescription` as application properties, as on the wire.
    `delivery_count=None` leaves the AMQP header's count out."""
    properties = {_text(key): _text(value) for key, value in (application_properties or {}).items()}
    if dead_letter_reason is not None:
        properties["DeadLetterReason"] = dead_letter_reason
    if dead_letter_error_description is not None:
        properties["DeadLetterErrorDescription"] = dead_letter_error_description
    return host_delivered_message(
        body,
        message_id=message_id,
        delivery_count=delivery_count,
        sequence_number=sequence_number,
        enqueued_time=enqueued_time,
        correlation_id=correlation_id,
        subject=subject,
        content_type=content_type,
        reply_to=reply_to,
        reply_to_session_id=reply_to_session_id,
        application_properties=properties,
    )


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def as_delivered(copy: Any, delivery_count: int = 1, **changes: Any) -> ServiceBusReceivedMessage:
    """A `ServiceBusMessage` our tools sent (a delayed retry, a resubmission, a range's child),
    as the trigger later receives it; `changes` replace the message id or application
    properties."""
    return delivered_copy(copy, delivery_count=delivery_count, **changes)


@dataclass
class Settled:
    """One settlement call as the host would receive it."""

    action: str
    message: Any
    reason: str | None = None
    description: str | None = None


@dataclass
class RecordingActions:
    """Has `ServiceBusMessageActions`' settlement signatures; records calls, can be told to fail,
    and calls `on_settle` with each call as it arrives (to look at the world at that moment)."""

    fail_on: set[str] = field(default_factory=set)
    settled: list[Settled] = field(default_factory=list)
    on_settle: Callable[[Settled], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, item: Settled) -> None:
        if self.on_settle is not None:
            self.on_settle(item)
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
