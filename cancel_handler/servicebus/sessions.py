"""SessionIds of a date range's child requests on the session-enabled children queue.

Child k of a range goes to session `<organizer hash>#<k mod N>`, N = GRAPH_MAILBOX_CONCURRENCY
(4, Graph's concurrent requests per app and mailbox). The session trigger runs one call per
session (the Service Bus extension's `maxConcurrentCallsPerSession` default, 1), and Service Bus
gives each session to one receiver at a time, so at most N of one organizer's children run at
once anywhere in the fleet, whatever the instance count (docs/performance.md, section 7).

The organizer hash is HMAC-SHA256 under CHILD_SESSION_KEY of the case-folded address, 32 hex
digits: session ids show in the portal, in Service Bus Explorer and in diagnostics, and must not
name a person; the same organizer always lands in the same sessions, different ones almost
never share one (a shared session only serialises them further, it never lifts a limit).
"""

from __future__ import annotations

import hashlib
import hmac

#: Hex digits of the organizer hash kept in a SessionId (128 bits).
HASH_DIGITS = 32


def organizer_hash(key: str, organizer: str) -> str:
    """The keyed hash of `organizer` (any case) under `key`."""
    digest = hmac.new(key.encode("utf-8"), organizer.casefold().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:HASH_DIGITS]


def child_session_id(key: str, organizer: str, index: int, sessions: int) -> str:
    """The SessionId of the `index`-th child (0-based) of a range of `organizer`'s, spread over
    `sessions` sessions."""
    if sessions < 1:
        raise ValueError("sessions must be at least 1")
    return f"{organizer_hash(key, organizer)}#{index % sessions}"
