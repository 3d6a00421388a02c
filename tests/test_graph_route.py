"""No message can make the function call any Graph route other than
`/users/{one segment}/events/{one segment}/cancel`."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import httpx
import pytest

from cancel_handler.core.contract import CancelRequest
from cancel_handler.graph.client import GraphClient, cancel_path
from tests.conftest import Loopback, cancel_body, process_all
from tests.helpers import RecordingActions, received_message


@pytest.mark.parametrize(
    ("upn", "event_id"),
    [
        ("a@b.c", "../../me/messages"),
        ("../../admin", "E"),
        ("a@b.c", "E/cancel?x=1#frag"),
        ("a@b.c?$select=x", "E%2F.."),
        ("a b@c.d", "E\r\nHost: evil"),
    ],
)
def test_each_id_is_one_encoded_segment(upn: str, event_id: str) -> None:
    """Even ids the validator would refuse cannot add segments, queries or fragments."""
    path = cancel_path(CancelRequest(upn, event_id))
    parts = path.split("/")
    assert len(parts) == 6 and parts[1] == "users" and parts[3] == "events" and parts[5] == "cancel"
    assert unquote(parts[2]) == upn and unquote(parts[4]) == event_id
    assert not any(c in path for c in "?# \r\n")


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_dot_segments_are_refused(value: str) -> None:
    """'.' and '..' would be collapsed by URL normalisation, so they are refused outright."""
    with pytest.raises(ValueError):
        cancel_path(CancelRequest("a@b.c", value))


def test_a_request_without_an_event_id_never_becomes_a_cancel_url() -> None:
    """An iCalUId or range request has no id to cancel: no URL with 'None' is built, and the
    error says an eventId is needed."""
    with pytest.raises(ValueError, match=r"^only a request with an eventId can be cancelled"):
        cancel_path(CancelRequest("a@b.c", None, ical_uid="UID-1"))


def test_requests_go_exactly_to_the_cancel_route() -> None:
    """The client posts to base + encoded path, with the bearer token and a JSON body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = GraphClient(http, "https://graph.microsoft.com/v1.0/")
            await client.cancel(
                CancelRequest("o'neil#EXT#@contoso.com", "AAMk-_=", "Bye"),
                token="t0k3n",
                client_request_id="cid",
            )

    asyncio.run(run())
    [request] = seen
    assert (
        request.url.raw_path
        == b"/v1.0/users/o%27neil%23EXT%23%40contoso.com/events/AAMk-_%3D/cancel"
    )
    assert request.headers["Authorization"] == "Bearer t0k3n"
    assert request.headers["client-request-id"] == "cid"
    assert request.read() == b'{"comment":"Bye"}'


def test_guest_style_upn_reaches_the_simulator_as_one_mailbox(loopback: Loopback) -> None:
    """A UPN with '#' and an apostrophe arrives intact at Graph's /users/{id} segment."""
    upn = "o'neil_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    loopback.graph.state.add_event(upn, "EV")
    actions = RecordingActions()
    process_all(loopback.processor(), [received_message(cancel_body("EV", upn=upn))], actions)
    assert actions.only.action == "complete"
    assert loopback.graph.state.calls[0].mailbox == upn.lower()
