"""A test double of `azure.servicebus.ServiceBusClient`: exactly the sender and receiver methods
the tools and the function use, holding the SDK's real message types, recording what was sent and
settled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from azure.servicebus import (
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusSubQueue,
)
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus.exceptions import ServiceBusError

#: What Service Bus answers when a message without SessionId is sent to a session-enabled entity
#: ("Entities that have sessions enabled can only receive messages with the SessionId set",
#: learn.microsoft.com/azure/service-bus-messaging/message-sessions).
SESSION_ID_MISSING = (
    "The SessionId was not set on a message, and it cannot be sent to the entity. Entities that "
    "have session support enabled can only receive messages that have the SessionId set to a "
    "valid value."
)


@dataclass
class Entity:
    """A reply queue or topic: `sessions` requires a SessionId; duplicate detection drops a
    MessageId it has seen (`sent` records every send call's message, `messages` what the
    entity kept). `fail_sends` makes that many next sends raise."""

    name: str
    sessions: bool = True
    duplicate_detection: bool = True
    fail_sends: int = 0
    sent: list[ServiceBusMessage] = field(default_factory=list)
    messages: list[ServiceBusMessage] = field(default_factory=list)
    completed: set[str] = field(default_factory=set)

    def accept(self, message: ServiceBusMessage) -> None:
        """Take one message as Service Bus would, or raise as it would."""
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise ServiceBusError("amqp:unauthorized-access: Unauthorized access (Send)")
        if self.sessions and not message.session_id:
            raise ServiceBusError(SESSION_ID_MISSING)
        # The SDK encodes it as it would on the wire (property types, the 256 KB Standard limit).
        ServiceBusMessageBatch(256 * 1024).add_message(message)
        self.sent.append(message)
        if self.duplicate_detection and message.message_id in {
            m.message_id for m in self.messages
        }:
            return
        self.messages.append(message)


def as_received(message: ServiceBusMessage, sequence_number: int) -> ServiceBusReceivedMessage:
    """The SDK's received form of a sent message (as a receiver would get it)."""
    body = message.body
    data = body if isinstance(body, bytes) else b"".join(body)
    amqp = Message(
        header=Header(delivery_count=1),
        properties=Properties(
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            subject=message.subject.encode() if message.subject else None,
            group_id=message.session_id.encode() if message.session_id else None,
            reply_to=message.reply_to.encode() if message.reply_to else None,
            reply_to_group_id=message.reply_to_session_id.encode()
            if message.reply_to_session_id
            else None,
        ),
        application_properties=dict(message.application_properties or {}),
        delivery_annotations={b"x-opt-lock-token": uuid.uuid4()},
        message_annotations={b"x-opt-sequence-number": sequence_number},
        data=[data],
    )
    return ServiceBusReceivedMessage(amqp, receiver=None)


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
    entities: dict[str, Entity] = field(default_factory=dict)
    #: Seconds on the double's clock; a receive that finds nothing waits `max_wait_time` on it.
    now: float = 0.0
    #: Called when a session receiver finds nothing (e.g. to let the function run meanwhile).
    on_idle: Any = None
    _locked: set[int] = field(default_factory=set)
    _send_calls: int = 0

    def add_entity(self, name: str, **options: Any) -> Entity:
        """Create a reply queue or topic (session-enabled, duplicate detection on by default)."""
        entity = self.entities[name] = Entity(name, **options)
        return entity

    def reply_sender(self, entity: str) -> _EntitySender:
        """Stands in for `servicebus_reply_senders`: a sender to an existing entity."""
        return self.get_queue_sender(entity)

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

    def get_queue_sender(self, queue_name: str) -> Any:
        if queue_name in self.entities:
            return _EntitySender(self.entities[queue_name])
        if queue_name != self.queue_name:
            raise ServiceBusError(f"The messaging entity '{queue_name}' could not be found.")
        return _Sender(self)

    def get_queue_receiver(
        self,
        queue_name: str,
        *,
        sub_queue: ServiceBusSubQueue | None = None,
        receive_mode: ServiceBusReceiveMode = ServiceBusReceiveMode.PEEK_LOCK,
        session_id: str | None = None,
        max_wait_time: float | None = None,
    ) -> Any:
        if queue_name in self.entities:
            assert session_id, "replies are read from a session-enabled queue by session id"
            return _SessionReceiver(self, self.entities[queue_name], session_id)
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


class _EntitySender:
    def __init__(self, entity: Entity) -> None:
        self._entity = entity

    def __enter__(self) -> _EntitySender:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send_messages(self, message: ServiceBusMessage) -> None:
        assert isinstance(message, ServiceBusMessage), "the SDK's message type"
        self._entity.accept(message)


class _SessionReceiver:
    """A session receiver: gets the entity's messages of one session, completes them."""

    def __init__(self, bus: FakeServiceBus, entity: Entity, session_id: str) -> None:
        self._bus = bus
        self._entity = entity
        self.session_id = session_id

    def __enter__(self) -> _SessionReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[ServiceBusReceivedMessage]:
        waiting = self._waiting(max_message_count or 1)
        if not waiting and self._bus.on_idle is not None:
            self._bus.on_idle()
            waiting = self._waiting(max_message_count or 1)
        if not waiting:
            self._bus.now += max_wait_time or 0.0
        return [as_received(m, seq) for seq, m in waiting]

    def _waiting(self, count: int) -> list[tuple[int, ServiceBusMessage]]:
        entity = self._entity
        return [
            (seq, m)
            for seq, m in enumerate(entity.messages, start=1)
            if m.session_id == self.session_id and m.message_id not in entity.completed
        ][:count]

    def complete_message(self, message: ServiceBusReceivedMessage) -> None:
        self._entity.completed.add(message.message_id)
