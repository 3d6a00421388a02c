"""A test double of `azure.servicebus.ServiceBusClient`: exactly the sender and receiver methods
the tools use, holding the SDK's real message types, recording what was sent and settled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)


@dataclass
class FakeServiceBus:
    """One namespace with one queue and its dead-letter queue.

    `events` logs sends and settlements in order: ("send", [message ids]), ("complete", seq),
    ("abandon", seq). `fail_sends` makes the n-th send call (1-based) raise.
    """

    queue_name: str = "cancel-requests"
    batch_max_bytes: int | None = None
    fail_sends: set[int] = field(default_factory=set)
    sent: list[ServiceBusMessage] = field(default_factory=list)
    dead_letters: dict[int, ServiceBusReceivedMessage] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    receive_modes: list[Any] = field(default_factory=list)
    closed: bool = False
    _locked: set[int] = field(default_factory=set)
    _send_calls: int = 0

    def add_dead_letter(self, message: ServiceBusReceivedMessage) -> None:
        """Put a dead-lettered message in the dead-letter queue."""
        self.dead_letters[message.sequence_number] = message

    def factory(self, target: Any) -> FakeServiceBus:
        """Stands in for `ClientFactory`: checks the queue and returns this double."""
        self.target = target
        return self

    # ServiceBusClient
    def __enter__(self) -> FakeServiceBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def get_queue_sender(self, queue_name: str) -> _Sender:
        assert queue_name == self.queue_name
        return _Sender(self)

    def get_queue_receiver(
        self,
        queue_name: str,
        *,
        sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
    ) -> _Receiver:
        assert queue_name == self.queue_name
        assert sub_queue == ServiceBusSubQueue.DEAD_LETTER, "only the DLQ is read"
        assert receive_mode == ServiceBusReceiveMode.PEEK_LOCK, "never receive-and-delete"
        self.receive_modes.append(receive_mode)
        return _Receiver(self)

    @property
    def sent_ids(self) -> list[str]:
        """MessageIds sent, in order."""
        return [m.message_id for m in self.sent]


class _Sender:
    def __init__(self, bus: FakeServiceBus) -> None:
        self._bus = bus

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def create_message_batch(self, max_size_in_bytes: int | None = None) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes or self._bus.batch_max_bytes)

    def send_messages(self, message: Any) -> None:
        bus = self._bus
        bus._send_calls += 1
        if bus._send_calls in bus.fail_sends:
            raise ConnectionError("link detached")
        # The batch keeps its messages privately; reading them is the double's business only.
        messages = (
            list(message._messages) if isinstance(message, ServiceBusMessageBatch) else [message]
        )
        bus.sent.extend(messages)
        bus.events.append(("send", [m.message_id for m in messages]))


class _Receiver:
    def __init__(self, bus: FakeServiceBus) -> None:
        self._bus = bus

    def __enter__(self) -> _Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def peek_messages(
        self, max_message_count: int = 1, *, sequence_number: int = 0
    ) -> list[ServiceBusReceivedMessage]:
        available = sorted(s for s in self._bus.dead_letters if s >= sequence_number)
        return [self._bus.dead_letters[s] for s in available[:max_message_count]]

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        bus = self._bus
        free = sorted(s for s in bus.dead_letters if s not in bus._locked)[:max_message_count]
        bus._locked.update(free)
        return [bus.dead_letters[s] for s in free]

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        seq = message.sequence_number
        assert seq in self._bus._locked, "completing a message that is not locked"
        self._bus._locked.discard(seq)
        del self._bus.dead_letters[seq]
        self._bus.events.append(("complete", seq))

    def abandon_message(self, message: ServiceBusReceivedMessage) -> None:
        seq = message.sequence_number
        assert seq in self._bus._locked, "abandoning a message that is not locked"
        self._bus._locked.discard(seq)
        self._bus.events.append(("abandon", seq))
