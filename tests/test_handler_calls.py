"""What the handler sends across retries of one message: the same client-request-id on every
attempt (Graph's correlation of retries), a new one per message, and after a 401 exactly one
forced token fetch. Graph answers through httpx's MockTransport; tokens come from the real
TokenProvider over a recording source returning azure-core's AccessTokenInfo."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from azure.core.credentials import AccessTokenInfo

from cancel_handler.core.decision import Action
from cancel_handler.core.outcome import Outcome
from cancel_handler.graph.client import GraphClient
from cancel_handler.graph.limiter import MailboxLimiter
from cancel_handler.graph.token import TokenProvider
from cancel_handler.handler import CancelHandler
from tests.helpers import RecordingSleep

BODY = b'{"userPrincipalName": "adele.vance@contoso.com", "eventId": "AAMk="}'
CLAIMS = {"claims": '{"access_token":{"nbf":{"essential":true}}}'}


class TokenSource:
    """Hands out t1, t2, … (valid for an hour) and records each request's options."""

    def __init__(self) -> None:
        self.options: list[dict | None] = []

    def get_token_info(self, *scopes: str, options: dict | None = None) -> AccessTokenInfo:
        self.options.append(options)
        return AccessTokenInfo(f"t{len(self.options)}", 4_000_000_000)


def _run(statuses: list[int], messages: int = 1) -> tuple[list[httpx.Request], list, TokenSource]:
    """Handle `messages` messages while Graph answers `statuses` in turn."""
    sent: list[httpx.Request] = []
    answers = iter(statuses)
    source = TokenSource()

    def graph(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(next(answers))

    async def run() -> list[Outcome]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(graph)) as http:
            handler = CancelHandler(
                GraphClient(http, "https://graph.microsoft.com/v1.0"),
                TokenProvider(source, "https://graph.microsoft.com/.default"),
                retry_budget_seconds=60,
                limiter=MailboxLimiter(4),
                sleep=RecordingSleep(),
            )
            return [await handler.handle(BODY, delivery_count=1) for _ in range(messages)]

    return sent, asyncio.run(run()), source


def test_retries_of_one_message_share_one_client_request_id() -> None:
    """Three attempts of one message carry the same UUID client-request-id; the next message
    gets another one."""
    sent, outcomes, _ = _run([503, 503, 202, 202], messages=2)
    ids = [request.headers["client-request-id"] for request in sent]
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert all(str(uuid.UUID(value)) == value for value in ids)
    assert [o.settlement.action for o in outcomes] == [Action.COMPLETE, Action.COMPLETE]


def test_a_401_forces_exactly_one_new_token() -> None:
    """401 → one fetch with the claims challenge, then the new token is reused for later
    retries (a 503 after it is retried without another forced fetch)."""
    sent, [outcome], source = _run([401, 503, 202])
    assert source.options == [None, CLAIMS]
    tokens = [request.headers["Authorization"] for request in sent]
    assert tokens == ["Bearer t1", "Bearer t2", "Bearer t2"]
    assert outcome.settlement.action is Action.COMPLETE and outcome.attempts == 3


def test_a_second_401_is_not_refreshed_again() -> None:
    """After one refresh, another 401 is waited out like any transient answer (no second
    forced fetch), and the next attempt uses the cached token."""
    sent, [outcome], source = _run([401, 401, 202])
    assert source.options == [None, CLAIMS]
    assert [r.headers["Authorization"] for r in sent] == ["Bearer t1", "Bearer t2", "Bearer t2"]
    assert outcome.settlement.action is Action.COMPLETE
