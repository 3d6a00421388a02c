"""How a date range's child requests are queued and consumed: the designs the fleet compares.

- `today`: children go to the cancel queue like any request; each instance limits one mailbox to
  `GRAPH_MAILBOX_CONCURRENCY` (4) calls, so N instances may run 4 * N for one organizer.
- `organizer-sessions` (the product's): children go to a session-enabled children queue with
  SessionId = a keyed hash of the organizer; the session trigger runs
  `maxConcurrentCallsPerSession` = 4 calls per session (host.json), and Service Bus gives the
  session to one receiver at a time, so at most 4 of one organizer's children run at once
  anywhere in the fleet, sharing one queue of that organizer's work. The organizer's address
  never appears in a SessionId (operators see session ids).
- `sessions`: SessionId = the organizer's hash plus `#k`, k = the child's index mod 4, one call
  per session (`maxConcurrentCallsPerSession` 1): the same limit, but each of the 4 sessions
  works through its fixed quarter of the children one after another.
- `paced`: children stay on the cancel queue, each scheduled (`ScheduledEnqueueTimeUtc`) for
  `index // 4 * pace` after the fan-out, so that 4 start per `pace` seconds (the mean Graph
  latency by default); nothing enforces the limit across instances when calls run long.

The function itself implements `organizer-sessions` (CHILD_QUEUE_NAME, `cancel_handler/
servicebus/sessions.py`): the fleet runs it with that setting, and the function's children reach
the children queue with their SessionIds. For the other designs, the broker applies the design
to the children the function sends to the cancel queue (a message with `parentMessageId` and no
SessionId), in the order they are sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from base64 import b64decode
from dataclasses import dataclass
from typing import Any

DESIGNS = ("today", "sessions", "organizer-sessions", "paced")
#: The design the function implements itself (with CHILD_QUEUE_NAME set).
PRODUCT_DESIGN = "organizer-sessions"
#: Graph's per-app, per-mailbox concurrency, and so the sessions per organizer.
SESSIONS_PER_ORGANIZER = 4
#: The children queue's name in the simulation.
CHILD_QUEUE_NAME = "meeting-cancellations-children"
#: The key of the organizer hash (an app secret in a deployment; any value here).
SESSION_KEY = b"fleet-simulation-key"


@dataclass(frozen=True)
class Design:
    """One design: its name, the pacing interval (`paced`, clock seconds)."""

    name: str = "today"
    pace: float = 0.36

    def __post_init__(self) -> None:
        if self.name not in DESIGNS:
            raise ValueError(f"unknown design {self.name!r}; one of {', '.join(DESIGNS)}")

    @property
    def uses_sessions(self) -> bool:
        """True when children go to the session-enabled children queue."""
        return self.name in ("sessions", "organizer-sessions")

    @property
    def calls_per_session(self) -> int:
        """host.json `maxConcurrentCallsPerSession` this design needs."""
        return SESSIONS_PER_ORGANIZER if self.name == "organizer-sessions" else 1

    def route(self, message: dict[str, Any], index: int) -> tuple[str | None, float | None]:
        """Where the `index`-th child of its parent goes: (SessionId or None, delay in clock
        seconds or None). Sets the SessionId on `message` for the session designs."""
        if self.uses_sessions:
            organizer = _organizer(message)
            suffix = f"#{index % SESSIONS_PER_ORGANIZER}" if self.name == "sessions" else ""
            message["session_id"] = organizer_key(organizer) + suffix
            return message["session_id"], None
        if self.name == "paced":
            return None, (index // SESSIONS_PER_ORGANIZER) * self.pace
        return None, None


def organizer_key(organizer: str) -> str:
    """A keyed hash of the organizer (case-insensitive), 32 hex digits: stable, not reversible
    without the key."""
    digest = hmac.new(SESSION_KEY, organizer.lower().encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def is_child(message: dict[str, Any]) -> bool:
    """True for a date range's child request (it names its parent)."""
    return bool((message.get("application_properties") or {}).get("parentMessageId"))


def _organizer(message: dict[str, Any]) -> str:
    return str(json.loads(b64decode(message["body"]))["userPrincipalName"])
