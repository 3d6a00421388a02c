"""The queue stand-in served to the instance processes over loopback HTTP (JSON bodies).

- `POST /receive {"receiver", "max", "wait"}` → `{"messages": [...]}`; 410 once the run stops.
  A receiver the scaler has not started yet gets no messages.
- `POST /settle {"lock_token", "action", "reason", "description"}` → 200, or 410 when the lock
  is unknown or lost.
- `POST /send {"messages": [...], "scheduled_at": epoch seconds or null}` → 200; a message's
  own `scheduled_at` (its `scheduled_enqueue_time_utc`) wins over the request's.

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

from bench.fleet.queue import Queue
from cancel_handler.devtools._server import LoopbackServer, send_json


class Broker(LoopbackServer):
    """The queue on 127.0.0.1; `started` holds the receivers allowed to receive; `tagger`
    labels each message sent through it (for the report)."""

    def __init__(
        self, queue: Queue, tagger: Callable[[dict[str, Any]], str] | None = None
    ) -> None:
        super().__init__(_BrokerHandler)
        self.queue = queue
        self.tagger = tagger
        self.started: set[str] = set()
        self.stopping = threading.Event()
        self._lock = threading.Lock()

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
            settled = broker.queue.settle(
                request["lock_token"],
                request["action"],
                request.get("reason"),
                request.get("description"),
            )
            return self._json(200 if settled else 410, {"settled": settled})
        if self.path == "/send":
            accepted = [
                broker.queue.send(
                    message,
                    scheduled_at=_queue_time(
                        broker, message.get("scheduled_at") or request.get("scheduled_at")
                    ),
                    tag=broker.tagger(message) if broker.tagger is not None else None,
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
        messages = broker.queue.receive(receiver, int(request.get("max", 1)), wait)
        return self._json(200, {"messages": messages})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        send_json(self, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _queue_time(broker: Broker, epoch: float | None) -> float | None:
    """A scheduled enqueue time (epoch seconds, wall clock) on the queue's clock."""
    if epoch is None:
        return None
    return broker.queue.clock() + (float(epoch) - time.time())
