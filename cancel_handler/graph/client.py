"""Microsoft Graph adapter: `POST /users/{id}/events/{id}/cancel` and the JSON reads the lookups
use (`GET` of a URL built by `graph.lookup` or `graph.calendar_view`), and their answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cancel_handler.core.backoff import parse_retry_after
from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import GraphResponse
from cancel_handler.core.errors import GraphTransportError
from cancel_handler.graph.paths import segment, user_path

if TYPE_CHECKING:
    # httpx (with httpcore, anyio, h11) is imported on the first call, not when the function is
    # indexed: about 13 ms of cold start (see docs/performance.md).
    import httpx

#: How much of an error body is read to find Graph's error code and message.
MAX_ERROR_BODY_BYTES = 16 * 1024
#: The most of a successful read's body kept (a calendarView page of 100 events with their
#: attendees is far below this); a longer body is cut and so reads as unreadable.
MAX_READ_BODY_BYTES = 8 * 1024 * 1024
#: Asks Graph for immutable event ids, which survive the move to Deleted Items on cancel.
PREFER_IMMUTABLE_IDS = 'IdType="ImmutableId"'


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """Graph's answer to a read: status and error details, and the JSON document of a 2xx
    answer (None when it was not a JSON object)."""

    response: GraphResponse
    document: dict[str, Any] | None = None


def cancel_path(request: CancelRequest) -> str:
    """The URL path below the Graph base URL: each id is one percent-encoded path segment."""
    if request.event_id is None:
        raise ValueError("only a request with an eventId can be cancelled directly")
    return f"{user_path(request.user_principal_name)}/events/{segment(request.event_id)}/cancel"


class GraphClient:
    """Cancels events through Graph over one shared, connection-pooled `httpx.AsyncClient`."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        """GRAPH_BASE_URL without a trailing slash: the root of every URL this client calls."""
        return self._base_url

    async def cancel(
        self, request: CancelRequest, *, token: str, client_request_id: str
    ) -> GraphResponse:
        """Send one cancel call; raise :class:`GraphTransportError` when no HTTP answer came."""
        body = {} if request.comment is None else {"comment": request.comment}
        url = self._base_url + cancel_path(request)
        response, answer_body = await self._exchange(
            "POST", url, _headers(token, client_request_id), body, MAX_ERROR_BODY_BYTES
        )
        return _to_response(response, answer_body if response.status_code >= 400 else b"")

    async def read(
        self, url: str, *, token: str, client_request_id: str, prefer: tuple[str, ...] = ()
    ) -> ReadAnswer:
        """GET `url` (built by this package: every value in it percent-encoded) with one
        `Prefer` header per preference; raise :class:`GraphTransportError` when no HTTP answer
        came."""
        headers = [*_headers(token, client_request_id).items()]
        headers += [("Prefer", preference) for preference in prefer]
        response, answer_body = await self._exchange(
            "GET", url, headers, None, MAX_READ_BODY_BYTES
        )
        if response.status_code >= 400:
            return ReadAnswer(_to_response(response, answer_body[:MAX_ERROR_BODY_BYTES]))
        try:
            document = json.loads(answer_body)
        except (ValueError, RecursionError):
            document = None
        return ReadAnswer(
            _to_response(response, b""), document if isinstance(document, dict) else None
        )

    async def _exchange(
        self, method: str, url: str, headers: Any, body: Any, limit: int
    ) -> tuple[httpx.Response, bytes]:
        import httpx  # already loaded by the client's owner; a dictionary lookup here

        try:
            async with self._http.stream(method, url, json=body, headers=headers) as response:
                # Read (a bounded amount of) every body so the connection goes back to the pool.
                answer_body = await _read_limited(response, limit)
        except httpx.ConnectError:
            raise GraphTransportError("connection refused", outcome_unknown=False) from None
        except httpx.ConnectTimeout:
            raise GraphTransportError("connect timeout", outcome_unknown=False) from None
        except httpx.TimeoutException as exc:
            raise GraphTransportError(_kind(exc), outcome_unknown=True) from None
        except httpx.TransportError as exc:
            raise GraphTransportError(_kind(exc), outcome_unknown=True) from None
        return response, answer_body


def _headers(token: str, client_request_id: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "client-request-id": client_request_id,
        "return-client-request-id": "true",
    }


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _kind(exc: httpx.TransportError) -> str:
    name = type(exc).__name__
    return {
        "ReadTimeout": "response slower than the timeout",
        "WriteTimeout": "request write timed out",
        "PoolTimeout": "no free connection in time",
        "RemoteProtocolError": "connection closed or broken mid-response",
        "ReadError": "connection reset while reading",
        "WriteError": "connection reset while writing",
    }.get(name, name)


def _to_response(response: httpx.Response, error_body: bytes) -> GraphResponse:
    code, message, body_request_id = _parse_error(error_body)
    return GraphResponse(
        status=response.status_code,
        error_code=code,
        error_message=message,
        request_id=response.headers.get("request-id") or body_request_id,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _parse_error(body: bytes) -> tuple[str | None, str | None, str | None]:
    """Graph's `error.code`, `error.message` and `innerError.request-id`, tolerating any body."""
    if not body:
        return None, None, None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None, None, None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    inner = error.get("innerError") or error.get("innererror")
    request_id = inner.get("request-id") if isinstance(inner, dict) else None
    return _text(error.get("code")), _text(error.get("message")), _text(request_id)


def _text(value: object) -> str | None:
    """Up to 500 characters of a string Graph sent, lone surrogates (valid JSON escapes, but not
    UTF-8: the host would refuse a dead-letter description holding one) as U+FFFD."""
    if not isinstance(value, str) or not value:
        return None
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value[:500])
