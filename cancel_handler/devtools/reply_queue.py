"""A local stand-in for a session-enabled reply queue (demo only): keeps the SDK's
`ServiceBusMessage` objects the function sends, refuses a message without SessionId as a
session-enabled Service Bus queue does, and drops a MessageId it already holds (duplicate
detection)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LocalReplyQueue:
    """One reply queue; `sender_for(name)` is what the function's `Replies` sends through."""

    name: str
    messages: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sender_for(self, entity: str) -> LocalReplyQueue:
        """A sender to this queue (the only entity there is)."""
        if entity != self.name:
            raise LookupError(f"The messaging entity '{entity}' could not be found.")
        return self

    def send_messages(self, message: Any) -> None:
        """Accept one reply as the queue would."""
        if not message.session_id:
            raise ValueError("The SessionId was not set on a message, and it cannot be sent to "
                             "the entity: the reply queue is session-enabled.")
        with self._lock:
            if all(kept.message_id != message.message_id for kept in self.messages):
                self.messages.append(message)

    def session(self, session_id: str) -> list[dict]:
        """The CloudEvents of one session's replies, in arrival order."""
        events = []
        for message in self.messages:
            if message.session_id == session_id:
                body = message.body
                events.append(json.loads(body if isinstance(body, bytes) else b"".join(body)))
        return events
