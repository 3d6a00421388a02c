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
the host accepts up to `maxConcurrentSessions` (8) sessions per instance and runs
`maxConcurrentCallsPerSession` (1) invocations per session (Service Bus extension's host.json
settings). A session's lock is released when the receiver has had nothing from it for the
session idle timeout (`sessionIdleTimeout`; unknown default in the extension: a parameter).

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
    #: host.json maxConcurrentSessions (sessions per instance).
    max_concurrent_sessions: int = 8
    #: host.json maxConcurrentCallsPerSession.
    calls_per_session: int = 1
    #: How long a session stays with its receiver with nothing to deliver (unknown: parameter).
    session_idle_timeout: float = 1.0

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
    _lock: threading.Condition = field(default_factory=threading.Condition)

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
                heapq.heappush(self._available, (sequence, sequence))
            self.counts["sent"] += 1
            self._lock.notify_all()
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
                # Woken by a send, a give-back, or `tick` releasing scheduled or expired ones.
                self._lock.wait(remaining)

    def _take(self, receiver: str, max_count: int) -> list[dict[str, Any]]:
        now, taken, skipped = self.clock(), [], []
        while self._available and len(taken) < max_count:
            _, sequence = heapq.heappop(self._available)
            entry = self._entries[sequence]
            if self.rules.sessions and not self._session_for(entry, receiver, now):
                skipped.append(sequence)
                continue
            entry.lock_token = str(uuid.uuid4())
            entry.locked_by = receiver
            entry.locked_until = now + max(
                self.rules.lock_duration, self.rules.max_auto_lock_renewal
            )
            self._locks[entry.lock_token] = sequence
            heapq.heappush(self._expiries, (entry.locked_until, entry.lock_token))
            self.counts["deliveries"] += 1
            taken.append(
                {
                    **entry.message,
                    "lock_token": entry.lock_token,
                    "delivery_count": entry.failed_deliveries + 1,
                    "sequence_number": sequence,
                    "lock_duration": self.rules.lock_duration,
                }
            )
        for sequence in skipped:
            heapq.heappush(self._available, (sequence, sequence))
        return taken

    def _session_for(self, entry: Entry, receiver: str, now: float) -> bool:
        """True when `receiver` may take `entry` under the session rules (and takes the session
        when it is free and the receiver has room for another)."""
        session = entry.session_id or ""  # never empty: `send` refuses that
        owner = self._sessions.get(session)
        if owner is not None and owner[0] != receiver:
            return False
        in_session = sum(
            1
            for e in self._entries.values()
            if e.locked_by == receiver and e.session_id == entry.session_id
        )
        if in_session >= self.rules.calls_per_session:
            return False
        if owner is None:
            held = sum(1 for o, _ in self._sessions.values() if o == receiver)
            if held >= self.rules.max_concurrent_sessions:
                return False
        self._sessions[session] = (receiver, now)
        return True

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
            self._unlock(entry)
            self.counts[action] += 1
            if action == "complete":
                self._finish(entry, "complete", None)
            elif action == "deadletter":
                self._finish(entry, "deadletter", reason or "")
            elif action == "abandon":
                self._give_back(entry)
                self._lock.notify_all()
            else:
                raise ValueError(f"unknown settlement {action!r}")
            return True

    def _unlock(self, entry: Entry) -> None:
        entry.lock_token = None
        if entry.locked_by is not None and entry.session_id is not None:
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
            heapq.heappush(self._available, (entry.sequence, entry.sequence))

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
            heapq.heappush(self._available, (sequence, sequence))
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
            busy = {e.session_id for e in self._entries.values() if e.locked_by is not None}
            for session, (_, idle_since) in list(self._sessions.items()):
                if session not in busy and now - idle_since >= self.rules.session_idle_timeout:
                    del self._sessions[session]
                    released = True
        return released

    def tick(self) -> None:
        """Apply the clock (scheduled messages, lock expiry) without receiving."""
        with self._lock:
            if self._tick():
                self._lock.notify_all()

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
