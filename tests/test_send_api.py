"""The integrator's Python API and the boundary between the Function App and the tool."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from azure.servicebus import ServiceBusMessageBatch

import cancel_handler
from cancel_handler.core.errors import InvalidMessageError, TargetError
from cancel_handler.ops.target import ServiceBusTarget, normalize_namespace
from tests.conftest import UPN
from tests.fake_servicebus import FakeServiceBus


def test_function_import_path_does_not_load_the_tool() -> None:
    """Importing the Function App loads neither the CLI nor the sending code. (httpx itself
    imports click when it is installed, as here; the Function App's requirements lack it.)"""
    code = (
        "import sys, function_app\n"
        "bad = [m for m in sys.modules if m.startswith(('cancel_handler.cli', "
        "'cancel_handler.ops'))]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=root)  # noqa: S603


def test_click_is_not_a_function_app_requirement() -> None:
    """click is declared for the package and the dev set, never in the runtime requirements."""
    runtime = Path(__file__).parent.parent / "requirements.txt"
    assert "click" not in runtime.read_text(encoding="utf-8").lower()


def test_send_cancel_request_uses_the_given_client() -> None:
    """The sync API validates, sends one message with ids, and leaves the client open."""
    bus = FakeServiceBus()
    sent = cancel_handler.send_cancel_request(
        UPN, "AAMk1=", queue_name=bus.queue_name, client=bus, message_id="r-9"
    )
    assert (sent.message_id, sent.correlation_id) == ("r-9", "r-9")
    assert bus.sent_ids == ["r-9"] and not bus.closed


def test_send_cancel_request_takes_the_new_targets() -> None:
    """The API sends iCalUId and date-range requests; a range over max_range_days is refused."""
    bus = FakeServiceBus()
    cancel_handler.send_cancel_request(
        UPN, ical_uid="UID-1", queue_name=bus.queue_name, client=bus
    )
    cancel_handler.send_cancel_request(
        UPN, start_date_time="2026-07-01T00:00:00Z", end_date_time="2026-07-08T00:00:00Z",
        preview=True, queue_name=bus.queue_name, client=bus,
    )
    bodies = [json.loads(b"".join(m.body)) for m in bus.sent]
    assert bodies[0] == {"userPrincipalName": UPN, "iCalUId": "UID-1"}
    assert bodies[1]["preview"] is True
    with pytest.raises(InvalidMessageError, match="limit is 5 days"):
        cancel_handler.send_cancel_request(
            UPN, start_date_time="2026-07-01T00:00:00Z", end_date_time="2026-07-08T00:00:00Z",
            max_range_days=5, queue_name=bus.queue_name, client=bus,
        )
    assert len(bus.sent) == 2


def test_send_cancel_request_asks_for_a_reply() -> None:
    """reply_to and reply_to_session_id go onto the message the function answers to."""
    bus = FakeServiceBus()
    cancel_handler.send_cancel_request(
        UPN, "AAMk1=", queue_name=bus.queue_name, client=bus,
        reply_to="cancel-replies", reply_to_session_id="s-7",
    )
    [message] = bus.sent
    assert (message.reply_to, message.reply_to_session_id) == ("cancel-replies", "s-7")


def test_send_cancel_request_validates_before_connecting() -> None:
    """An invalid request raises InvalidMessageError and no client is ever built."""
    with pytest.raises(InvalidMessageError, match="userPrincipalName"):
        cancel_handler.send_cancel_request("not a upn", "AAMk1=", queue_name="q")


class _AsyncBus:
    """The async client surface the async API uses, holding real SDK batches."""

    def __init__(self) -> None:
        self.sent: list = []

    def get_queue_sender(self, queue_name: str) -> _AsyncBus:
        return self

    async def __aenter__(self) -> _AsyncBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def create_message_batch(self) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch()

    async def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        self.sent.extend(batch._messages)


def test_async_variant_sends_through_the_given_client() -> None:
    """send_cancel_request_async sends the same message through an aio client."""
    bus = _AsyncBus()
    sent = asyncio.run(
        cancel_handler.send_cancel_request_async(
            UPN, "AAMk1=", queue_name="q", client=bus, correlation_id="c-1"
        )
    )
    assert [m.message_id for m in bus.sent] == [sent.message_id]
    assert bus.sent[0].correlation_id == "c-1"


def test_async_variant_without_credential_or_aiohttp_says_what_to_pass(monkeypatch) -> None:
    """Without a credential and without aiohttp, a TargetError names `credential` and the
    three ways out."""
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    with pytest.raises(TargetError) as caught:
        asyncio.run(
            cancel_handler.send_cancel_request_async(
                UPN, "AAMk1=", queue_name="q", fully_qualified_namespace="x.servicebus.windows.net"
            )
        )
    problem = (
        "pass credential= (an async token credential), or install aiohttp to use "
        "azure.identity.aio.DefaultAzureCredential, or pass connection_string="
    )
    assert (caught.value.setting, caught.value.problem) == ("credential", problem)
    assert str(caught.value) == f"credential: {problem}"


class _AsyncCredential:
    """An async token credential the caller owns: it must be left open."""

    closed = False

    async def get_token(self, *scopes: str, **options: object) -> None:
        raise AssertionError("nothing is sent, so no token is asked for")

    async def close(self) -> None:
        self.closed = True


def test_async_client_uses_the_given_credential_and_leaves_it_open() -> None:
    """The async client of the one-request API reaches the target's namespace with the caller's
    credential, and closing the client does not close the credential."""
    credential = _AsyncCredential()

    async def open_and_close() -> str:
        target = ServiceBusTarget("q", "contoso-sb.servicebus.windows.net")
        async with target.async_client(credential) as client:
            return client.fully_qualified_namespace

    assert asyncio.run(open_and_close()) == "contoso-sb.servicebus.windows.net"
    assert credential.closed is False


def test_async_client_with_a_connection_string_reaches_its_namespace() -> None:
    """A target holding a connection string gets an async client for that string's
    namespace, with no credential involved."""
    secret = "Endpoint=sb://sb-prod.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b"

    async def open_and_close() -> str:
        target = ServiceBusTarget("q", "sb-prod.servicebus.windows.net", secret)
        async with target.async_client() as client:
            return client.fully_qualified_namespace

    assert asyncio.run(open_and_close()) == "sb-prod.servicebus.windows.net"


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("contoso-sb", "contoso-sb.servicebus.windows.net"),
        ("contoso-sb.servicebus.windows.net", "contoso-sb.servicebus.windows.net"),
        ("sb://contoso-sb.servicebus.windows.net/", "contoso-sb.servicebus.windows.net"),
    ],
)
def test_namespace_forms_are_normalised(given: str, host: str) -> None:
    """A bare name, a host or an sb:// endpoint all give the fully qualified host."""
    assert normalize_namespace(given) == host


def test_connection_string_as_queue_name_is_refused_without_the_key() -> None:
    """A connection string passed as queue_name raises TargetError naming the queue, before
    any connection, and the key is not in the exception."""
    key = "SharedAccess" + "Key"  # assembled so that secret scanners do not flag the fixture
    secret = "c2VjcmV0LXZhbHVlLW5ldmVyLXByaW50ZWQ="
    value = f"Endpoint=sb://x.servicebus.windows.net/;{key}Name=k;{key}={secret}"
    with pytest.raises(TargetError) as caught:
        cancel_handler.send_cancel_request(
            UPN, "AAMk1=", queue_name=value, fully_qualified_namespace="x.servicebus.windows.net"
        )
    assert caught.value.setting == "queue"
    assert secret not in str(caught.value) and "looks like a connection string" in str(
        caught.value
    )


REPLY_ENTITY_TEXT = "only letters, digits, '.', '-', '_' and '/' are allowed"


@pytest.mark.parametrize(
    ("reply", "field", "text"),
    [
        (
            {"reply_to": "cancel-replies", "reply_to_session_id": "s" * 200},
            "replyToSessionId",
            "replyToSessionId: is too long for a Service Bus session id (it is 200 characters "
            "long; the limit is 128)",
        ),
        (
            {"reply_to": "bad name!"},
            "replyTo",
            f"replyTo: is not a Service Bus queue or topic name (it contains ' ', '!'; "
            f"{REPLY_ENTITY_TEXT})",
        ),
        (
            {"reply_to": "Cancel-Requests"},
            "replyTo",
            "replyTo: names the cancel queue 'cancel-requests' itself, where the function never "
            "sends replies",
        ),
    ],
    ids=["200-character-session", "bad-entity-name", "cancel-queue"],
)
def test_reply_address_is_checked_before_sending(reply: dict, field: str, text: str) -> None:
    """The sync and async APIs raise InvalidMessageError naming the field, instead of the SDK's
    bare ValueError at send time or a request the function never answers; nothing is sent."""
    bus, async_bus = FakeServiceBus(), _AsyncBus()
    with pytest.raises(InvalidMessageError) as caught:
        cancel_handler.send_cancel_request(
            UPN, "AAMk1=", queue_name="cancel-requests", client=bus, **reply
        )
    assert (caught.value.field, str(caught.value)) == (field, text)
    with pytest.raises(InvalidMessageError) as caught:
        asyncio.run(
            cancel_handler.send_cancel_request_async(
                UPN, "AAMk1=", queue_name="cancel-requests", client=async_bus, **reply
            )
        )
    assert (caught.value.field, str(caught.value)) == (field, text)
    assert bus.sent == [] and async_bus.sent == []


def test_with_reply_checks_the_session_id() -> None:
    """OutgoingRequest.with_reply refuses a 129-character session id and takes 128."""
    outgoing = cancel_handler.prepare_request(UPN, "AAMk1=")
    assert outgoing.with_reply("r", "s" * 128).reply_to_session_id == "s" * 128
    with pytest.raises(InvalidMessageError) as caught:
        outgoing.with_reply("r", "s" * 129)
    assert str(caught.value) == (
        "replyToSessionId: is too long for a Service Bus session id (it is 129 characters "
        "long; the limit is 128)"
    )


_SEND_PARAMETERS = (
    "(user_principal_name: 'str', event_id: 'str | None' = None, comment: 'str | None' = None, "
    "*, queue_name: 'str', fully_qualified_namespace: 'str | None' = None, credential: 'Any' = "
    "None, connection_string: 'str | None' = None, message_id: 'str | None' = None, "
    "correlation_id: 'str | None' = None, reply_to: 'str | None' = None, reply_to_session_id: "
    "'str | None' = None, client: 'Any' = None, **target: 'Any') -> 'OutgoingRequest'"
)


@pytest.mark.parametrize(
    "function", [cancel_handler.send_cancel_request, cancel_handler.send_cancel_request_async]
)
def test_both_variants_show_the_same_parameters(function) -> None:
    """help() and editors show each entry point's full parameter list, one list for both."""
    import inspect

    assert str(inspect.signature(function)) == _SEND_PARAMETERS


def test_async_variant_is_a_coroutine_function_with_its_own_docs() -> None:
    """The async entry point stays a coroutine function and keeps its own name and docstring."""
    import inspect

    function = cancel_handler.send_cancel_request_async
    assert inspect.iscoroutinefunction(function)
    assert function.__name__ == "send_cancel_request_async"
    assert function.__doc__.startswith("The asyncio variant of :func:`send_cancel_request`")


@pytest.mark.parametrize(
    "call",
    [
        lambda: cancel_handler.send_cancel_request(UPN, "AAMk1="),
        lambda: asyncio.run(cancel_handler.send_cancel_request_async(UPN, "AAMk1=")),
        lambda: cancel_handler.send_cancel_request(UPN, "AAMk1=", queue_name="q", nope=1),
    ],
)
def test_a_call_outside_the_parameters_is_a_type_error(call) -> None:
    """A missing queue name or an unknown keyword is refused before anything is sent."""
    with pytest.raises(TypeError):
        call()
