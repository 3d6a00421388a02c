"""The Graph token provider itself (cancel_handler.graph.token): azure-identity's real
ManagedIdentityCredential against the loopback App Service identity endpoint, and, for the
expiry arithmetic, a recording source returning azure-core's real AccessTokenInfo."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from azure.core.credentials import AccessTokenInfo
from azure.identity import ManagedIdentityCredential

from cancel_handler.core.errors import TokenError
from cancel_handler.devtools.identity_endpoint import (
    IdentityEndpoint,
    IdentityFault,
    TokenAuthority,
)
from cancel_handler.graph.token import TokenProvider

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: The module's promise: a token is replaced 5 minutes (300 s) before it expires.
MARGIN = 300


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    """The loopback identity endpoint, with IDENTITY_ENDPOINT/IDENTITY_HEADER pointing at it."""
    with IdentityEndpoint(TokenAuthority()) as endpoint:
        for name, value in endpoint.environment.items():
            monkeypatch.setenv(name, value)
        yield endpoint


def _credential() -> ManagedIdentityCredential:
    return ManagedIdentityCredential(retry_total=0)


def test_a_token_is_fetched_once_and_reused(identity: IdentityEndpoint) -> None:
    """Two calls for a token give the endpoint's token, fetched with one request."""

    async def run() -> tuple[str, str]:
        provider = TokenProvider(_credential(), GRAPH_SCOPE)
        return await provider.get(), await provider.get()

    first, second = asyncio.run(run())
    assert first == second and identity.authority.is_valid(first)
    assert identity.requests == 1


def test_concurrent_callers_share_one_fetch(identity: IdentityEndpoint) -> None:
    """Ten callers at once on a cold provider cause one identity request and share its token."""

    async def run() -> list[str]:
        provider = TokenProvider(_credential(), GRAPH_SCOPE)
        tokens = await asyncio.gather(*(provider.get() for _ in range(10)))
        assert provider.fetches == 1
        return tokens

    assert len(set(asyncio.run(run()))) == 1 and identity.requests == 1


def test_refresh_after_a_401_gets_a_genuinely_new_token(identity: IdentityEndpoint) -> None:
    """Refreshing the rejected token bypasses azure-identity's cache: a second identity request
    and a different, valid token; the next get() returns that new one."""

    async def run() -> tuple[str, str, str, int]:
        provider = TokenProvider(_credential(), GRAPH_SCOPE)
        old = await provider.get()
        new = await provider.refresh(old)
        return old, new, await provider.get(), provider.fetches

    old, new, after, fetches = asyncio.run(run())
    assert old != new and after == new and fetches == 2
    assert identity.requests == 2 and identity.authority.is_valid(new)


def test_refresh_of_an_already_replaced_token_does_not_fetch(identity: IdentityEndpoint) -> None:
    """A second caller refreshing the same rejected token gets the newer one without a fetch."""

    async def run() -> tuple[str, str]:
        provider = TokenProvider(_credential(), GRAPH_SCOPE)
        old = await provider.get()
        first = await provider.refresh(old)
        return first, await provider.refresh(old)

    first, second = asyncio.run(run())
    assert first == second and identity.requests == 2


def test_refresh_on_a_cold_provider_fetches(identity: IdentityEndpoint) -> None:
    """refresh() before any get() fetches a token instead of failing."""
    token = asyncio.run(TokenProvider(_credential(), GRAPH_SCOPE).refresh("never-issued"))
    assert identity.authority.is_valid(token) and identity.requests == 1


def test_an_expired_token_from_the_endpoint_is_refused(identity: IdentityEndpoint) -> None:
    """A token that expired before it arrived raises TokenError (retryable), never reaches Graph."""
    identity.faults.append(IdentityFault(expired=True))
    with pytest.raises(TokenError, match=r"^the managed identity returned an expired token$"):
        asyncio.run(TokenProvider(_credential(), GRAPH_SCOPE).get())


def test_an_endpoint_error_is_a_token_error_naming_the_cause(identity: IdentityEndpoint) -> None:
    """A 500 from the endpoint raises TokenError with azure-identity's exception type and first
    line, and nothing that looks like a credential."""
    identity.faults.append(IdentityFault(status=500))
    with pytest.raises(TokenError) as caught:
        asyncio.run(TokenProvider(_credential(), GRAPH_SCOPE).get())
    message = str(caught.value)
    assert message.startswith("no token from the managed identity: ")
    assert "\n" not in message and identity.secret not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


class RecordingSource:
    """Has the credential's `get_token_info`; answers with azure-core's AccessTokenInfo."""

    def __init__(self, *answers: AccessTokenInfo | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[tuple[str, ...], dict | None]] = []

    def get_token_info(self, *scopes: str, options: dict | None = None) -> AccessTokenInfo:
        self.calls.append((scopes, options))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_graph_scope_is_asked_for_without_options_then_with_claims() -> None:
    """get() asks for the scope alone; refresh() adds the claims challenge that makes
    azure-identity/MSAL skip their cache."""
    source = RecordingSource(AccessTokenInfo("t1", 10_000), AccessTokenInfo("t2", 10_000))

    async def run() -> None:
        provider = TokenProvider(source, GRAPH_SCOPE, clock=Clock(1_000))
        await provider.get()
        await provider.refresh("t1")

    asyncio.run(run())
    assert source.calls == [
        ((GRAPH_SCOPE,), None),
        ((GRAPH_SCOPE,), {"claims": '{"access_token":{"nbf":{"essential":true}}}'}),
    ]


def test_a_token_is_replaced_exactly_five_minutes_before_expiry() -> None:
    """Up to 300 s + a hair before expiry the cached token is used; from 300 s on, a new one."""
    source = RecordingSource(AccessTokenInfo("t1", 10_000), AccessTokenInfo("t2", 20_000))
    clock = Clock(1_000)

    async def run() -> list[str]:
        provider = TokenProvider(source, GRAPH_SCOPE, clock=clock)
        seen = [await provider.get()]
        clock.now = 10_000 - MARGIN - 0.001
        seen.append(await provider.get())
        clock.now = 10_000 - MARGIN
        seen.append(await provider.get())
        clock.now = 10_000 - MARGIN + 1
        seen.append(await provider.get())
        return seen

    assert asyncio.run(run()) == ["t1", "t1", "t2", "t2"]
    assert len(source.calls) == 2


def test_a_token_expiring_right_now_is_refused() -> None:
    """expires_on equal to the current time counts as expired."""
    source = RecordingSource(AccessTokenInfo("t1", 5_000))
    provider = TokenProvider(source, GRAPH_SCOPE, clock=Clock(5_000))
    with pytest.raises(TokenError, match="expired token"):
        asyncio.run(provider.get())


def test_a_token_valid_for_one_more_second_is_accepted() -> None:
    """expires_on one second ahead is not expired (it is refreshed on the next call)."""
    source = RecordingSource(AccessTokenInfo("t1", 5_001), AccessTokenInfo("t2", 9_999))

    async def run() -> list[str]:
        provider = TokenProvider(source, GRAPH_SCOPE, clock=Clock(5_000))
        return [await provider.get(), await provider.get()]

    assert asyncio.run(run()) == ["t1", "t2"]


def test_an_empty_token_is_refused() -> None:
    """An empty access token raises TokenError instead of being sent as 'Bearer '."""
    source = RecordingSource(AccessTokenInfo("", 10_000))
    provider = TokenProvider(source, GRAPH_SCOPE, clock=Clock(1_000))
    with pytest.raises(TokenError, match=r"^the managed identity returned an empty token$"):
        asyncio.run(provider.get())


def test_fetches_are_counted() -> None:
    """`fetches` counts successful fetches only."""
    source = RecordingSource(
        AccessTokenInfo("t1", 10_000), RuntimeError("down"), AccessTokenInfo("t2", 10_000)
    )

    async def run() -> int:
        provider = TokenProvider(source, GRAPH_SCOPE, clock=Clock(1_000))
        await provider.get()
        with pytest.raises(TokenError):
            await provider.refresh("t1")
        await provider.refresh("t1")
        return provider.fetches

    assert asyncio.run(run()) == 2


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            RuntimeError("first line\nsecond line"),
            "no token from the managed identity: RuntimeError: first line",
        ),
        (
            ValueError("  padded  "),
            "no token from the managed identity: ValueError: padded",
        ),
        (OSError(), "no token from the managed identity: OSError: "),
        (
            RuntimeError("got Bearer abc.def-ghi; retry"),
            "no token from the managed identity: RuntimeError: got <redacted>; retry",
        ),
        (
            RuntimeError("x" * 400),
            "no token from the managed identity: RuntimeError: " + "x" * 300,
        ),
        (
            RuntimeError("x" * 290 + " " + "eyJ0eXAiOiJKV1QifQ.eyJvaWQiOiIwMDAifQ.c2ln"),
            "no token from the managed identity: RuntimeError: " + "x" * 290 + " <redacted",
        ),
    ],
)
def test_a_failed_fetch_is_described_in_one_safe_line(error: Exception, message: str) -> None:
    """The TokenError names the exception type and its first line (≤ 300 characters), with
    credentials redacted before the cut, so a token across the 300th character never shows."""
    provider = TokenProvider(RecordingSource(error), GRAPH_SCOPE, clock=Clock(1_000))
    with pytest.raises(TokenError) as caught:
        asyncio.run(provider.get())
    assert str(caught.value) == message
