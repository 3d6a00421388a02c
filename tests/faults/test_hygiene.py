"""Hygiene under faults: no personal data (UPN, comment) and no secret in any log record or
dead-letter description, descriptions within Service Bus limits, and a prompt give-back when the
invocation is cancelled mid-retry."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.servicebus import ServiceBusClient, ServiceBusSender, TransportType

from cancel_handler.core.errors import SettlementError
from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.devtools.identity_endpoint import IdentityFault
from cancel_handler.runtime import Processor
from cancel_handler.settings import load_settings
from tests.conftest import UPN, Loopback, cancel_body
from tests.helpers import (
    RecordingActions,
    RecordingSender,
    RecordingSleep,
    received_message,
)

COMMENT = "Confidential: board meeting moved, salary review"


def _scenarios(loopback: Loopback) -> list[tuple[str, Callable[[], None], dict, str]]:
    """(event id, setup, processor settings, settlement failure) for every kind of fault."""
    state, identity = loopback.graph.state, loopback.identity
    html = Fault(503, {"Content-Type": "text/html"}, b"<html>503</html>")
    echo = json.dumps(
        {"error": {"code": "BadHeader", "message": "Authorization: Bearer PLACEHOLDER rejected"}}
    )
    return [
        ("H1", lambda: state.add_event(UPN, "H1"), {}, ""),
        ("H2", lambda: state.script(UPN, "H2", Fault(429, {"Retry-After": "1"}), html), {}, ""),
        ("H3", lambda: state.script(UPN, "H3", Fault(reset=True)), {}, ""),
        ("H4", lambda: state.script(UPN, "H4", Fault(502, truncate=True, body=b"{}")), {}, ""),
        ("H5", lambda: state.script(UPN, "H5", Fault(504, delay=0.5)), {"timeout": "0.2"}, ""),
        ("H6", lambda: state.add_event(UPN, "H6", organizer=False), {}, ""),
        ("H7", lambda: state.script(UPN, "H7", Fault(400, body=echo.encode())), {}, "echo"),
        ("H8", loopback.authority.revoke_all, {}, ""),
        ("H9", lambda: identity.faults.extend([IdentityFault(status=500)] * 2), {}, ""),
        ("H10", lambda: identity.faults.append(IdentityFault(expired=True)), {}, ""),
        ("H11", lambda: state.script(UPN, "H11", Fault(429, {"Retry-After": "900"})), {}, "dr"),
        ("H12", lambda: state.script(UPN, "H12", Fault(429, {"Retry-After": "900"})), {}, "drx"),
        ("H13", lambda: state.add_event(UPN, "H13"), {}, "complete"),
        ("H14", lambda: None, {}, "deadletter"),
        ("H15", lambda: state.script(UPN, "H15", Fault(429, {"Retry-After": "900"})), {}, "dra"),
    ]


def _unreachable_sender() -> ServiceBusSender:
    """The SDK's real sender, aimed at a closed local port: scheduling fails inside
    azure-servicebus's AMQP stack, which logs the attempt."""

    class Credential:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("sb-token", int(time.time()) + 3600)

    client = ServiceBusClient(
        "contoso-sb.servicebus.windows.net",
        Credential(),
        retry_total=0,
        custom_endpoint_address="sb://127.0.0.1:9",
        transport_type=TransportType.Amqp,
    )
    return client.get_queue_sender("cancel-requests")


def _personal_data(upn: str) -> list[str]:
    """The forms a UPN takes in text: as sent, lower-cased, and percent-encoded in a URL path."""
    return [upn, upn.lower(), quote(upn, safe=""), quote(upn.lower(), safe="")]


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG], ids=["INFO", "DEBUG"])
def test_no_personal_data_or_secret_in_logs_or_descriptions(
    loopback: Loopback, caplog, level: int
) -> None:
    """Every scenario above, with the root logger at INFO (the Python worker's default) and at
    DEBUG (PYTHON_ENABLE_DEBUG_LOGGING), as the worker sets it (root level plus one handler on
    root, azure-functions-python-worker dispatcher.py): no UPN, no bearer token, no
    IDENTITY_HEADER value and no comment text in any record (message, arguments, extra fields,
    traceback) or dead-letter description, from our code, httpx, httpcore or the Azure SDKs."""
    caplog.set_level(level)
    actions = RecordingActions()
    descriptions: list[str] = []
    for event_id, setup, options, special in _scenarios(loopback):
        setup()
        if special == "echo":  # Graph echoing the live token back in its error message
            token = next(iter(loopback.authority._issued), "none")
            body = loopback.graph.state.faults[(UPN.lower(), event_id)][0].body
            loopback.graph.state.faults[(UPN.lower(), event_id)][0].body = body.replace(
                b"PLACEHOLDER", token.encode()
            )
        settings = {"DELAYED_RETRY_MAX_COUNT": "2"} if special.startswith("dr") else {}
        if "timeout" in options:
            settings["GRAPH_TIMEOUT_SECONDS"] = options["timeout"]
        sender = (
            _unreachable_sender()
            if special == "dra"
            else RecordingSender(fail=special == "drx")
        )
        processor = loopback.processor(RecordingSleep(), sender=sender, **settings)
        actions.fail_on = {special} if special in ("complete", "deadletter") else set()
        message = received_message(cancel_body(event_id, comment=COMMENT))

        async def run(processor=processor, message=message) -> None:
            try:
                outcome = await processor.process(message, actions)
                descriptions.append(outcome.settlement.description)
            except SettlementError:
                pass
            finally:
                await processor.aclose()

        asyncio.run(run())
    formatter = logging.Formatter()
    text = "\n".join(
        [r.getMessage() + repr(r.__dict__) for r in caplog.records]
        + [formatter.formatException(r.exc_info) for r in caplog.records if r.exc_info]
        + descriptions
        + [s.description or "" for s in actions.settled]
    )
    tokens = list(loopback.authority._issued)
    assert len(tokens) >= 3, "scenarios fetched several tokens"
    for token in tokens:
        assert token not in text
    assert loopback.identity.secret not in text
    assert COMMENT not in text and "salary" not in text
    for form in _personal_data(UPN):
        assert form not in text, f"{form!r} was logged"
    assert "<redacted>" in text, "the echoed token was redacted"
    assert {r.name for r in caplog.records} >= {"cancel_handler.settlement"}
    assert any("message_id=" in r.getMessage() for r in caplog.records), "ids may stay"


def test_a_defect_is_logged_without_its_message_text(loopback: Loopback, caplog) -> None:
    """An unexpected exception whose text holds the Graph URL (and so the UPN) gives the message
    back and is logged with its type and stack frames, not its text."""
    caplog.set_level(logging.DEBUG)

    def broken_transport(request: httpx.Request) -> httpx.Response:
        raise RuntimeError(f"cannot send {request.method} {request.url}")

    processor = Processor(
        load_settings({"GRAPH_BASE_URL": loopback.graph.graph_base_url}),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(broken_transport)),
        sleep=RecordingSleep(),
    )
    actions = RecordingActions()

    async def run() -> None:
        try:
            await processor.process(received_message(cancel_body("H40")), actions)
        finally:
            await processor.aclose()

    asyncio.run(run())
    assert actions.only.action == "abandon"
    formatter = logging.Formatter()
    text = "\n".join(formatter.format(r) + repr(r.__dict__) for r in caplog.records)
    assert "RuntimeError" in text and "broken_transport" in text, "type and frames are logged"
    for form in _personal_data(UPN):
        assert form not in text


def test_dead_letter_descriptions_fit_service_bus_limits(loopback: Loopback) -> None:
    """A Graph error with a 100 KB message still yields a description of at most 4096 chars."""
    huge = json.dumps({"error": {"code": "X" * 50_000, "message": "m" * 100_000}}).encode()
    loopback.graph.state.script(UPN, "H20", Fault(400, body=huge))
    actions = RecordingActions()
    processor = loopback.processor()

    async def run() -> None:
        await processor.process(received_message(cancel_body("H20")), actions)
        await processor.aclose()

    asyncio.run(run())
    assert actions.only.action == "deadletter"
    assert len(actions.only.description) <= 4096 and len(actions.only.reason) <= 4096


def test_cancelled_mid_backoff_gives_the_message_back_promptly(loopback: Loopback) -> None:
    """A real asyncio cancellation while the invocation sleeps in a 30 s backoff abandons the
    message within a fraction of a second and re-raises the cancellation."""
    loopback.graph.state.add_event(UPN, "H30")
    loopback.graph.state.script(UPN, "H30", Fault(503, {"Retry-After": "30"}))
    processor = loopback.processor()  # the real asyncio.sleep
    actions = RecordingActions()

    async def run() -> float:
        task = asyncio.create_task(processor.process(received_message(cancel_body("H30")), actions))
        while not loopback.graph.state.calls:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # now inside the 30 s wait
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        elapsed = time.monotonic() - cancelled_at
        await processor.aclose()
        return elapsed

    elapsed = asyncio.run(run())
    assert actions.only.action == "abandon"
    assert elapsed < 1.0
    assert len(loopback.graph.state.calls) == 1
    assert (UPN, "H30") not in loopback.graph.state.cancelled
