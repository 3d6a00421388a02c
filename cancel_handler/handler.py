"""The cancel path for one message: validate, call Graph with bounded retries, decide."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from cancel_handler.core.backoff import MAX_ATTEMPTS, WaitBudget, backoff_delay
from cancel_handler.core.contract import CancelRequest, parse_cancel_request
from cancel_handler.core.decision import (
    Action,
    Reason,
    Retry,
    Settlement,
    clip,
    decide,
    is_redelivery,
)
from cancel_handler.core.errors import InvalidMessageError, TransientError
from cancel_handler.core.outcome import Outcome
from cancel_handler.graph.client import GraphClient
from cancel_handler.graph.limiter import MailboxLimiter
from cancel_handler.graph.token import TokenProvider


class CancelHandler:
    """Turns a message body into an :class:`Outcome`; never raises for Graph or token trouble."""

    def __init__(
        self,
        graph: GraphClient,
        tokens: TokenProvider,
        *,
        retry_budget_seconds: float,
        limiter: MailboxLimiter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._graph = graph
        self._tokens = tokens
        self._budget_seconds = retry_budget_seconds
        self._limiter = limiter
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock

    async def handle(
        self, body: bytes, *, delivery_count: int | None, copy_of_earlier_attempt: bool = False
    ) -> Outcome:
        """Decide the fate of one message. A redelivery (`delivery_count > 1`; a missing count is
        a first delivery) or a copy sent after attempts whose outcome may be unknown (a delayed
        retry, an operator's resubmission of an exhausted message) may find the event already
        cancelled."""
        started = self._clock()
        try:
            request = parse_cancel_request(body)
        except InvalidMessageError as exc:
            settlement = Settlement(Action.DEADLETTER, Reason.INVALID_MESSAGE, clip(str(exc)))
            return Outcome(settlement, elapsed_ms=self._elapsed_ms(started))
        return await self._cancel(
            request, started, redelivered=is_redelivery(delivery_count) or copy_of_earlier_attempt
        )

    async def _cancel(
        self, request: CancelRequest, started: float, *, redelivered: bool
    ) -> Outcome:
        budget = WaitBudget(self._budget_seconds)
        client_request_id = str(uuid.uuid4())
        may_have_happened = redelivered
        rejected_token: str | None = None
        refreshed = False
        status: int | None = None
        request_id: str | None = None
        attempts = waits = 0
        while True:
            attempts += 1
            token: str | None = None
            try:
                if rejected_token is not None:
                    token = await self._tokens.refresh(rejected_token)
                    rejected_token = None
                else:
                    token = await self._tokens.get()
                async with self._limiter.slot(request.user_principal_name):
                    response = await self._graph.cancel(
                        request, token=token, client_request_id=client_request_id
                    )
                status, request_id = response.status, response.request_id
                verdict = decide(response, cancel_may_have_happened=may_have_happened)
            except TransientError as exc:
                verdict = Retry(str(exc), outcome_unknown=exc.outcome_unknown)

            if isinstance(verdict, Settlement):
                return Outcome(
                    verdict,
                    attempts,
                    status,
                    request_id,
                    self._elapsed_ms(started),
                    request=request,
                )
            may_have_happened = may_have_happened or verdict.outcome_unknown
            if verdict.refresh_token and not refreshed:
                refreshed = True
                rejected_token = token
                continue
            waits += 1
            delay = (
                verdict.retry_after
                if verdict.retry_after is not None
                else backoff_delay(waits, self._rng)
            )
            if attempts >= MAX_ATTEMPTS or not budget.allows(delay):
                description = (
                    f"{verdict.detail}; gave up after {attempts} attempt(s) and "
                    f"{budget.spent:.1f}s of waiting (budget {budget.seconds:g}s)"
                )
                settlement = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, description)
                return Outcome(
                    settlement,
                    attempts,
                    status,
                    request_id,
                    self._elapsed_ms(started),
                    retry_after=verdict.retry_after,
                    request=request,
                )
            budget.spend(delay)
            await self._sleep(delay)

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock() - started) * 1000)
