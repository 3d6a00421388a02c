"""Wait for the function's replies to requests sent with `reply_to`: read the sender's own
session of a session-enabled reply queue until every request has its final answer or the time
is up. A sync and an async variant; both return a :class:`ReplyWait`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cancel_handler.ops.parameters import parameters_of

#: Outcomes that mean the request did what it asked (the meeting is cancelled, or the range was
#: handled); anything else final is a dead-letter.
SUCCEEDED = frozenset({"cancelled", "alreadyCancelled", "fannedOut", "previewed"})
#: Longest single receive call, so that the overall deadline is kept closely.
RECEIVE_SLICE_SECONDS = 5.0
#: Most replies one receive call takes.
RECEIVE_BATCH = 100


def new_session_id() -> str:
    """A session id of this sender's own, so that concurrent senders never take each other's
    replies from a shared reply queue."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ReceivedReply:
    """One reply, read off the reply message (application properties and CloudEvent body)."""

    request_message_id: str
    outcome: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """True for `cancelled` and `alreadyCancelled` (both: the meeting is cancelled), and
        for a handled range."""
        return self.outcome in SUCCEEDED

    @property
    def description(self) -> str | None:
        """Why it was dead-lettered (None otherwise)."""
        value = self.data.get("description")
        return value if isinstance(value, str) else None

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary of the reply."""
        summary = {
            "requestMessageId": self.request_message_id,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.description is not None:
            summary["description"] = self.description
        return summary


@dataclass
class ReplyWait:
    """The answers received, in arrival order, and the requests still unanswered."""

    replies: list[ReceivedReply] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def dead_lettered(self) -> list[ReceivedReply]:
        """Replies whose request was dead-lettered."""
        return [reply for reply in self.replies if not reply.succeeded]

    @property
    def timed_out(self) -> bool:
        """True when some request got no final answer in time."""
        return bool(self.missing)

    @property
    def all_succeeded(self) -> bool:
        """True when every request was answered and every answer is a success."""
        return not self.missing and not self.dead_lettered


def parse_reply(message: Any) -> ReceivedReply | None:
    """The reply in a received message; None when it is not one of this product's replies."""
    correlation_id = message.correlation_id
    if isinstance(correlation_id, bytes):
        correlation_id = correlation_id.decode("utf-8", "replace")
    try:
        raw = message.body
        body = raw if isinstance(raw, bytes) else b"".join(raw)
        event = json.loads(body.decode("utf-8"))
        data = event["data"]
        outcome, reason = data["outcome"], data["reason"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(correlation_id, str) and isinstance(outcome, str)):
        return None
    return ReceivedReply(correlation_id, outcome, str(reason), data)


class _Waiter:
    """The parameters of both waits and the bookkeeping shared by the sync and async loops."""

    def __init__(
        self,
        client: Any,
        reply_to: str,
        session_id: str,
        message_ids: Iterable[str],
        timeout_seconds: float,
        *,
        on_reply: Callable[[ReceivedReply], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pending = dict.fromkeys(message_ids)
        self.result = ReplyWait()
        self._on_reply = on_reply
        self._clock = clock
        self._deadline = clock() + timeout_seconds
        self._client = client
        self._where = (reply_to, session_id)

    def receiver(self) -> Any:
        """The client's receiver for the sender's own session of the reply queue."""
        reply_to, session_id = self._where
        return self._client.get_queue_receiver(reply_to, session_id=session_id)

    def waits(self) -> Iterator[float]:
        """The longest wait of each receive call, while a request is unanswered and time is
        left."""
        while self.pending and (left := self._deadline - self._clock()) > 0:
            yield min(left, RECEIVE_SLICE_SECONDS)

    def take(self, message: Any) -> None:
        """Record `message` if it answers a pending request (a fanned-out range adds its
        children, whose own replies follow); anything else in the session is ignored."""
        reply = parse_reply(message)
        if reply is None or reply.request_message_id not in self.pending:
            return
        del self.pending[reply.request_message_id]
        children = reply.data.get("childMessageIds")
        if reply.outcome == "fannedOut" and isinstance(children, list):
            self.pending.update(dict.fromkeys(c for c in children if isinstance(c, str)))
        self.result.replies.append(reply)
        if self._on_reply is not None:
            self._on_reply(reply)

    def finish(self) -> ReplyWait:
        self.result.missing = list(self.pending)
        return self.result


@parameters_of(_Waiter)
def wait_for_replies(*args: Any, **kwargs: Any) -> ReplyWait:
    """Receive the replies to `message_ids` from session `session_id` of the session-enabled
    queue `reply_to` with an open `ServiceBusClient`, completing each message read; stop when
    all are answered or after `timeout_seconds`."""
    waiter = _Waiter(*args, **kwargs)
    with waiter.receiver() as receiver:
        for wait in waiter.waits():
            for message in receiver.receive_messages(
                max_message_count=RECEIVE_BATCH, max_wait_time=wait
            ):
                receiver.complete_message(message)
                waiter.take(message)
    return waiter.finish()


@parameters_of(_Waiter)
async def wait_for_replies_async(*args: Any, **kwargs: Any) -> ReplyWait:
    """The asyncio variant of :func:`wait_for_replies` (an `azure.servicebus.aio` client)."""
    waiter = _Waiter(*args, **kwargs)
    async with waiter.receiver() as receiver:
        for wait in waiter.waits():
            for message in await receiver.receive_messages(
                max_message_count=RECEIVE_BATCH, max_wait_time=wait
            ):
                await receiver.complete_message(message)
                waiter.take(message)
    return waiter.finish()
