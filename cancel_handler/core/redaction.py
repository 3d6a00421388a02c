"""Keeps credentials out of text that leaves the process (logs, dead-letter descriptions,
command-line errors)."""

from __future__ import annotations

import re

#: Bearer credentials, JWT-shaped strings, and the key or signature of a Service Bus connection
#: string or shared access signature.
_SECRET_LIKE = re.compile(
    r"(?i:bearer)\s+[^\s;,\"']+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|(?<=SharedAccessKey=)[^\s;\"']+|(?<=[?&\s]sig=)[^\s&;\"']+"
)

#: A key of a Service Bus connection string (`Endpoint=sb://…;SharedAccessKeyName=…;
#: SharedAccessKey=…`, or `SharedAccessSignature=…` instead of the two key fields).
_CONNECTION_STRING_KEY = re.compile(
    r"(?i)(?:^|;)\s*(?:endpoint|sharedaccesskeyname|sharedaccesskey|sharedaccesssignature"
    r"|entitypath)\s*="
)


def redact(text: str) -> str:
    """`text` with bearer tokens, JWT-like strings and shared access keys or signatures replaced
    by `<redacted>`."""
    return _SECRET_LIKE.sub("<redacted>", text)


def looks_like_connection_string(text: str) -> bool:
    """True when `text` holds a connection-string field or anything :func:`redact` hides: a
    value given in the wrong place that must not be repeated back."""
    return bool(_CONNECTION_STRING_KEY.search(text)) or redact(text) != text
