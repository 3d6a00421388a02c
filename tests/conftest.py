"""Shared fixtures: loopback identity endpoint and Graph simulator, a processor wired to them."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from cancel_handler.devtools.graph_simulator import GraphSimulator
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority
from cancel_handler.runtime import Processor, configure_process
from cancel_handler.servicebus.senders import SenderPool
from cancel_handler.settings import load_settings
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import AMBIENT_SETTINGS, RecordingActions, RecordingSender, RecordingSleep

UPN = "adele.vance@contoso.com"

# The process-wide effects function_app's import has in Azure (the delivery-count decoder among
# them), in place before any test decodes a message, whichever test runs first.
configure_process()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's identity or app settings."""
    for name in AMBIENT_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Loopback:
    """The identity endpoint and Graph simulator of one test."""

    authority: TokenAuthority
    identity: IdentityEndpoint
    graph: GraphSimulator

    def processor(
        self,
        sleep: RecordingSleep | None = None,
        *,
        sender: RecordingSender | None = None,
        replies: FakeServiceBus | None = None,
        fan_out: FakeServiceBus | None = None,
        now: Callable[[], datetime] | None = None,
        clock: Callable[[], float] | None = None,
        telemetry: Any = None,
        **settings: str,
    ) -> Processor:
        """A processor wired to these servers (real azure-identity credential and httpx);
        `sender` receives the delayed-retry copies (set DELAYED_RETRY_MAX_COUNT too); replies
        go to the entities of `replies` (set REPLY_TO_ALLOWED too); a date range's child
        requests go to the cancel queue of `fan_out`; `now` is the handler's clock and `clock`
        its monotonic seconds; `telemetry` the tracer and instruments (default: off)."""
        env = {"GRAPH_BASE_URL": self.graph.graph_base_url, **settings}
        options: dict = {"sleep": sleep} if sleep is not None else {}
        if now is not None:
            options["now"] = now
        if clock is not None:
            options["clock"] = clock
        if telemetry is not None:
            options["telemetry"] = telemetry
        if sender is not None:
            options["retry_senders"] = SenderPool(lambda entity: sender)
        if fan_out is not None:
            options["fan_out_senders"] = SenderPool(
                lambda entity: fan_out.get_queue_sender(fan_out.queue_name)
            )
        if replies is not None:
            env.setdefault("CANCEL_QUEUE_NAME", replies.queue_name)
            env.setdefault(
                "ServiceBusConnection__fullyQualifiedNamespace", "sb-test.servicebus.windows.net"
            )
            options["reply_senders"] = SenderPool(replies.reply_sender)
        return Processor(load_settings(env), **options)

    def reads(self) -> list:
        """The GET calls Graph received (iCalUId lookups, calendar pages), in order."""
        return [call for call in self.graph.state.calls if call.method == "GET"]

    def cancels(self) -> list:
        """The cancel calls Graph received, in order."""
        return [call for call in self.graph.state.calls if call.method == "POST"]


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loopback]:
    """Both servers on 127.0.0.1; IDENTITY_ENDPOINT/IDENTITY_HEADER point at the endpoint."""
    authority = TokenAuthority()
    with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
        for name, value in identity.environment.items():
            monkeypatch.setenv(name, value)
        yield Loopback(authority, identity, graph)


def process_all(processor: Processor, messages: list, actions: RecordingActions) -> list:
    """Process messages one after another on one event loop, as the worker does; return outcomes."""

    async def run() -> list:
        try:
            return [await processor.process(message, actions) for message in messages]
        finally:
            await processor.aclose()

    return asyncio.run(run())


def process_concurrently(processor: Processor, messages: list, actions: RecordingActions) -> list:
    """Process messages at the same time on one event loop, as the host's concurrency does."""

    async def run() -> list:
        try:
            return await asyncio.gather(*(processor.process(m, actions) for m in messages))
        finally:
            await processor.aclose()

    return asyncio.run(run())


def cancel_body(event_id: str, upn: str = UPN, **extra: object) -> dict:
    """A valid request body."""
    return {"userPrincipalName": upn, "eventId": event_id, **extra}


@pytest.fixture
def host_three_hours_west() -> Iterator[None]:
    """The process's local time zone is UTC-03:00 (a POSIX TZ rule, no tz database needed), as
    on a Functions host whose WEBSITE_TIME_ZONE is set; restored afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "BRT+3"
    time.tzset()
    try:
        assert time.timezone == 3 * 3600
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
