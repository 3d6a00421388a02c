"""The function's Service Bus senders: one sync SDK sender per entity, made on first use and
used under its own lock off the event loop (the SDK's sync senders are not thread-safe).

Fan-out, delayed retries and replies all send through a :class:`SenderPool`; in Azure one pool
serves them all over one `ServiceBusClient` authenticated with the Function App's identity.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class SenderPool:
    """Senders by entity name, made by `make(entity)` on first use and kept."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._senders: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    async def use[T](self, entity: str, action: Callable[[Any], T]) -> T:
        """`action(sender)` for `entity`'s sender, in a worker thread, one call at a time per
        entity; raises whatever making the sender or the action raises."""
        return await asyncio.to_thread(self._use, entity, action)

    def _use[T](self, entity: str, action: Callable[[Any], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(entity, threading.Lock())
        with lock:
            sender = self._senders.get(entity)
            if sender is None:
                sender = self._senders[entity] = self._make(entity)
            return action(sender)


def servicebus_senders(namespace: str, credential: Callable[[], Any]) -> Callable[[str], Any]:
    """`make` for a :class:`SenderPool` of the real SDK (AMQP over TLS): one `ServiceBusClient`
    on `namespace`, authenticated with `credential()` when the first sender is made.

    `get_queue_sender` serves topics as well: the SDK's sender addresses `amqps://<namespace>/
    <entity name>` whether it was made for a queue or a topic (azure-servicebus
    `ServiceBusSender.__init__`), so a reply_to may name either. The identity needs *Azure
    Service Bus Data Sender* on each entity it sends to."""
    client: list[Any] = []
    lock = threading.Lock()

    def make(entity: str) -> Any:
        from azure.servicebus import ServiceBusClient

        with lock:
            if not client:
                client.append(ServiceBusClient(namespace, credential()))
        return client[0].get_queue_sender(entity)

    return make
