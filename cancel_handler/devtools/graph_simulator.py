"""A loopback Microsoft Graph simulator for `POST /users/{id}/events/{id}/cancel`.

It answers like Graph (202 on success; 400/403/404 error bodies with `error.code`, `message` and
`innerError.request-id`; 401 for a bad token), can enforce Graph's per-mailbox limits
(4 concurrent requests → 429 `ApplicationThrottled`; a request count per window) and plays
scripted faults per event: status codes with `Retry-After`, resets, slow answers, odd bodies.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from cancel_handler.devtools._server import LoopbackServer, send_json
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

    def add_event(self, mailbox: str, event_id: str, *, organizer: bool = True) -> None:
        """Create an event in a mailbox; `organizer=False` makes it an attendee's copy."""
        self.events[(mailbox.lower(), event_id)] = organizer

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
        status, body, headers = self._decide(state, mailbox, event_id, token)
        self._record(state, mailbox, event_id, comment, status, token)
        send_json(self, status, body, headers)
        return None

    def _decide(
        self, state: GraphState, mailbox: str, event_id: str, token: str
    ) -> tuple[int, bytes, dict]:
        if not state.authority.is_valid(token):
            return _answer(
                401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
            )
        if mailbox in state.forbidden_mailboxes:
            return _answer(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        with state.lock:
            throttled = _over_limits(state, mailbox)
            if throttled:
                return _answer(429, "ApplicationThrottled", throttled, {"Retry-After": "1"})
            state.in_flight[mailbox] += 1
            state.peak_in_flight[mailbox] = max(
                state.peak_in_flight[mailbox], state.in_flight[mailbox]
            )
        try:
            if state.latency:
                time.sleep(state.latency)
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

    def _record(
        self,
        state: GraphState,
        mailbox: str,
        event_id: str,
        comment: str | None,
        status: int,
        token: str,
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
