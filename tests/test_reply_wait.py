"""The sync and async reply waits share one loop: the same receive calls, the same slices of the
deadline, the same result, and the same parameters shown to callers."""

from __future__ import annotations

import asyncio
import inspect
import json
from types import SimpleNamespace

import pytest

from cancel_handler.ops.replies import wait_for_replies, wait_for_replies_async


def _reply(request_id: str, outcome: str = "cancelled", **data: object) -> SimpleNamespace:
    body = json.dumps({"data": {"outcome": outcome, "reason": "ok", **data}}).encode()
    return SimpleNamespace(correlation_id=request_id, body=body)


class _Receiver:
    """Hands out one list of messages per receive call; the clock moves by each wait."""

    def __init__(self, batches: list[list[SimpleNamespace]], clock: _Clock) -> None:
        self.batches = batches
        self.clock = clock
        self.waits: list[tuple[int, float]] = []
        self.completed: list[str] = []

    def receive(self, max_message_count: int, max_wait_time: float) -> list[SimpleNamespace]:
        self.waits.append((max_message_count, max_wait_time))
        if self.batches:
            return self.batches.pop(0)
        self.clock.now += max_wait_time
        return []


class _SyncReceiver(_Receiver):
    def __enter__(self) -> _SyncReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def receive_messages(self, **kwargs: float) -> list[SimpleNamespace]:
        return self.receive(**kwargs)

    def complete_message(self, message: SimpleNamespace) -> None:
        self.completed.append(message.correlation_id)


class _AsyncReceiver(_Receiver):
    async def __aenter__(self) -> _AsyncReceiver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def receive_messages(self, **kwargs: float) -> list[SimpleNamespace]:
        return self.receive(**kwargs)

    async def complete_message(self, message: SimpleNamespace) -> None:
        self.completed.append(message.correlation_id)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Client:
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver
        self.opened: list[tuple[str, str]] = []

    def get_queue_receiver(self, queue: str, *, session_id: str) -> _Receiver:
        self.opened.append((queue, session_id))
        return self.receiver


def _wait(variant: str, batches: list[list[SimpleNamespace]], ids: list[str], timeout: float):
    clock = _Clock()
    kind = _SyncReceiver if variant == "sync" else _AsyncReceiver
    receiver = kind(batches, clock)
    client = _Client(receiver)
    seen: list[str] = []
    arguments = (client, "replies", "s-1", ids, timeout)
    options = {"on_reply": lambda reply: seen.append(reply.outcome), "clock": clock}
    if variant == "sync":
        result = wait_for_replies(*arguments, **options)
    else:
        result = asyncio.run(wait_for_replies_async(*arguments, **options))
    return result, receiver, client, seen


@pytest.mark.parametrize("variant", ["sync", "async"])
def test_an_unanswered_wait_slices_the_deadline(variant: str) -> None:
    """Receive calls of at most five seconds each until the time is up; the missing ids are
    reported in the order given."""
    result, receiver, client, seen = _wait(variant, [], ["a", "b"], 12.0)
    assert receiver.waits == [(100, 5.0), (100, 5.0), (100, 2.0)]
    assert result.missing == ["a", "b"] and result.replies == [] and seen == []
    assert client.opened == [("replies", "s-1")]


@pytest.mark.parametrize("variant", ["sync", "async"])
def test_a_wait_stops_when_every_request_is_answered(variant: str) -> None:
    """Every message read is completed; other requests' replies are ignored; a fanned-out range
    adds its children; the wait ends with the last answer."""
    batches = [
        [_reply("other"), _reply("a", "fannedOut", childMessageIds=["c1"])],
        [_reply("c1", "cancelled")],
        [_reply("never read")],
    ]
    result, receiver, _, seen = _wait(variant, batches, ["a"], 30.0)
    assert len(receiver.waits) == 2
    assert receiver.completed == ["other", "a", "c1"]
    assert seen == ["fannedOut", "cancelled"]
    assert [r.request_message_id for r in result.replies] == ["a", "c1"]
    assert result.missing == [] and result.all_succeeded


@pytest.mark.parametrize("variant", ["sync", "async"])
def test_no_time_means_no_receive_call(variant: str) -> None:
    """A timeout of zero asks nothing of Service Bus and reports every id missing."""
    result, receiver, _, _ = _wait(variant, [], ["a"], 0.0)
    assert receiver.waits == [] and result.missing == ["a"]


def test_both_waits_show_the_same_parameters() -> None:
    """help() and editors show both waits' full parameter list."""
    expected = (
        "(client: 'Any', reply_to: 'str', session_id: 'str', message_ids: 'Iterable[str]', "
        "timeout_seconds: 'float', *, on_reply: 'Callable[[ReceivedReply], None] | None' = None, "
        "clock: 'Callable[[], float]' = <built-in function monotonic>) -> 'ReplyWait'"
    )
    assert str(inspect.signature(wait_for_replies)) == expected
    assert str(inspect.signature(wait_for_replies_async)) == expected
    assert inspect.iscoroutinefunction(wait_for_replies_async)
