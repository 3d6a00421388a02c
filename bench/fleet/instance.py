"""One Function App instance of the fleet: `python -m bench.fleet.instance '<json>'`.

A process of its own with the real `function_app` (its own event loop, per-mailbox limiter,
token cache and HTTP client), standing in for the Functions host around it:

- it keeps up to `max_concurrent_calls` (host.json `maxConcurrentCalls`) messages in hand,
  receiving from the broker only as many as it has free slots (host.json `prefetchCount: 0`);
- each message becomes the host's bytes (`host_message_content`: lock token, whole AMQP
  message) decoded by the binding extension, and `cancel_meeting` is invoked with the real
  `ServiceBusMessageActions`, whose gRPC settlement service here forwards to the broker;
- an invocation that raises without having settled its message is abandoned (the Service Bus
  extension's behaviour as read in its source; unconfirmed for the Python worker's path, and the
  function settles every message itself, so it matters only for a failed settlement);
- the function's own sends (a date range's child requests, delayed-retry copies) go to the
  broker through a sender with the SDK's `send_messages` / `schedule_messages` surface.

Settings come from the JSON's `environment` (app settings). It stops when the broker answers
410, at `deadline` (epoch seconds), or when its standard input closes (the parent is gone).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

#: Seconds one idle receive waits at the broker.
RECEIVE_WAIT = 0.5


class BrokerLink:
    """Blocking JSON calls to the broker (from worker threads: settlement and sends), over one
    kept-alive connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._address = urlsplit(url)
        self._local = threading.local()

    def post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST `payload`; the status and the decoded answer."""
        body = json.dumps(payload).encode()
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(
                    self._address.hostname, self._address.port, timeout=30
                )
                self._local.connection = connection
            try:
                connection.request(
                    "POST", path, body=body, headers={"Content-Type": "application/json"}
                )
                answer = connection.getresponse()
                return answer.status, json.loads(answer.read() or b"{}")
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def forward_settlement(
        self, action: str, lock_token: str, reason: str | None, description: str | None
    ) -> bool:
        """Settle at the broker; False when the lock is lost."""
        status, _ = self.post(
            "/settle",
            {
                "lock_token": lock_token,
                "action": action,
                "reason": reason,
                "description": description,
            },
        )
        return status == 200


class BrokerSender:
    """The `ServiceBusSender` surface the function uses, sending to the broker."""

    def __init__(self, link: BrokerLink) -> None:
        self._link = link

    def create_message_batch(self) -> Any:
        from azure.servicebus import ServiceBusMessageBatch

        return ServiceBusMessageBatch()

    def send_messages(self, batch: Any) -> None:
        # The batch keeps its messages privately; only this stand-in reads them back.
        messages = getattr(batch, "_messages", None)
        self._send(messages if messages is not None else [batch], None)

    def schedule_messages(self, messages: Any, schedule_time_utc: datetime) -> list[int]:
        self._send(list(messages), schedule_time_utc.timestamp())
        return [0] * len(messages)

    def _send(self, messages: list[Any], scheduled_at: float | None) -> None:
        status, _ = self._link.post(
            "/send", {"messages": [wire(m) for m in messages], "scheduled_at": scheduled_at}
        )
        if status != 200:
            raise RuntimeError(f"broker refused the send ({status})")


def wire(message: Any) -> dict[str, Any]:
    """A `ServiceBusMessage` as the broker keeps it (with its scheduled enqueue time, if set)."""
    scheduled = message.scheduled_enqueue_time_utc
    return {
        "scheduled_at": scheduled.timestamp() if scheduled is not None else None,
        "body": base64.b64encode(b"".join(message.body)).decode(),
        "message_id": _text(message.message_id),
        "correlation_id": _text(message.correlation_id),
        "content_type": _text(message.content_type),
        "subject": _text(message.subject),
        "session_id": _text(message.session_id),
        "reply_to": _text(message.reply_to),
        "reply_to_session_id": _text(message.reply_to_session_id),
        "application_properties": {
            _text(k): _text(v) for k, v in (message.application_properties or {}).items()
        },
    }


def received(fields: dict[str, Any]) -> Any:
    """The `ServiceBusReceivedMessage` the function receives for a broker message."""
    from cancel_handler.devtools.host_message import decode_as_worker, host_message_content

    now = datetime.now(UTC)
    content = host_message_content(
        base64.b64decode(fields["body"]),
        lock_token=uuid.UUID(fields["lock_token"]),
        message_id=fields["message_id"],
        delivery_count=fields["delivery_count"],
        sequence_number=fields["sequence_number"],
        enqueued_time=now,
        locked_until=now + timedelta(seconds=fields["lock_duration"]),
        correlation_id=fields.get("correlation_id"),
        content_type=fields.get("content_type"),
        subject=fields.get("subject"),
        session_id=fields.get("session_id"),
        reply_to=fields.get("reply_to"),
        reply_to_session_id=fields.get("reply_to_session_id"),
        application_properties=fields.get("application_properties") or None,
    )
    return decode_as_worker(content)


async def serve(config: dict[str, Any], function: Any, actions: Any, link: BrokerLink) -> None:
    """Receive and invoke until the broker stops the run or the deadline passes."""
    import httpx

    slots = asyncio.Semaphore(int(config["max_concurrent_calls"]))
    running: set[asyncio.Task] = set()
    receiver, deadline = config["receiver"], float(config["deadline"])

    async def invoke(fields: dict[str, Any]) -> None:
        try:
            message = received(fields)
            await function(message=message, message_actions=actions)
        except Exception:
            # The host abandons a message the function raised on without settling it.
            await asyncio.to_thread(
                link.forward_settlement, "abandon", fields["lock_token"], None, None
            )
        finally:
            slots.release()

    async with httpx.AsyncClient(base_url=link.url, timeout=30) as client:
        while time.time() < deadline:
            await slots.acquire()
            free = 1
            while not slots.locked():
                await slots.acquire()
                free += 1
            answer = await client.post(
                "/receive", json={"receiver": receiver, "max": free, "wait": RECEIVE_WAIT}
            )
            if answer.status_code == 410:
                break
            messages = answer.json()["messages"]
            for _ in range(free - len(messages)):
                slots.release()
            for fields in messages:
                task = asyncio.create_task(invoke(fields))
                running.add(task)
                task.add_done_callback(running.discard)
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def _watch_parent() -> None:
    """Exit when the parent closes our standard input (it ended or died)."""
    sys.stdin.read()
    os._exit(0)


def main() -> int:
    config = json.loads(sys.argv[1])
    os.environ.update(config["environment"])
    threading.Thread(target=_watch_parent, daemon=True).start()

    from cancel_handler.devtools.functions_host import SettlementService, settlement_host
    from cancel_handler.runtime import send_locally
    from cancel_handler.servicebus.senders import SenderPool

    link = BrokerLink(config["broker_url"])
    service = SettlementService(forward=link.forward_settlement)
    # The function's sends (child requests, delayed-retry copies) go to the broker: the seam
    # the processor function_app builds on import takes them.
    send_locally(SenderPool(lambda entity: BrokerSender(link)))
    with settlement_host(service, workers=int(config["max_concurrent_calls"])) as (_, actions):
        import function_app

        processor = function_app.processor
        [function] = function_app.app.get_functions()
        user_function = function.get_user_function()
        print(json.dumps({"ready": config["receiver"]}), flush=True)

        async def run() -> None:
            try:
                await serve(config, user_function, actions, link)
            finally:
                await processor.aclose()

        asyncio.run(run())
    return 0


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


if __name__ == "__main__":
    raise SystemExit(main())
