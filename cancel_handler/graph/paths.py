"""URL paths below the Graph base URL: each value is one percent-encoded path segment."""

from __future__ import annotations

from urllib.parse import quote


def segment(value: str) -> str:
    """`value` as one path segment; ValueError for values that would not stay one."""
    encoded = quote(value, safe="")
    if encoded in ("", ".", ".."):
        raise ValueError("an id must not be empty, '.' or '..'")
    return encoded


def user_path(user: str) -> str:
    """`/users/{user}`."""
    return f"/users/{segment(user)}"


def encode_query(query: dict[str, str]) -> str:
    """`name=value&…` with every value percent-encoded (nothing left as a delimiter)."""
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())
