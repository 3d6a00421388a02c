"""Keeps credentials out of text that leaves the process (logs, dead-letter descriptions)."""

from __future__ import annotations

import re

#: Bearer credentials, JWT-shaped strings, and the key or signature of a Service Bus connection
#: string or shared access signature.
_SECRET_LIKE = re.compile(
    r"(?i:bearer)\s+[^\s;,\"']+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|(?<=SharedAccessKey=)[^\s;\"']+|(?<=[?&\s]sig=)[^\s&;\"']+"
)


def redact(text: str) -> str:
    """`text` with bearer tokens, JWT-like strings and shared access keys or signatures replaced
    by `<redacted>`."""
    return _SECRET_LIKE.sub("<redacted>", text)
