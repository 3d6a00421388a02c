"""SessionIds of a date range's child requests on the session-enabled children queue.

Every child of one organizer goes to the same session: the organizer's keyed hash. Service Bus
gives a session to one receiver at a time, so all of one organizer's children run on one
instance, whatever the instance count; there the session trigger runs at most
`maxConcurrentCallsPerSession` of them at once (host.json: 4, Graph's concurrent requests per
app and mailbox), and the per-mailbox limiter (GRAPH_MAILBOX_CONCURRENCY, at most 4) holds the
same line in the process. Four calls share one session's queue, so a slow call holds back one
slot and never a fixed quarter of the organizer's meetings (docs/performance.md, section 8.1).

The organizer hash is HMAC-SHA256 under CHILD_SESSION_KEY of the case-folded address, 32 hex
digits: session ids show in the portal, in Service Bus Explorer and in diagnostics, and must not
name a person; the same organizer always lands in the same session, different ones almost
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


def child_session_id(key: str, organizer: str) -> str:
    """The SessionId of every child of a range of `organizer`'s."""
    return organizer_hash(key, organizer)
