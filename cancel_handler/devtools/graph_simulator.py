"""A loopback Microsoft Graph simulator for `POST /users/{id}/events/{id}/cancel`, the iCalUId
lookup `GET /users/{id}/events?$filter=iCalUId eq '…'` and the paged
`GET /users/{id}/calendarView?startDateTime=…&endDateTime=…`.

It answers like Graph (202 on success; 400/403/404 error bodies with `error.code`, `message` and
`innerError.request-id`; 401 for a bad token), can enforce Graph's per-mailbox limits
(4 concurrent requests → 429 `ApplicationThrottled`; a request count per window) and plays
scripted faults per event (or per list: key `"events"` or `"calendarView"`): status codes with
`Retry-After`, resets, slow answers, odd bodies (`passthrough` answers a list call normally, to
reach a later page). Lists follow Graph's documented shapes: a
`value` array, `@odata.nextLink` with `$skip` for the next page (default page 10, `$top` up to
`max_page_size`), `dateTimeTimeZone` start/end in UTC, series masters only in `/events` and
occurrences and exceptions only in `calendarView`. A cancelled event leaves both lists, as Graph
moves it to Deleted Items.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cancel_handler.devtools._server import LoopbackServer, send_json
from cancel_handler.devtools.graph_limits import GraphLimits
from cancel_handler.devtools.identity_endpoint import TokenAuthority

NOT_ORGANIZER_MESSAGE = (
    "Your request can't be completed. You need to be an organizer to cancel a meeting."
)


@dataclass
class Fault:
    """A scripted answer: `status` with `headers`/`body`, or `reset` (close without answering),
    after `delay` seconds. `truncate` sends the status line, the headers and half the body, then
    closes (a reset mid-response). `cancels` performs the cancel first, as Graph does when only
    its answer is lost."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    reset: bool = False
    delay: float = 0.0
    truncate: bool = False
    cancels: bool = False
    #: Answer this call normally (lets a script reach a later page of a list).
    passthrough: bool = False


@dataclass
class Call:
    """One request the simulator received."""

    mailbox: str
    event_id: str
    comment: str | None
    status: int
    connection: tuple[str, int]
    token: str
    received_at: float
    path: str
    method: str = "POST"
    prefer: tuple[str, ...] = ()


@dataclass
class Meeting:
    """One event as the lists show it (`start`/`end` aware; `attendees` a count)."""

    id: str
    start: datetime
    end: datetime
    ical_uid: str = ""
    type: str = "singleInstance"
    organizer: bool = True
    cancelled: bool = False
    attendees: int = 1
    all_day: bool = False
    series_master_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as Graph lists it with `Prefer: outlook.timezone="UTC"`."""
        return {
            "id": self.id,
            "iCalUId": self.ical_uid,
            "type": self.type,
            "isOrganizer": self.organizer,
            "isCancelled": self.cancelled,
            "isAllDay": self.all_day,
            "seriesMasterId": self.series_master_id,
            "start": _date_time_time_zone(self.start),
            "end": _date_time_time_zone(self.end),
            "attendees": [
                {
                    "type": "required",
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    "emailAddress": {"name": f"Attendee {n}", "address": f"a{n}@example.com"},
                }
                for n in range(self.attendees)
            ],
        }


@dataclass
class GraphState:
    """What the simulator knows: mailboxes' events, limits, scripted faults, received calls."""

    authority: TokenAuthority
    events: dict[tuple[str, str], bool] = field(default_factory=dict)  # → is the organizer
    auto_events: bool = False  # unknown ids are organizer events (benchmarks)
    forbidden_mailboxes: set[str] = field(default_factory=set)
    faults: dict[tuple[str, str], deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    latency: float = 0.0
    mailbox_concurrency: int | None = None
    mailbox_window: tuple[int, float] | None = None  # (requests, seconds)
    calls: list[Call] = field(default_factory=list)
    cancelled: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    peak_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    window_hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    calendars: dict[str, list[Meeting]] = field(default_factory=lambda: defaultdict(list))
    missing_mailboxes: set[str] = field(default_factory=set)
    #: The largest `$top` honoured on calendarView (Graph documents none; lists default to 10).
    max_page_size: int = 1000
    #: When set, next links point at this origin instead of the simulator's (a hostile Graph).
    next_link_origin: str | None = None
    #: Graph's documented limits across every caller (a fleet); replaces the two above.
    limits: GraphLimits | None = None
    #: Seconds of latency per answer, drawn per request; replaces `latency` when set.
    latency_sampler: Callable[[], float] | None = None

    def answer_delay(self) -> float:
        """The latency of one answer."""
        sampler = self.latency_sampler
        return sampler() if sampler is not None else self.latency

    def add_event(self, mailbox: str, event_id: str, *, organizer: bool = True) -> None:
        """Create an event in a mailbox; `organizer=False` makes it an attendee's copy."""
        self.events[(mailbox.lower(), event_id)] = organizer

    def add_meeting(self, mailbox: str, meeting: Meeting) -> Meeting:
        """Put a meeting in a mailbox's calendar (and make its id cancellable)."""
        with self.lock:
            self.calendars[mailbox.lower()].append(meeting)
            if meeting.type != "seriesMaster" or meeting.id not in self.events:
                self.events[(mailbox.lower(), meeting.id)] = meeting.organizer
        return meeting

    def add_series(
        self,
        mailbox: str,
        master_id: str,
        first_start: datetime,
        count: int,
        *,
        every: timedelta = timedelta(days=1),
        duration: timedelta = timedelta(minutes=30),
        exceptions: dict[int, timedelta] | None = None,
        **options: Any,
    ) -> list[Meeting]:
        """A series master and its `count` occurrences (`exceptions`: index → moved by);
        each occurrence has its own id and iCalUId, as in Graph."""
        master = self.add_meeting(
            mailbox,
            Meeting(master_id, first_start, first_start + duration, type="seriesMaster",
                    ical_uid=f"UID-{master_id}", **options),
        )
        occurrences = []
        for index in range(count):
            shift = (exceptions or {}).get(index)
            start = first_start + index * every + (shift or timedelta())
            occurrences.append(
                self.add_meeting(
                    mailbox,
                    Meeting(
                        f"{master_id}-OCC{index}", start, start + duration,
                        ical_uid=f"UID-{master_id}-{index}",
                        type="exception" if shift is not None else "occurrence",
                        series_master_id=master_id, **options,
                    ),
                )
            )
        return [master, *occurrences]

    def script(self, mailbox: str, event_id: str, *faults: Fault) -> None:
        """Answer the next calls for this event with `faults`, in order, before normal handling."""
        self.faults[(mailbox.lower(), event_id)].extend(faults)


class GraphSimulator(LoopbackServer):
    """The simulator as a loopback server; `base_url` is the value for GRAPH_BASE_URL."""

    def __init__(self, authority: TokenAuthority, port: int = 0) -> None:
        super().__init__(_GraphHandler, port)
        self.state = GraphState(authority=authority)

    @property
    def graph_base_url(self) -> str:
        """The GRAPH_BASE_URL for this simulator."""
        return f"{self.base_url}/v1.0"


class _GraphHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        state: GraphState = self.server.owner.state  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path).path.split("/")
        # ['', 'v1.0', 'users', UPN, 'events', ID, 'cancel']
        if len(parts) != 7 or parts[2:7:2] != ["users", "events", "cancel"]:
            return self._error(
                400, "BadRequest", f"Resource not found for the segment: {self.path}"
            )
        mailbox, event_id = unquote(parts[3]).lower(), unquote(parts[5])
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        comment = _comment(raw)
        with state.lock:
            fault = (
                state.faults[(mailbox, event_id)].popleft()
                if state.faults.get((mailbox, event_id))
                else None
            )
        if fault is not None:
            if fault.cancels:
                with state.lock:
                    if state.events.get((mailbox, event_id)):
                        state.cancelled.add((mailbox, event_id))
            if fault.delay:
                time.sleep(fault.delay)
            self._record(
                state, mailbox, event_id, comment, 0 if fault.reset else fault.status, token
            )
            return self._play(replace(fault, delay=0.0))
        status, body, headers = self._decide(state, mailbox, event_id, token)
        self._record(state, mailbox, event_id, comment, status, token)
        send_json(self, status, body, headers)
        return None

    def do_GET(self) -> None:
        state: GraphState = self.server.owner.state  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        parts = url.path.split("/")
        # ['', 'v1.0', 'users', UPN, 'events' | 'calendarView']
        if len(parts) != 5 or parts[2] != "users" or parts[4] not in ("events", "calendarView"):
            return self._error(
                400, "BadRequest", f"Resource not found for the segment: {url.path}"
            )
        mailbox, kind = unquote(parts[3]).lower(), parts[4]
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        prefer = tuple(self.headers.get_all("Prefer") or ())
        with state.lock:
            queued = state.faults.get((mailbox, kind))
            fault = queued.popleft() if queued else None
        if fault is not None and not fault.passthrough:
            self._record(state, mailbox, "", None, 0 if fault.reset else fault.status, token,
                         "GET", prefer)
            return self._play(fault)
        status, body, headers = self._list(state, mailbox, kind, _query(url.query), token)
        self._record(state, mailbox, "", None, status, token, "GET", prefer)
        send_json(self, status, body, headers)
        return None

    def _list(
        self, state: GraphState, mailbox: str, kind: str, query: dict[str, str], token: str
    ) -> tuple[int, bytes, dict]:
        stopped = _stopped(state, mailbox, token)
        if stopped is not None:
            return stopped
        try:
            with state.lock:
                live = [
                    m for m in state.calendars.get(mailbox, [])
                    if (mailbox, m.id) not in state.cancelled
                ]
            delay = state.answer_delay()
            if delay:
                time.sleep(delay)
            if kind == "events":
                return self._events(live, query)
            return self._calendar_view(state, mailbox, live, query)
        finally:
            if state.limits is not None:
                state.limits.release(mailbox)

    def _events(self, live: list[Meeting], query: dict[str, str]) -> tuple[int, bytes, dict]:
        match = re.fullmatch(r"iCalUId eq '((?:[^']|'')*)'", query.get("$filter", ""))
        if match is None:
            return _answer(400, "BadRequest", "Invalid filter clause")
        wanted = match.group(1).replace("''", "'")
        found = [
            m.to_json() for m in live
            if m.ical_uid == wanted and m.type in ("singleInstance", "seriesMaster")
        ]
        return _list_answer({"value": [_selected(e, query) for e in found]})

    def _calendar_view(
        self, state: GraphState, mailbox: str, live: list[Meeting], query: dict[str, str]
    ) -> tuple[int, bytes, dict]:
        try:
            start = _graph_instant(query["startDateTime"])
            end = _graph_instant(query["endDateTime"])
            top = min(int(query.get("$top", "10")), state.max_page_size)
            skip = int(query.get("$skip", "0"))
        except (KeyError, ValueError):
            return _answer(
                400, "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            )
        overlapping = sorted(
            (m for m in live if m.type != "seriesMaster" and m.start < end and m.end > start),
            key=lambda m: (m.start, m.id),
        )
        page = overlapping[skip : skip + top]
        document: dict[str, Any] = {"value": [_selected(m.to_json(), query) for m in page]}
        if skip + top < len(overlapping):
            origin = state.next_link_origin or self.server.owner.base_url  # type: ignore[attr-defined]
            next_query = {**query, "$skip": str(skip + top)}
            document["@odata.nextLink"] = (
                f"{origin}/v1.0/users/{quote(mailbox, safe='')}/calendarView?"
                + "&".join(f"{k}={quote(v, safe='')}" for k, v in next_query.items())
            )
        return _list_answer(document)

    def _play(self, fault: Fault) -> None:
        """Answer with a scripted fault."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.reset:
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        body = (
            fault.body
            if fault.body is not None
            else _error_body(fault.status, "ServiceUnavailable", "Simulated fault.")
        )
        headers = {
            "Content-Type": "application/json",
            "request-id": str(uuid.uuid4()),
            **fault.headers,
        }
        if fault.truncate:
            return _send_truncated(self, fault.status, body or b"{}", headers)
        return send_json(self, fault.status, body, headers)

    def _decide(
        self, state: GraphState, mailbox: str, event_id: str, token: str
    ) -> tuple[int, bytes, dict]:
        stopped = _stopped(state, mailbox, token)
        if stopped is not None:
            return stopped
        with state.lock:
            state.in_flight[mailbox] += 1
            state.peak_in_flight[mailbox] = max(
                state.peak_in_flight[mailbox], state.in_flight[mailbox]
            )
        try:
            delay = state.answer_delay()
            if delay:
                time.sleep(delay)
            with state.lock:
                key = (mailbox, event_id)
                organizer = state.events.get(key, True if state.auto_events else None)
                if organizer is None or key in state.cancelled:
                    return _answer(
                        404, "ErrorItemNotFound", "The specified object was not found in the store."
                    )
                if not organizer:
                    return _answer(400, "ErrorInvalidRequest", NOT_ORGANIZER_MESSAGE)
                state.cancelled.add(
                    key
                )  # Graph moves the event to Deleted Items: its id stops resolving
                return 202, b"", {"request-id": str(uuid.uuid4())}
        finally:
            with state.lock:
                state.in_flight[mailbox] -= 1
            if state.limits is not None:
                state.limits.release(mailbox)

    def _record(
        self,
        state: GraphState,
        mailbox: str,
        event_id: str,
        comment: str | None,
        status: int,
        token: str,
        method: str = "POST",
        prefer: tuple[str, ...] = (),
    ) -> None:
        with state.lock:
            state.calls.append(
                Call(
                    mailbox,
                    event_id,
                    comment,
                    status,
                    self.client_address,
                    token,
                    time.monotonic(),
                    self.path,
                    method,
                    prefer,
                )
            )

    def _error(self, status: int, code: str, message: str) -> None:
        send_json(self, *_answer(status, code, message))


def _send_truncated(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict
) -> None:
    """Announce the whole body, send half of it, then close the connection."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body) + 16))
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(2)


def _refusal(state: GraphState, mailbox: str, token: str) -> tuple[int, bytes, dict] | None:
    """Graph's answer before it looks at the resource: a bad token (401), an unknown user
    (404), a mailbox outside the app's scope (403); None when none applies."""
    if not state.authority.is_valid(token):
        return _answer(
            401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
        )
    if mailbox in state.missing_mailboxes:
        return _answer(404, "ErrorInvalidUser", "The requested user is invalid.")
    if mailbox in state.forbidden_mailboxes:
        return _answer(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    return None


def _throttled(state: GraphState, mailbox: str) -> tuple[int, bytes, dict] | None:
    """Graph's 429 when the call is over a mailbox limit (the caller holds the state lock)."""
    over = _over_limits(state, mailbox)
    if over is None:
        return None
    return _answer(429, "ApplicationThrottled", over, {"Retry-After": "1"})


def _stopped(state: GraphState, mailbox: str, token: str) -> tuple[int, bytes, dict] | None:
    """The answer that stops a call before Graph looks at it: a refused token or mailbox, this
    mailbox's own limits, then the limits shared by every caller; None when it goes ahead."""
    with state.lock:
        stopped = _refusal(state, mailbox, token) or _throttled(state, mailbox)
    return stopped if stopped is not None else _shared_limits(state, mailbox)


def _shared_limits(state: GraphState, mailbox: str) -> tuple[int, bytes, dict] | None:
    """Graph's 429 when `state.limits` refuses the call (then nothing is to be released)."""
    if state.limits is None:
        return None
    refusal = state.limits.admit(mailbox)
    if refusal is None:
        return None
    try:
        if state.limits.rules.refusal_latency:
            time.sleep(state.limits.rules.refusal_latency)
    finally:
        state.limits.release(mailbox, refused=True)
    # Graph sends Retry-After in seconds, fractional in its own sample ("2.128").
    return _answer(
        429, "ApplicationThrottled", refusal.message, {"Retry-After": f"{refusal.retry_after:.3f}"}
    )


def _over_limits(state: GraphState, mailbox: str) -> str | None:
    if (
        state.mailbox_concurrency is not None
        and state.in_flight[mailbox] >= state.mailbox_concurrency
    ):
        return "Application is over its MailboxConcurrency limit."
    if state.mailbox_window is not None:
        limit, seconds = state.mailbox_window
        hits, now = state.window_hits[mailbox], time.monotonic()
        while hits and hits[0] <= now - seconds:
            hits.popleft()
        if len(hits) >= limit:
            return "Application is over its request limit for this mailbox."
        hits.append(now)
    return None


def _query(text: str) -> dict[str, str]:
    """Query parameters, percent-decoded (a `+` stays a `+`, as in Graph's URL parsing)."""
    pairs = (item.partition("=") for item in text.split("&") if item)
    return {unquote(name): unquote(value) for name, _, value in pairs}


def _graph_instant(text: str) -> datetime:
    """A calendarView bound: ISO 8601; without an offset Graph reads it as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _date_time_time_zone(instant: datetime) -> dict[str, str]:
    """Graph's `dateTimeTimeZone` in UTC: seven fractional digits, no offset."""
    utc = instant.astimezone(UTC)
    return {"dateTime": utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0",
            "timeZone": "UTC"}


def _selected(event: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    """Only the `$select`ed properties (and `id`, which Graph always returns)."""
    names = query.get("$select")
    if not names:
        return event
    wanted = {"id", *names.split(",")}
    return {name: value for name, value in event.items() if name in wanted}


def _list_answer(document: dict[str, Any]) -> tuple[int, bytes, dict]:
    return 200, json.dumps(document).encode(), {
        "Content-Type": "application/json",
        "request-id": str(uuid.uuid4()),
    }


def _comment(raw: bytes) -> str | None:
    try:
        value = json.loads(raw).get("comment") if raw else None
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _error_body(status: int, code: str, message: str) -> bytes:
    request_id = str(uuid.uuid4())
    return json.dumps(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"request-id": request_id, "date": "2026-01-01T00:00:00"},
            }
        }
    ).encode()


def _answer(
    status: int, code: str, message: str, extra: dict | None = None
) -> tuple[int, bytes, dict]:
    body = _error_body(status, code, message)
    request_id = json.loads(body)["error"]["innerError"]["request-id"]
    return (
        status,
        body,
        {"Content-Type": "application/json", "request-id": request_id, **(extra or {})},
    )
