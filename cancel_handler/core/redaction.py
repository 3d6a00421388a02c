"""Keeps credentials, and control characters a reader's terminal or log would act on, out of
text that leaves the process (logs, dead-letter descriptions, command-line output)."""

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


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of `error`'s text, credentials redacted (:func:`redact`, before any cut),
    at most `limit` characters; empty when the error has no text."""
    lines = redact(str(error)).strip().splitlines()
    return lines[0][:limit] if lines else ""


def looks_like_connection_string(text: str) -> bool:
    """True when `text` holds a connection-string field or anything :func:`redact` hides: a
    value given in the wrong place that must not be repeated back."""
    return bool(_CONNECTION_STRING_KEY.search(text)) or redact(text) != text


def printable(value: object, limit: int | None = None) -> str:
    """`value` as printable text: bytes read as UTF-8 (a bad byte becomes U+FFFD), at most
    `limit` characters, line breaks and other control or unprintable characters shown as `?`,
    spaces kept. Sender-controlled text cannot forge a log line or move a terminal's cursor."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
