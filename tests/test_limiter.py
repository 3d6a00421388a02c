"""The per-mailbox limiter with interleaved callers: each step is driven by asyncio events, so
the order of entering and leaving is fixed and no test depends on timing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from cancel_handler.graph.limiter import MailboxLimiter

#: Graph: "4 concurrent requests per app per mailbox" (the limit the product configures).
GRAPH_MAILBOX_CONCURRENCY = 4


async def _quiesce() -> None:
    """Let every runnable task run until it blocks (yields to the loop; no wall-clock wait)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Caller:
    """One call holding a mailbox slot until released; records when it got in."""

    def __init__(self, limiter: MailboxLimiter, mailbox: str, inside: list[str], name: str):
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.name = name
        self.peak: list[int] = []
        self.task = asyncio.create_task(self._run(limiter, mailbox, inside))

    async def _run(self, limiter: MailboxLimiter, mailbox: str, inside: list[str]) -> None:
        async with limiter.slot(mailbox):
            inside.append(self.name)
            self.peak.append(len(inside))
            self.entered.set()
            await self.release.wait()
            inside.remove(self.name)

    async def finish(self) -> None:
        """Release the slot and wait until the caller has left."""
        self.release.set()
        await self.task


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_a_fifth_call_waits_for_one_of_four_to_finish() -> None:
    """With Graph's limit of 4, four calls for one mailbox run and the fifth waits until one
    of them leaves; then it runs."""

    async def scenario() -> None:
        limiter = MailboxLimiter(GRAPH_MAILBOX_CONCURRENCY)
        inside: list[str] = []
        callers = [Caller(limiter, "adele@contoso.com", inside, f"c{i}") for i in range(5)]
        await _quiesce()
        assert sorted(inside) == ["c0", "c1", "c2", "c3"]
        assert not callers[4].entered.is_set()
        await callers[2].finish()
        await callers[4].entered.wait()
        assert sorted(inside) == ["c0", "c1", "c3", "c4"]
        for caller in callers:
            await caller.finish()
        assert inside == [] and limiter.tracked_mailboxes == 0

    _run(scenario)


def test_mailboxes_do_not_share_slots() -> None:
    """A busy mailbox does not hold up another one; the mailbox name is case-insensitive."""

    async def scenario() -> None:
        limiter = MailboxLimiter(1)
        busy: list[str] = []
        other: list[str] = []
        first = Caller(limiter, "Adele@Contoso.com", busy, "a1")
        same = Caller(limiter, "adele@contoso.com", busy, "a2")
        elsewhere = Caller(limiter, "megan@contoso.com", other, "m1")
        await _quiesce()
        assert busy == ["a1"] and other == ["m1"] and not same.entered.is_set()
        assert limiter.tracked_mailboxes == 2
        await first.finish()
        await same.entered.wait()
        await same.finish()
        await elsewhere.finish()
        assert limiter.tracked_mailboxes == 0

    _run(scenario)


def test_a_mailbox_is_not_forgotten_while_a_call_is_in_flight() -> None:
    """When the first callers leave while a later one is still inside, the mailbox keeps its
    semaphore: newcomers still wait, never more than the limit run at once."""

    async def scenario() -> None:
        limiter = MailboxLimiter(2)
        inside: list[str] = []
        a, b, c = (Caller(limiter, "adele@contoso.com", inside, n) for n in "abc")
        await _quiesce()
        assert sorted(inside) == ["a", "b"] and not c.entered.is_set()
        await a.finish()
        await c.entered.wait()
        await b.finish()  # c is still inside
        assert limiter.tracked_mailboxes == 1
        d, e, f = (Caller(limiter, "adele@contoso.com", inside, n) for n in "def")
        await _quiesce()
        assert sorted(inside) == ["c", "d"], "only one newcomer may join c"
        assert not e.entered.is_set() and not f.entered.is_set()
        for caller in (c, d, e, f):
            await caller.finish()
        assert max(p for x in (a, b, c, d, e, f) for p in x.peak) == 2
        assert limiter.tracked_mailboxes == 0

    _run(scenario)


def test_a_failing_call_gives_its_slot_back() -> None:
    """An exception inside the block releases the slot and propagates; the mailbox is forgotten."""

    async def scenario() -> None:
        limiter = MailboxLimiter(1)
        with pytest.raises(RuntimeError, match="graph down"):
            async with limiter.slot("adele@contoso.com"):
                raise RuntimeError("graph down")
        assert limiter.tracked_mailboxes == 0
        inside: list[str] = []
        caller = Caller(limiter, "adele@contoso.com", inside, "next")
        await caller.entered.wait()
        await caller.finish()

    _run(scenario)


def test_a_caller_cancelled_while_waiting_is_not_counted() -> None:
    """A call cancelled while waiting for a slot leaves no trace: when the holder leaves, the
    mailbox is forgotten and the next caller gets in at once."""

    async def scenario() -> None:
        limiter = MailboxLimiter(1)
        inside: list[str] = []
        holder = Caller(limiter, "adele@contoso.com", inside, "holder")
        waiter = Caller(limiter, "adele@contoso.com", inside, "waiter")
        await _quiesce()
        waiter.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter.task
        assert limiter.tracked_mailboxes == 1
        await holder.finish()
        assert limiter.tracked_mailboxes == 0
        late = Caller(limiter, "adele@contoso.com", inside, "late")
        await late.entered.wait()
        await late.finish()

    _run(scenario)
