"""Bearer tokens for Graph from the managed identity, fetched once and reused until near expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from cancel_handler.core.errors import TokenError
from cancel_handler.core.redaction import first_line

#: Refresh this long before the token expires, so no request carries a token about to lapse.
REFRESH_MARGIN_SECONDS = 300.0
#: A claims value that makes azure-identity/MSAL skip their cache and fetch a new token.
_FORCE_REFRESH_CLAIMS = '{"access_token":{"nbf":{"essential":true}}}'


class AccessTokenInfoLike(Protocol):
    token: str
    expires_on: int


class TokenSource(Protocol):
    """The part of an azure-identity (sync) credential this module uses."""

    def get_token_info(self, *scopes: str, options: dict | None = None) -> AccessTokenInfoLike:
        """Return a token for the scopes."""
        ...


class TokenProvider:
    """Caches one Graph token per process; concurrent callers share a single fetch."""

    def __init__(
        self, source: TokenSource, scope: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._source = source
        self._scope = scope
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> str:
        """A token valid for at least the refresh margin; fetched only when needed."""
        if self._token is not None and self._clock() < self._expires_on - REFRESH_MARGIN_SECONDS:
            return self._token
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_on - REFRESH_MARGIN_SECONDS:
                await self._fetch(force=False)
            assert self._token is not None
            return self._token

    async def refresh(self, rejected: str) -> str:
        """A genuinely new token after Graph rejected `rejected` (401); if another caller has
        already replaced it, that newer token is returned without another fetch."""
        async with self._lock:
            if self._token is None or self._token == rejected:
                await self._fetch(force=True)
            assert self._token is not None
            return self._token

    async def _fetch(self, *, force: bool) -> None:
        options = {"claims": _FORCE_REFRESH_CLAIMS} if force else None
        try:
            info = await asyncio.to_thread(
                self._source.get_token_info, self._scope, options=options
            )
        except Exception as exc:
            raise TokenError(f"no token from the managed identity: {_describe(exc)}") from None
        if not info.token:
            raise TokenError("the managed identity returned an empty token")
        if info.expires_on <= self._clock():
            raise TokenError("the managed identity returned an expired token")
        self.fetches += 1
        self._token = info.token
        self._expires_on = float(info.expires_on)


def _describe(exc: Exception) -> str:
    """The exception's type and first line, without anything that looks like a token."""
    return f"{type(exc).__name__}: {first_line(exc, 300)}"
