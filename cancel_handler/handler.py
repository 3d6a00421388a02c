"""The cancel path for one message: validate, find the event(s), call Graph with bounded retries,
decide. Every Graph call of one message (lookup, calendar pages, cancel) shares one wait budget
and one attempt limit."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from cancel_handler.core.backoff import IN_INVOCATION, RetryPolicy, WaitBudget
from cancel_handler.core.contract import (
    DEFAULT_RANGE_MAX_DAYS,
    CancelRequest,
    TimeWindow,
    parse_cancel_request,
)
from cancel_handler.core.decision import (
    Action,
    Reason,
    Retry,
    Settlement,
    Verdict,
    clip,
    decide,
    decide_list,
    is_redelivery,
)
from cancel_handler.core.errors import InvalidMessageError, TransientError
from cancel_handler.core.outcome import FanOutPlan, Outcome, RangeReport
from cancel_handler.core.selection import (
    DEFAULT_RANGE_MAX_EVENTS,
    CalendarEvent,
    decide_ical_matches,
    live_matches,
    named_match,
    range_too_large,
    ranges_off,
    select_range,
)
from cancel_handler.graph.calendar_view import (
    CALENDAR_VIEW_PREFER,
    LISTING_SECONDS_LIMIT,
    first_page_url,
    next_link_problem,
    page_limit,
)
from cancel_handler.graph.client import GraphClient, ReadAnswer
from cancel_handler.graph.events import event_list
from cancel_handler.graph.limiter import MailboxLimiter
from cancel_handler.graph.lookup import LOOKUP_PAGE_LIMIT, LOOKUP_PREFER, lookup_url
from cancel_handler.graph.token import TokenProvider

T = TypeVar("T")


@dataclass
class _Run:
    """The attempts of one message so far, across all its Graph calls; `request` is the request
    as the sender wrote it (its target goes into the reply)."""

    request: CancelRequest
    budget: WaitBudget
    started: float
    may_be_cancelled_already: bool
    client_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    attempts: int = 0
    waits: int = 0
    status: int | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Listed:
    """Events read from Graph and the number of list calls that took; `complete` is False when
    the listing stopped early because more events qualified than may be cancelled."""

    events: list[CalendarEvent]
    calls: int
    complete: bool = True


class CancelHandler:
    """Turns a message body into an :class:`Outcome` (or, for a date range to cancel, a
    :class:`FanOutPlan`); never raises for Graph or token trouble."""

    def __init__(
        self,
        graph: GraphClient,
        tokens: TokenProvider,
        *,
        retry_budget_seconds: float,
        limiter: MailboxLimiter,
        range_max_days: int = DEFAULT_RANGE_MAX_DAYS,
        range_max_events: int = DEFAULT_RANGE_MAX_EVENTS,
        policy: RetryPolicy = IN_INVOCATION,
        listing_seconds_limit: float = LISTING_SECONDS_LIMIT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._graph = graph
        self._tokens = tokens
        self._budget_seconds = retry_budget_seconds
        self._limiter = limiter
        self._range_max_days = range_max_days
        self._range_max_events = range_max_events
        self._policy = policy
        self._listing_seconds_limit = listing_seconds_limit
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock
        self._now = now

    async def handle(
        self, body: bytes, *, delivery_count: int | None, may_be_cancelled_already: bool = False
    ) -> Outcome | FanOutPlan:
        """Decide the fate of one message. A redelivery (`delivery_count > 1`; a missing count is
        a first delivery) or a copy sent after attempts whose outcome may be unknown (a delayed
        retry, an operator's resubmission of an exhausted message, a date range's child request)
        may find the event already cancelled."""
        started = self._clock()
        try:
            request = parse_cancel_request(body, max_range_days=self._range_max_days)
        except InvalidMessageError as exc:
            settlement = Settlement(Action.DEADLETTER, Reason.INVALID_MESSAGE, clip(str(exc)))
            return Outcome(settlement, elapsed_ms=self._elapsed_ms(started))
        run = _Run(
            request,
            WaitBudget(self._budget_seconds),
            started,
            may_be_cancelled_already=is_redelivery(delivery_count) or may_be_cancelled_already,
        )
        if request.window is not None:
            return await self._range(request, request.window, run)
        if request.ical_uid is not None:
            return await self._by_ical_uid(request, request.ical_uid, run)
        return await self._cancel(request, run)

    async def _cancel(self, request: CancelRequest, run: _Run) -> Outcome:
        async def call(token: str) -> tuple[Verdict, None]:
            async with self._limiter.slot(request.user_principal_name):
                response = await self._graph.cancel(
                    request, token=token, client_request_id=run.client_request_id
                )
            run.status, run.request_id = response.status, response.request_id
            return decide(response, may_be_cancelled_already=run.may_be_cancelled_already), None

        result = await self._with_retries(run, call, cancels=True)
        assert isinstance(result, Outcome), "a cancel always ends in a settlement"
        return replace(result, event_id=request.event_id)

    async def _by_ical_uid(self, request: CancelRequest, ical_uid: str, run: _Run) -> Outcome:
        url = lookup_url(self._graph.base_url, request.user_principal_name, ical_uid)
        listed = await self._read_pages(
            request, url, LOOKUP_PREFER, run, max_pages=LOOKUP_PAGE_LIMIT, enough=_two_or_more()
        )
        if isinstance(listed, Outcome):
            return listed
        matches = listed.events
        found = decide_ical_matches(
            matches, may_be_cancelled_already=run.may_be_cancelled_already, more=not listed.complete
        )
        if isinstance(found, Settlement):
            # Name the event found only when the answer is about one event (an ambiguous one
            # has two live matches at least, so none is named).
            return self._outcome(run, found, event_id=named_match(matches))
        return await self._cancel(replace(request, event_id=found), run)

    async def _range(
        self, request: CancelRequest, window: TimeWindow, run: _Run
    ) -> Outcome | FanOutPlan:
        if self._range_max_events == 0:  # date ranges are off: refused before Graph is asked
            return self._outcome(run, _previewed(request, ranges_off()))
        now = self._now()
        listed = await self._list_calendar(request, window, now, run)
        if isinstance(listed, Outcome):
            return listed
        selection = select_range(listed.events, window, now)
        report = RangeReport(selection, list_calls=listed.calls)
        too_large = range_too_large(
            selection, self._range_max_events, listed_all=listed.complete
        )
        if too_large is not None:
            return self._outcome(run, _previewed(request, too_large), range_report=report)
        count = len(selection.selected)
        if request.preview:
            detail = (
                f"preview: {count} event(s) would be cancelled; skipped: "
                f"{selection.describe_skipped()}; nothing was cancelled"
            )
            return self._outcome(
                run, Settlement(Action.COMPLETE, Reason.PREVIEWED, detail), range_report=report
            )
        planned = Settlement(
            Action.ABANDON, Reason.TRANSIENT_FAILURE, "child requests not sent yet"
        )
        return FanOutPlan(request, self._outcome(run, planned, range_report=report))

    async def _list_calendar(
        self, request: CancelRequest, window: TimeWindow, now: datetime, run: _Run
    ) -> _Listed | Outcome:
        """Every page of the window, or the pages up to the one where more events qualify than
        RANGE_MAX_EVENTS allows (the answer is RangeTooLarge either way: no need to read on)."""
        seen: set[str] = set()
        qualifying = 0

        def enough(page: list[CalendarEvent]) -> bool:
            nonlocal qualifying
            fresh = [event for event in page if event.id not in seen]
            seen.update(event.id for event in fresh)
            qualifying += len(select_range(fresh, window, now).selected)
            return qualifying > self._range_max_events

        url = first_page_url(self._graph.base_url, request.user_principal_name, window)
        return await self._read_pages(
            request,
            url,
            CALENDAR_VIEW_PREFER,
            run,
            max_pages=page_limit(self._range_max_events),
            enough=enough,
        )

    async def _read_pages(
        self,
        request: CancelRequest,
        url: str,
        prefer: tuple[str, ...],
        run: _Run,
        *,
        max_pages: int,
        enough: Callable[[list[CalendarEvent]], bool],
    ) -> _Listed | Outcome:
        """The events of `url` and the pages its `@odata.nextLink`s name, until the last page
        or until `enough(page)` says to stop (then `complete` is False). A listing that would
        not end (a next link off Graph or back to a page already read, more than `max_pages`
        pages, longer than the time limit) is dead-lettered GraphBadRequest naming why."""
        started = self._clock()
        visited: set[str] = set()
        events: list[CalendarEvent] = []
        calls = 0
        link: str | None = url
        while link is not None:
            visited.add(link)
            answer = await self._with_retries(run, self._reader(request, link, prefer, run))
            if isinstance(answer, Outcome):
                return answer
            calls += 1
            page, link = event_list(answer.document)
            events.extend(page)
            if link is None:
                break
            if enough(page):
                return _Listed(events, calls, complete=False)
            problem = next_link_problem(self._graph.base_url, link) or self._endless(
                link, visited, calls, max_pages, self._clock() - started
            )
            if problem is not None:
                settlement = Settlement(Action.DEADLETTER, Reason.GRAPH_BAD_REQUEST, problem)
                return self._outcome(run, settlement)
        return _Listed(events, calls)

    def _endless(
        self, link: str, visited: set[str], pages: int, max_pages: int, seconds: float
    ) -> str | None:
        """Why a listing that has read `pages` pages in `seconds` must not follow `link`."""
        stopped = "; the listing was stopped and nothing was cancelled"
        if link in visited:
            return (
                f"Graph's @odata.nextLink leads back to a page already read (after {pages} "
                f"page(s)), so the listing would never end{stopped}"
            )
        if pages >= max_pages:
            return (
                f"Graph's list still had a next page after {pages} pages, the most one listing "
                f"reads{stopped}"
            )
        if seconds > self._listing_seconds_limit:
            return (
                f"Graph's list still had a next page after {pages} page(s) and {seconds:.0f}s, "
                f"longer than one delivery may list ({self._listing_seconds_limit:g}s)"
                f"{stopped}; resubmit when Graph answers faster"
            )
        return None

    def _reader(
        self, request: CancelRequest, url: str, prefer: tuple[str, ...], run: _Run
    ) -> Callable[[str], Awaitable[tuple[Verdict | None, ReadAnswer]]]:
        """One read of `url` as a retryable call: a list answer that is not a list of events
        is retried like a 5xx (Graph answered, but not with anything usable)."""

        async def call(token: str) -> tuple[Verdict | None, ReadAnswer]:
            async with self._limiter.slot(request.user_principal_name):
                answer = await self._graph.read(
                    url, token=token, client_request_id=run.client_request_id, prefer=prefer
                )
            response = answer.response
            run.status, run.request_id = response.status, response.request_id
            verdict = decide_list(response)
            if verdict is None:
                try:
                    event_list(answer.document)
                except ValueError as exc:
                    verdict = Retry(f"Graph answered {response.status} but {exc}")
            return verdict, answer

        return call

    async def _with_retries(
        self,
        run: _Run,
        call: Callable[[str], Awaitable[tuple[Verdict | None, T]]],
        *,
        cancels: bool = False,
    ) -> T | Outcome:
        """Make `call(token)` until its verdict is None (return its value) or a settlement, or
        until the budget or the attempt limit gives the message back (return the outcome).
        Only a cancel call's unknown outcome may mean an event was cancelled."""
        rejected_token: str | None = None
        refreshed = False
        tries = 0  # the policy limits the attempts of one call, not a listing's pages
        while True:
            run.attempts += 1
            tries += 1
            token: str | None = None
            try:
                if rejected_token is not None:
                    token = await self._tokens.refresh(rejected_token)
                    rejected_token = None
                else:
                    token = await self._tokens.get()
                verdict, value = await call(token)
            except TransientError as exc:
                verdict = Retry(str(exc), outcome_unknown=cancels and exc.outcome_unknown)

            if verdict is None:
                return value  # type: ignore[return-value]
            if isinstance(verdict, Settlement):
                return self._outcome(run, verdict)
            run.may_be_cancelled_already = run.may_be_cancelled_already or verdict.outcome_unknown
            if verdict.refresh_token and not refreshed:
                refreshed = True
                rejected_token = token
                continue
            run.waits += 1
            delay = (
                verdict.retry_after
                if verdict.retry_after is not None
                else self._policy.backoff(run.waits, self._rng.random())
            )
            if tries >= self._policy.max_tries or not run.budget.allows(delay):
                description = (
                    f"{verdict.detail}; gave up after {run.attempts} attempt(s) and "
                    f"{run.budget.spent:.1f}s of waiting (budget {run.budget.seconds:g}s)"
                )
                settlement = Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, description)
                return replace(self._outcome(run, settlement), retry_after=verdict.retry_after)
            run.budget.spend(delay)
            await self._sleep(delay)

    def _outcome(self, run: _Run, settlement: Settlement, **details: object) -> Outcome:
        return Outcome(
            settlement,
            run.attempts,
            run.status,
            run.request_id,
            self._elapsed_ms(run.started),
            request=run.request,
            waited_seconds=run.budget.spent,
            **details,  # type: ignore[arg-type]
        )

    def _elapsed_ms(self, started: float) -> int:
        return int((self._clock() - started) * 1000)


def _two_or_more() -> Callable[[list[CalendarEvent]], bool]:
    """A lookup reads on until a second match not cancelled yet is found (two such matches are
    ambiguous already, whatever later pages hold)."""
    found = 0

    def enough(page: list[CalendarEvent]) -> bool:
        nonlocal found
        found += len(live_matches(page))
        return found >= 2

    return enough


def _previewed(request: CancelRequest, refusal: Settlement) -> Settlement:
    """A range refusal as a preview answers it: completed with the same reason and text (the
    sender is told; no operator is paged), or `refusal` itself for a real request."""
    if not request.preview:
        return refusal
    return Settlement(Action.COMPLETE, refusal.reason, f"preview: {refusal.description}")
