"""The Graph adapter on its own: the request it sends and how it reads Graph's answers and
transport failures. Requests go through httpx's real client; answers come from httpx's
MockTransport with Graph's documented error body
(`{"error":{"code","message","innerError":{"request-id"}}}`, learn.microsoft.com "Microsoft Graph
error responses and resource types") or from a refused loopback port."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import GraphResponse
from cancel_handler.core.errors import GraphTransportError
from cancel_handler.devtools.functions_host import settlement_host
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.graph.client import GraphClient
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, received_message

REQUEST = CancelRequest("adele.vance@contoso.com", "AAMk=", "Room closed.")


def _graph_error(code: object, message: object, request_id: object = "rid-body") -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "innerError": {"request-id": request_id}}}
    ).encode()


def _cancel(
    answer: httpx.Response | Exception,
    request: CancelRequest = REQUEST,
    base_url: str = "https://graph.microsoft.com/v1.0",
) -> tuple[GraphResponse, list[httpx.Request]]:
    """Send one cancel through GraphClient; Graph answers `answer` (or raises it)."""
    seen: list[httpx.Request] = []

    def handle(http_request: httpx.Request) -> httpx.Response:
        seen.append(http_request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run() -> GraphResponse:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
            client = GraphClient(http, base_url)
            return await client.cancel(request, token="tok-1", client_request_id="crid-1")

    return asyncio.run(run()), seen


def test_the_request_is_a_post_with_bearer_token_ids_and_comment() -> None:
    """POST to /users/{upn}/events/{id}/cancel, 'Authorization: Bearer <token>', the
    client-request-id echoed back on request, and the comment as the JSON body."""
    response, [sent] = _cancel(httpx.Response(202))
    assert response == GraphResponse(202)
    assert sent.method == "POST"
    assert str(sent.url) == (
        "https://graph.microsoft.com/v1.0/users/adele.vance%40contoso.com/events/AAMk%3D/cancel"
    )
    assert sent.headers["Authorization"] == "Bearer tok-1"
    assert sent.headers["client-request-id"] == "crid-1"
    assert sent.headers["return-client-request-id"] == "true"
    assert json.loads(sent.content) == {"comment": "Room closed."}


def test_without_a_comment_the_body_is_an_empty_object() -> None:
    """No comment → body `{}` (Graph requires a JSON body; `comment` is optional)."""
    _, [sent] = _cancel(httpx.Response(202), CancelRequest("a@b.c", "E"))
    assert json.loads(sent.content) == {}


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [
        ("https://graph.microsoft.com/v1.0/", b"/v1.0/users/"),
        ("http://127.0.0.1/GraphX//", b"/GraphX/users/"),
    ],
)
def test_a_trailing_slash_on_the_base_url_does_not_double(base_url: str, prefix: bytes) -> None:
    """A base URL ending in '/' gives a single '/' before 'users'; the rest of its path stays."""
    _, [sent] = _cancel(httpx.Response(202), base_url=base_url)
    assert sent.url.raw_path == prefix + b"adele.vance%40contoso.com/events/AAMk%3D/cancel"


def test_graphs_error_body_is_read() -> None:
    """A 404 with Graph's error body gives its code, message and the request-id header."""
    answer = httpx.Response(
        404,
        headers={"request-id": "rid-header"},
        content=_graph_error("ErrorItemNotFound", "The specified object was not found."),
    )
    response, _ = _cancel(answer)
    assert response == GraphResponse(
        404, "ErrorItemNotFound", "The specified object was not found.", "rid-header"
    )


@pytest.mark.parametrize("inner_key", ["innerError", "innererror"])
def test_the_body_request_id_is_used_when_the_header_is_missing(inner_key: str) -> None:
    """Without a request-id header, innerError's (or innererror's) request-id is used."""
    body = json.dumps({"error": {"code": "C", "message": "M", inner_key: {"request-id": "r-9"}}})
    response, _ = _cancel(httpx.Response(403, content=body.encode()))
    assert response.request_id == "r-9" and response.error_code == "C"


def test_retry_after_is_read_from_the_answer() -> None:
    """A 429's Retry-After (fractional seconds, as Graph sends) reaches the decision."""
    response, _ = _cancel(httpx.Response(429, headers={"Retry-After": "2.128"}))
    assert response.status == 429 and response.retry_after == 2.128


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": "Bad Request"}',
        b'{"error": ["x"]}',
        b'{"error": null}',
        b'["error"]',
        b'"error"',
        b"<html>400 Bad Request</html>",
        b"",
        b"[" * 100_000,
    ],
)
def test_an_error_body_of_another_shape_gives_no_details(body: bytes) -> None:
    """A 400 whose body is not Graph's error object still yields a plain 400, no crash."""
    response, _ = _cancel(httpx.Response(400, content=body))
    assert response == GraphResponse(400)


@pytest.mark.parametrize(
    ("code", "message", "request_id", "expected"),
    [
        (7, ["m"], {"x": 1}, (None, None, None)),
        ("", "", "", (None, None, None)),
        ("c" * 600, "m" * 600, "r" * 600, ("c" * 500, "m" * 500, "r" * 500)),
    ],
)
def test_error_fields_must_be_non_empty_strings_and_are_capped(
    code: object, message: object, request_id: object, expected: tuple
) -> None:
    """Non-strings and empty strings count as absent; long values are cut to 500 characters."""
    response, _ = _cancel(httpx.Response(400, content=_graph_error(code, message, request_id)))
    assert (response.error_code, response.error_message, response.request_id) == expected


def test_a_success_body_is_not_read_as_an_error() -> None:
    """A 2xx whose body happens to look like an error still carries no error details."""
    response, _ = _cancel(httpx.Response(202, content=_graph_error("X", "Y")))
    assert response == GraphResponse(202)


def test_an_error_body_of_exactly_16_kib_is_read_and_a_longer_one_is_cut() -> None:
    """Error bodies are read up to 16 KiB: a 16,384-byte error parses; at 16,385 bytes the cut
    JSON gives no details (and the connection is still released)."""
    base = _graph_error("ErrorInvalidRequest", "")
    padding = 16 * 1024 - len(base)
    fits = _graph_error("ErrorInvalidRequest", "m" * padding)
    assert len(fits) == 16384
    response, _ = _cancel(httpx.Response(400, content=fits))
    assert response.error_code == "ErrorInvalidRequest"
    too_long = _graph_error("ErrorInvalidRequest", "m" * (padding + 1))
    response, _ = _cancel(httpx.Response(400, content=too_long))
    assert response == GraphResponse(400)


def test_an_error_body_arriving_in_chunks_is_joined() -> None:
    """A streamed error body in several chunks is read whole (below the cap)."""
    body = _graph_error("ErrorAccessDenied", "Access is denied.")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response, _ = _cancel(httpx.Response(403, content=chunks()))
    assert response.error_message == "Access is denied."


def test_reading_stops_at_16_kib() -> None:
    """Once 16 KiB of an error body are in, no further chunk is requested from the network."""
    asked_for_more: list[bool] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 4096
        asked_for_more.append(True)
        yield b"never needed"

    response, _ = _cancel(httpx.Response(500, content=endless()))
    assert response == GraphResponse(500) and asked_for_more == []


@pytest.mark.parametrize(
    ("error", "kind", "outcome_unknown"),
    [
        (httpx.ConnectError("refused"), "connection refused", False),
        (httpx.ConnectTimeout("slow connect"), "connect timeout", False),
        (httpx.ReadTimeout("slow"), "response slower than the timeout", True),
        (httpx.WriteTimeout("slow"), "request write timed out", True),
        (httpx.PoolTimeout("busy"), "no free connection in time", True),
        (httpx.RemoteProtocolError("closed"), "connection closed or broken mid-response", True),
        (httpx.ReadError("reset"), "connection reset while reading", True),
        (httpx.WriteError("reset"), "connection reset while writing", True),
        (httpx.ProxyError("proxy"), "ProxyError", True),
    ],
)
def test_transport_failures_say_what_happened_and_whether_graph_may_have_acted(
    error: Exception, kind: str, outcome_unknown: bool
) -> None:
    """No HTTP answer → GraphTransportError naming the failure; only failures before the request
    was sent (refused, connect timeout) are known not to have reached Graph."""
    with pytest.raises(GraphTransportError) as caught:
        _cancel(error)
    assert caught.value.kind == kind and caught.value.outcome_unknown is outcome_unknown
    assert str(caught.value) == f"no answer from Graph: {kind}"
    assert caught.value.__suppress_context__


def test_a_refused_loopback_port_is_a_refused_connection() -> None:
    """A real refused TCP connection (nothing listening) is 'connection refused', not unknown."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            await GraphClient(http, f"http://127.0.0.1:{port}/v1.0").cancel(
                REQUEST, token="t", client_request_id="c"
            )

    with pytest.raises(GraphTransportError) as caught:
        asyncio.run(run())
    assert caught.value.kind == "connection refused" and caught.value.outcome_unknown is False


def test_a_400_whose_error_is_a_string_is_dead_lettered(loopback: Loopback) -> None:
    """End to end: Graph 400 with `{"error": "Bad Request"}` is dead-lettered GraphBadRequest
    once, not given back as a crash on every delivery."""
    loopback.graph.state.script(UPN, "C1", Fault(400, {}, b'{"error": "Bad Request"}'))
    actions = RecordingActions()
    [outcome] = process_all(loopback.processor(), [received_message(cancel_body("C1"))], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "GraphBadRequest")
    assert outcome.settlement.description.startswith("Graph 400; error.code=-; request-id=")


def test_a_lone_surrogate_in_graphs_message_still_dead_letters(loopback: Loopback) -> None:
    """Graph's JSON may escape a lone surrogate (`\\ud800`), which no UTF-8 text can hold: the
    dead-letter through the binding extension's real settlement client carries U+FFFD in its
    place instead of failing on every delivery until MaxDeliveryCountExceeded."""
    body = (
        b'{"error": {"code": "ErrorInvalidRequest", '
        b'"message": "bad \\ud800 You need to be an organizer to cancel a meeting. '
        b'\\udfff\\ue000"}}'
    )
    loopback.graph.state.script(UPN, "C1", Fault(400, {}, body))
    message = received_message(cancel_body("C1"))
    with settlement_host() as (service, actions):
        process_all(loopback.processor(), [message], actions)
        action, reason, description = service.settled(message)
    assert (action, reason) == ("deadletter", "NotOrganizer")
    # U+E000 is no surrogate
    assert "bad \ufffd You need to be an organizer to cancel a meeting. \ufffd\ue000" in description


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_an_id_that_url_normalisation_would_drop_is_refused(value: str) -> None:
    """An empty, '.' or '..' id would vanish from the path, so it is refused with a reason (the
    contract already refuses such ids; this guards every other caller)."""
    with pytest.raises(ValueError, match=r"^an id must not be empty, '\.' or '\.\.'$"):
        _cancel(httpx.Response(202), CancelRequest("a@b.c", value))


def test_an_error_body_of_exactly_16_kib_in_two_chunks_is_read_whole() -> None:
    """16,384 bytes arriving as 16,383 + 1 are both read: the cap counts every byte received."""
    body = _graph_error("ErrorInvalidRequest", "")
    body = _graph_error("ErrorInvalidRequest", "m" * (16 * 1024 - len(body)))

    async def two_chunks() -> AsyncIterator[bytes]:
        yield body[:-1]
        yield body[-1:]

    response, _ = _cancel(httpx.Response(400, content=two_chunks()))
    assert response.error_code == "ErrorInvalidRequest"
