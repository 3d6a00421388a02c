"""The queue stand-ins served to the instance processes over loopback HTTP (JSON bodies).

- `POST /receive {"receiver", "max", "wait", "queue"}` → `{"messages": [...]}`; 410 once the
  run stops. A receiver the scaler has not started yet gets no messages. `queue` names the
  entity (default: the first).
- `POST /settle {"lock_token", "action", "reason", "description"}` → 200, or 410 when the lock
  is unknown or lost (lock tokens are unique across the queues).
- `POST /send {"entity", "messages": [...], "scheduled_at": epoch seconds or null}` → 200; a
  message's own `scheduled_at` (its `scheduled_enqueue_time_utc`) wins over the request's. A
  design (`bench/fleet/design.py`) may route a child request sent to the cancel queue to the
  children queue with a SessionId, or schedule it later.

A message travels as the fields the instance needs to build the host's bytes: `body` (base64),
`message_id`, `correlation_id`, `content_type`, `reply_to`, `reply_to_session_id`, `session_id`,
`application_properties` (text keys and values).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from bench.fleet.design import CHILD_QUEUE_NAME, Design, is_child
from bench.fleet.queue import Queue
from cancel_handler.devtools._server import LoopbackServer, send_json


class Broker(LoopbackServer):
    """The queues on 127.0.0.1 (`queue` is the cancel queue; `children`, when given, the
    session-enabled children queue); `started` holds the receivers allowed to receive; `tagger`
    labels each message sent through it (for the report)."""

    def __init__(
        self,
        queue: Queue,
        tagger: Callable[[dict[str, Any]], str] | None = None,
        *,
        children: Queue | None = None,
        design: Design | None = None,
    ) -> None:
        super().__init__(_BrokerHandler)
        self.queue = queue
        self.children = children
        self.design = design or Design()
        self.tagger = tagger
        self.started: set[str] = set()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._child_index: dict[str, int] = {}

    def queue_named(self, name: str | None) -> Queue:
        """The queue an entity name stands for (the children queue by its name, else the
        cancel queue)."""
        if name == CHILD_QUEUE_NAME and self.children is not None:
            return self.children
        return self.queue

    def holder(self, lock_token: str) -> Queue:
        """The queue whose lock `lock_token` is (the cancel queue when none holds it)."""
        if self.children is not None and self.children.holds(lock_token):
            return self.children
        return self.queue

    def send(self, entity: str | None, message: dict[str, Any], scheduled_at: float | None) -> bool:
        """Accept one message sent to `entity`, the design applied to a child request sent to
        the cancel queue."""
        target = self.queue_named(entity)
        if target is self.queue and is_child(message) and not message.get("session_id"):
            parent = message["application_properties"]["parentMessageId"]
            with self._lock:
                index = self._child_index.get(parent, 0)
                self._child_index[parent] = index + 1
            session, delay = self.design.route(message, index)
            if session is not None and self.children is not None:
                target = self.children
            if delay:
                scheduled_at = self.queue.clock() + delay
        tag = self.tagger(message) if self.tagger is not None else None
        return target.send(message, scheduled_at=scheduled_at, tag=tag)

    def start_receiver(self, receiver: str) -> None:
        """Let `receiver` (an instance the scaler started) take messages."""
        with self._lock:
            self.started.add(receiver)

    def is_started(self, receiver: str) -> bool:
        """True when `receiver` may take messages."""
        with self._lock:
            return receiver in self.started


class _BrokerHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        broker: Broker = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/receive":
            return self._receive(broker, request)
        if self.path == "/settle":
            settled = broker.holder(request["lock_token"]).settle(
                request["lock_token"],
                request["action"],
                request.get("reason"),
                request.get("description"),
            )
            return self._json(200 if settled else 410, {"settled": settled})
        if self.path == "/send":
            accepted = [
                broker.send(
                    request.get("entity"),
                    message,
                    _queue_time(broker, message.get("scheduled_at") or request.get("scheduled_at")),
                )
                for message in request["messages"]
            ]
            return self._json(200, {"accepted": accepted})
        return self._json(404, {"error": self.path})

    def _receive(self, broker: Broker, request: dict[str, Any]) -> None:
        receiver, wait = request["receiver"], float(request.get("wait", 1.0))
        if broker.stopping.is_set():
            return self._json(410, {"messages": []})
        if not broker.is_started(receiver):
            broker.stopping.wait(wait)
            return self._json(200, {"messages": []})
        queue = broker.queue_named(request.get("queue"))
        messages = queue.receive(receiver, int(request.get("max", 1)), wait)
        return self._json(200, {"messages": messages})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        send_json(self, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _queue_time(broker: Broker, epoch: float | None) -> float | None:
    """A scheduled enqueue time (epoch seconds, wall clock) on the queue's clock."""
    if epoch is None:
        return None
    return broker.queue.clock() + (float(epoch) - time.time())
