"""Keeps credentials out of text that leaves the process (logs, dead-letter descriptions)."""

from __future__ import annotations

import re

#: Bearer credentials and JWT-shaped strings.
_SECRET_LIKE = re.compile(
    r"(?i:bearer)\s+[^\s;,\"']+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)


def redact(text: str) -> str:
    """`text` with bearer tokens and JWT-like strings replaced by `<redacted>`."""
    return _SECRET_LIKE.sub("<redacted>", text)
