"""Per-mailbox concurrency limit: Graph allows 4 concurrent requests per app per mailbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MailboxLimiter:
    """At most `limit` calls in flight per mailbox in this process; idle mailboxes cost nothing."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @asynccontextmanager
    async def slot(self, mailbox: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's slots for the duration of the block."""
        key = mailbox.lower()
        semaphore = self._join(key)
        try:
            async with semaphore:
                yield
        finally:
            self._leave(key)

    def _join(self, key: str) -> asyncio.Semaphore:
        """Count one more caller (running or waiting) of mailbox `key`; its semaphore."""
        entry = self._slots.get(key)
        if entry is None:
            entry = self._slots[key] = (asyncio.Semaphore(self._limit), [0])
        semaphore, users = entry
        users[0] += 1
        return semaphore

    def _leave(self, key: str) -> None:
        """Count one caller of `key` less; forget the mailbox when nobody uses it."""
        _, users = self._slots[key]
        users[0] -= 1
        if users[0] == 0:
            del self._slots[key]

    @property
    def tracked_mailboxes(self) -> int:
        """Mailboxes with a call in flight or waiting."""
        return len(self._slots)
