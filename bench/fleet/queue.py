"""A Service Bus queue stand-in with the semantics the fleet's outcome depends on.

Each rule is pinned to Microsoft's documentation:

- Peek-lock: a received message is locked for the queue's lock duration; the receiver
  completes, abandons or dead-letters it; when the lock expires the message becomes available
  again (https://learn.microsoft.com/azure/service-bus-messaging/message-transfers-locks-settlement#peeklock).
- Delivery count: "Whenever a message has been delivered under a peek-lock, but has been
  either explicitly abandoned or the lock has expired, the delivery count on the message is
  incremented. When the delivery count exceeds the limit, the message is moved to the DLQ"
  with reason `MaxDeliveryCountExceeded` (default limit 10)
  (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-dead-letter-queues#maximum-delivery-count).
  The count a receiver sees starts at 1 (.NET `ServiceBusReceivedMessage.DeliveryCount`; the
  header of Microsoft's own sample of the host's bytes says 1 on a first delivery).
- Scheduled enqueue: a scheduled message becomes available at its scheduled time
  (https://learn.microsoft.com/azure/service-bus-messaging/message-sequencing#scheduled-messages).
- Duplicate detection: a message whose MessageId was seen within the detection window is
  accepted and dropped (https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection).
- Lock renewal by the Functions host: the trigger renews the lock of a message whose invocation
  is running, up to host.json `maxAutoLockRenewalDuration` (5 minutes here)
  (https://learn.microsoft.com/azure/azure-functions/functions-bindings-service-bus#hostjson-settings).
  Modelled as a lock that lasts `max(lock_duration, max_auto_lock_renewal)` from delivery.

Unknown, and so a parameter or a stated model: the order in which available messages are
handed out (here: by sequence number, so a given-back message is next), and how long renewal
keeps a lock after the renewal window ends (here: not at all).

Sessions (`QueueRules.sessions`): a session-enabled queue hands a receiver whole sessions, one
receiver per session at a time (https://learn.microsoft.com/azure/service-bus-messaging/message-sessions);
the host accepts up to `maxConcurrentSessions` sessions per instance (default 8) and runs
`maxConcurrentCallsPerSession` invocations per session (default 1): the Service Bus extension's
`ServiceBusOptions` (Microsoft.Azure.WebJobs.Extensions.ServiceBus, src/Config/ServiceBusOptions.cs,
which passes both to the SDK's `ServiceBusSessionProcessorOptions`). A session is closed when the
receiver has had nothing from it for `sessionIdleTimeout` (same file: when unset, the client's
`TryTimeout`, 60 s); another receiver may then accept it.

An instance that dies (`receiver_gone`) renews nothing any more: the message locks it held, and so
its session locks, expire a lock duration later; each such message counts a failed delivery and
comes back, its session free for another receiver (peek-lock and session lock rules above).

Times are seconds of one clock (`time.monotonic` by default); every duration in
:class:`QueueRules` is already scaled to that clock.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

#: Service Bus's dead-letter reason when the delivery count exceeds maxDeliveryCount.
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"


@dataclass(frozen=True)
class QueueRules:
    """The queue's settings (infra/app/servicebus.bicep) and the host's, in clock seconds."""

    lock_duration: float = 120.0
    max_delivery_count: int = 10
    #: host.json maxAutoLockRenewalDuration.
    max_auto_lock_renewal: float = 300.0
    #: duplicateDetectionHistoryTimeWindow; None: duplicate detection off.
    duplicate_window: float | None = 600.0
    sessions: bool = False
    #: host.json maxConcurrentSessions (sessions per instance; the extension's default 8).
    max_concurrent_sessions: int = 8
    #: host.json maxConcurrentCallsPerSession (the extension's default 1).
    calls_per_session: int = 1
    #: host.json sessionIdleTimeout: how long a session stays with its receiver with nothing to
    #: deliver; unset, the client's TryTimeout (60 s by default).
    session_idle_timeout: float = 60.0

    def scaled(self, factor: float) -> QueueRules:
        """The same rules on a clock `1 / factor` times as fast."""
        return replace(
            self,
            lock_duration=self.lock_duration * factor,
            max_auto_lock_renewal=self.max_auto_lock_renewal * factor,
            duplicate_window=(
                None if self.duplicate_window is None else self.duplicate_window * factor
            ),
            session_idle_timeout=self.session_idle_timeout * factor,
        )


@dataclass
class Entry:
    """One message in the queue and its bookkeeping."""

    sequence: int
    message: dict[str, Any]  # the sent message's fields (body, message_id, properties …)
    enqueued_at: float
    available_at: float
    failed_deliveries: int = 0
    lock_token: str | None = None
    locked_by: str | None = None
    locked_until: float = 0.0

    @property
    def session_id(self) -> str | None:
        """The message's SessionId."""
        return self.message.get("session_id")


@dataclass
class Final:
    """How a message ended: completed or dead-lettered, when, after how many deliveries."""

    message_id: str
    outcome: str  # "complete" or "deadletter"
    reason: str | None
    enqueued_at: float
    settled_at: float
    deliveries: int
    tag: str | None


@dataclass
class Queue:
    """The queue: send, schedule, receive under a lock, settle; thread-safe."""

    rules: QueueRules = field(default_factory=QueueRules)
    clock: Callable[[], float] = time.monotonic
    finals: list[Final] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _sequence: itertools.count = field(default_factory=lambda: itertools.count(1))
    _available: list[tuple[int, int]] = field(default_factory=list)  # heap of (sequence, seq)
    _scheduled: list[tuple[float, int]] = field(default_factory=list)  # heap of (due, seq)
    _entries: dict[int, Entry] = field(default_factory=dict)
    _locks: dict[str, int] = field(default_factory=dict)  # lock token → sequence
    _expiries: list[tuple[float, str]] = field(default_factory=list)  # heap of (until, token)
    _seen_ids: dict[str, float] = field(default_factory=dict)
    _sessions: dict[str, tuple[str, float]] = field(default_factory=dict)  # id → (owner, idle)
    _gone: set[str] = field(default_factory=set)  # receivers that died
    # Sessions: available sequences per session, locked messages per (receiver, session) and
    # sessions held per receiver, so that taking a message costs no scan of the queue.
    _by_session: dict[str, list[int]] = field(default_factory=dict)
    _in_session: Counter[tuple[str, str]] = field(default_factory=Counter)
    _owned: Counter[str] = field(default_factory=Counter)
    # One lock; each receiver waits on a condition of its own on it, so that a settlement wakes
    # only the receiver that can take what it freed (below, `settle`).
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _waiting: dict[str, threading.Condition] = field(default_factory=dict)

    # -- sending -------------------------------------------------------------------------------

    def send(
        self, message: dict[str, Any], *, scheduled_at: float | None = None, tag: str | None = None
    ) -> bool:
        """Accept a message (now, or at `scheduled_at`); False when duplicate detection drops
        it. `tag` labels it for the report (a scenario's part)."""
        if self.rules.sessions and not message.get("session_id"):
            # A session-enabled entity refuses a message without a SessionId.
            raise ValueError("a session-enabled queue needs a session_id on every message")
        with self._lock:
            now = self.clock()
            message_id = message.get("message_id") or str(uuid.uuid4())
            if self.rules.duplicate_window is not None:
                seen = self._seen_ids.get(message_id)
                if seen is not None and now - seen < self.rules.duplicate_window:
                    self.counts["duplicates_dropped"] += 1
                    return False
                self._seen_ids[message_id] = now
            sequence = next(self._sequence)
            due = now if scheduled_at is None else max(now, scheduled_at)
            entry = Entry(sequence, {**message, "message_id": message_id, "tag": tag}, due, due)
            self._entries[sequence] = entry
            if due > now:
                heapq.heappush(self._scheduled, (due, sequence))
                self.counts["scheduled"] += 1
            else:
                self._make_available(sequence)
            self.counts["sent"] += 1
            self._wake_all()
            return True

    # -- receiving -----------------------------------------------------------------------------

    def receive(self, receiver: str, max_count: int, wait: float = 0.0) -> list[dict[str, Any]]:
        """Up to `max_count` messages locked for `receiver`, waiting up to `wait` seconds for
        the first. Each carries `lock_token`, `delivery_count`, `sequence_number`."""
        deadline = self.clock() + wait
        with self._lock:
            while True:
                self._tick()
                taken = self._take(receiver, max_count)
                remaining = deadline - self.clock()
                if taken or remaining <= 0:
                    return taken
                # Woken by a send, a give-back, `tick` releasing scheduled or expired ones, or
                # (sessions) the settlement of one of its own session's messages.
                waiter = self._waiting.get(receiver)
                if waiter is None:
                    waiter = self._waiting[receiver] = threading.Condition(self._lock)
                waiter.wait(remaining)

    def _make_available(self, sequence: int) -> None:
        if self.rules.sessions:
            session = self._entries[sequence].session_id or ""
            heapq.heappush(self._by_session.setdefault(session, []), sequence)
        else:
            heapq.heappush(self._available, (sequence, sequence))

    def _take(self, receiver: str, max_count: int) -> list[dict[str, Any]]:
        if self.rules.sessions:
            return self._take_sessions(receiver, max_count)
        taken: list[dict[str, Any]] = []
        while self._available and len(taken) < max_count:
            _, sequence = heapq.heappop(self._available)
            taken.append(self._lock_entry(self._entries[sequence], receiver))
        return taken

    def _take_sessions(self, receiver: str, max_count: int) -> list[dict[str, Any]]:
        """The receiver's own sessions first, then free sessions by their oldest message; at
        most `calls_per_session` locked per session and `max_concurrent_sessions` held."""
        now, taken = self.clock(), []
        limit = self.rules.calls_per_session
        own = [s for s, (owner, _) in self._sessions.items() if owner == receiver]
        free = sorted(
            (heap[0], s) for s, heap in self._by_session.items() if heap and s not in self._sessions
        )
        for session in own + [s for _, s in free]:
            if len(taken) >= max_count:
                break
            if session not in self._sessions:
                if self._owned[receiver] >= self.rules.max_concurrent_sessions:
                    continue
                self._sessions[session] = (receiver, now)
                self._owned[receiver] += 1
            heap = self._by_session.get(session) or []
            while heap and len(taken) < max_count and self._in_session[receiver, session] < limit:
                self._sessions[session] = (receiver, now)
                taken.append(self._lock_entry(self._entries[heapq.heappop(heap)], receiver))
        return taken

    def _lock_entry(self, entry: Entry, receiver: str) -> dict[str, Any]:
        """Lock `entry` for `receiver`; the message as delivered."""
        now = self.clock()
        if entry.session_id is not None:
            self._in_session[receiver, entry.session_id] += 1
        entry.lock_token = str(uuid.uuid4())
        entry.locked_by = receiver
        entry.locked_until = now + max(self.rules.lock_duration, self.rules.max_auto_lock_renewal)
        self._locks[entry.lock_token] = entry.sequence
        heapq.heappush(self._expiries, (entry.locked_until, entry.lock_token))
        self.counts["deliveries"] += 1
        return {
            **entry.message,
            "lock_token": entry.lock_token,
            "delivery_count": entry.failed_deliveries + 1,
            "sequence_number": entry.sequence,
            "lock_duration": self.rules.lock_duration,
        }

    def receiver_gone(self, receiver: str) -> None:
        """`receiver` died: its locks are no longer renewed, so each expires at most a lock
        duration from now; its sessions are free once nothing of theirs is locked."""
        with self._lock:
            now = self.clock()
            self._gone.add(receiver)
            for entry in self._entries.values():
                if entry.locked_by == receiver and entry.lock_token is not None:
                    until = min(entry.locked_until, now + self.rules.lock_duration)
                    entry.locked_until = until
                    heapq.heappush(self._expiries, (until, entry.lock_token))
            self._wake_all()

    def holders(self) -> Counter[str]:
        """How many messages each receiver holds locked now."""
        with self._lock:
            return Counter(e.locked_by for e in self._entries.values() if e.locked_by)

    def holds(self, lock_token: str) -> bool:
        """True when `lock_token` is a lock of this queue's (settled or not yet)."""
        with self._lock:
            return lock_token in self._locks

    # -- settling ------------------------------------------------------------------------------

    def settle(
        self,
        lock_token: str,
        action: str,
        reason: str | None = None,
        description: str | None = None,
    ) -> bool:
        """Complete, abandon or dead-letter the message locked by `lock_token`; False when the
        lock is unknown or lost (the real service fails the call: MessageLockLost)."""
        with self._lock:
            self._tick()
            sequence = self._locks.pop(lock_token, None)
            if sequence is None:
                self.counts["settle_lock_lost"] += 1
                return False
            entry = self._entries[sequence]
            holder = entry.locked_by
            self._unlock(entry)
            self.counts[action] += 1
            if action == "complete":
                self._finish(entry, "complete", None)
            elif action == "deadletter":
                self._finish(entry, "deadletter", reason or "")
            elif action == "abandon":
                self._give_back(entry)
            else:
                raise ValueError(f"unknown settlement {action!r}")
            # An abandoned message is available again. With sessions, a settlement lets the
            # session's receiver take its next message (the host's session receiver asks for the
            # next one as soon as a call ends); the session stays locked to that receiver, so
            # only it is woken: Service Bus delivers a locked session's messages to its lock
            # holder alone (learn.microsoft.com/azure/service-bus-messaging/message-sessions).
            # Waking every waiting receiver changed nothing they could take, but 40 instances'
            # idle receivers, each woken by every settlement, held the stand-in's lock and
            # slowed the sessions that had work. Otherwise nothing new is available: no wake-up.
            if action == "abandon":
                self._wake_all()
            elif self.rules.sessions and holder is not None:
                waiter = self._waiting.get(holder)
                if waiter is not None:
                    waiter.notify_all()
            return True

    def _wake_all(self) -> None:
        """Wake every waiting receiver (something any of them may take became available)."""
        for waiter in self._waiting.values():
            waiter.notify_all()

    def _unlock(self, entry: Entry) -> None:
        entry.lock_token = None
        if entry.locked_by is not None and entry.session_id is not None:
            key = (entry.locked_by, entry.session_id)
            self._in_session[key] -= 1
            if self._in_session[key] <= 0:
                del self._in_session[key]
            owner = self._sessions.get(entry.session_id)
            if owner is not None:
                self._sessions[entry.session_id] = (owner[0], self.clock())
        entry.locked_by = None

    def _give_back(self, entry: Entry) -> None:
        """Abandoned or lock lost: one more failed delivery, then available again or DLQ."""
        entry.failed_deliveries += 1
        if entry.failed_deliveries >= self.rules.max_delivery_count:
            self._finish(entry, "deadletter", MAX_DELIVERY_COUNT_EXCEEDED)
        else:
            self._make_available(entry.sequence)

    def _finish(self, entry: Entry, outcome: str, reason: str | None) -> None:
        del self._entries[entry.sequence]
        deliveries = entry.failed_deliveries + (0 if reason == MAX_DELIVERY_COUNT_EXCEEDED else 1)
        self.finals.append(
            Final(
                entry.message["message_id"],
                outcome,
                reason,
                entry.enqueued_at,
                self.clock(),
                deliveries,
                entry.message.get("tag"),
            )
        )

    # -- time ----------------------------------------------------------------------------------

    def _tick(self) -> bool:
        """Release due scheduled messages, expire locks and idle sessions; True when a message
        became available."""
        now, released = self.clock(), False
        while self._scheduled and self._scheduled[0][0] <= now:
            _, sequence = heapq.heappop(self._scheduled)
            self._make_available(sequence)
            released = True
        while self._expiries and self._expiries[0][0] <= now:
            _, token = heapq.heappop(self._expiries)
            sequence = self._locks.pop(token, None)
            if sequence is None:
                continue  # settled in time
            entry = self._entries[sequence]
            self._unlock(entry)
            self.counts["lock_lost"] += 1
            self._give_back(entry)
            released = True
        if self.rules.sessions:
            busy = {session for _, session in self._in_session}
            for session, (owner, idle_since) in list(self._sessions.items()):
                idle = now - idle_since >= self.rules.session_idle_timeout
                if session not in busy and (idle or owner in self._gone):
                    del self._sessions[session]
                    self._owned[owner] -= 1
                    released = True
        return released

    def tick(self) -> None:
        """Apply the clock (scheduled messages, lock expiry) without receiving."""
        with self._lock:
            if self._tick():
                self._wake_all()

    # -- figures -------------------------------------------------------------------------------

    def active(self) -> int:
        """Messages sent and not yet settled for good, scheduled ones excluded (the queue's
        ActiveMessageCount: available and locked)."""
        with self._lock:
            self._tick()
            return len(self._entries) - len(self._scheduled)

    def unfinished(self) -> int:
        """Messages not yet completed or dead-lettered, scheduled ones included."""
        with self._lock:
            return len(self._entries)
