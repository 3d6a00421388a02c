"""Composition root: builds the adapters once per process and hands them to the pipeline.

`function_app.py` builds a :class:`Processor` from the app settings; the tests, the demo and
the benchmarks build it the same way, passing stand-ins for its seams as keyword arguments.
Process-wide effects (the delivery-count workaround, library log levels) are
:func:`configure_process`'s.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cancel_handler.core.outcome import Outcome
from cancel_handler.handler import CancelHandler
from cancel_handler.log_policy import quiet_library_loggers
from cancel_handler.pipeline import Pipeline
from cancel_handler.servicebus.delayed_retry import DelayedRetries
from cancel_handler.servicebus.delivery_count import keep_delivery_count
from cancel_handler.servicebus.fanout import FanOut
from cancel_handler.servicebus.replies import Replies
from cancel_handler.servicebus.senders import SenderPool, servicebus_senders
from cancel_handler.servicebus.settle import MessageActions
from cancel_handler.settings import Settings, load_settings

if TYPE_CHECKING:
    import httpx

    from cancel_handler.graph.token import TokenSource
    from cancel_handler.telemetry.instruments import Telemetry

USER_AGENT = "cancel-handler/0.1"

#: Senders `Processor.from_environment` uses instead of Service Bus (see `send_locally`).
_local_senders: list[SenderPool] = []


def send_locally(senders: SenderPool) -> None:
    """Make the processor that `from_environment` builds next (function_app's, imported after
    this call) send its child requests, delayed retries and replies through `senders`: the
    demo's local queues. Never called in Azure."""
    _local_senders[:] = [senders]


def configure_process() -> None:
    """What the function changes for its whole process, once, before the first message: the
    binding extension's decoder keeps the delivery count (extension 1.0.0b2 drops it), and
    libraries that log personal data are held at WARNING. Idempotent."""
    keep_delivery_count()
    quiet_library_loggers()


class Processor:
    """The function's adapters, built once per process: settings are validated when it is built
    (start-up); the HTTP client and credential are made on the first message (keeps cold start
    short) and reused for every later one.

    Seams, each defaulting to production: `credential`, `http_client`; `senders`, the Service
    Bus senders for fan-out, delayed retries and replies (by default one client on the
    namespace with the managed identity), or one of `retry_senders`, `fan_out_senders`,
    `reply_senders` for that use alone; the handler's `sleep`, `clock`, `now` and `rng`;
    `telemetry`, the tracer and instruments (by default those of the OpenTelemetry SDK provider
    the Python worker installed, if any: see `cancel_handler.telemetry`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenSource | None = None,
        http_client: httpx.AsyncClient | None = None,
        senders: SenderPool | None = None,
        retry_senders: SenderPool | None = None,
        fan_out_senders: SenderPool | None = None,
        reply_senders: SenderPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        configure_process()
        self._telemetry = telemetry
        self.settings = settings
        self._credential = credential
        self._http_client = http_client
        self._sleep, self._clock, self._now, self._rng = sleep, clock, now, rng
        shared = senders or self._servicebus_senders()
        queue = settings.queue_name
        cancel_queue_senders = shared if queue else None
        self._pipeline: Pipeline | None = None
        self.fan_out = FanOut(
            fan_out_senders or cancel_queue_senders,
            queue,
            child_queue=settings.child_queue_name,
            session_key=settings.child_session_key,
        )
        retries = retry_senders or cancel_queue_senders
        on = settings.delayed_retry_max_count > 0 and retries is not None
        self.delayed_retries = (
            DelayedRetries(settings.delayed_retry_max_count, retries, queue) if on else None
        )
        # A child's delayed-retry copy goes back to the children queue, in the child's session.
        self.child_delayed_retries = (
            DelayedRetries(settings.delayed_retry_max_count, retries, settings.child_queue_name)
            if on and settings.child_queue_name
            else None
        )
        self._child_pipeline: Pipeline | None = None
        self.replies = Replies(
            settings.reply_to_allowed, queue, reply_senders or shared or SenderPool(_no_namespace)
        )

    @classmethod
    def from_environment(cls) -> Processor:
        """A processor configured from app settings; raises SettingsError on a bad one."""
        return cls(load_settings(), senders=_local_senders[0] if _local_senders else None)

    def _servicebus_senders(self) -> SenderPool | None:
        """One client on the namespace with the identity; None without a namespace (ranges
        with meetings are then given back, delayed retries off and replies off)."""
        namespace = self.settings.servicebus_namespace
        if not namespace:
            return None
        return SenderPool(servicebus_senders(namespace, lambda: self.credential))

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline, built on the first message."""
        if self._pipeline is None:
            stages: dict[str, Any] = {
                "fan_out": self.fan_out,
                "delayed_retries": self.delayed_retries,
                "replies": self.replies,
                "max_delivery_count": self.settings.max_delivery_count,
            }
            telemetry = self.telemetry
            if telemetry is None:
                self._pipeline = Pipeline(self._build_handler(), **stages)
            else:
                from cancel_handler.telemetry.pipeline import TracedPipeline

                self._pipeline = TracedPipeline(
                    self._build_handler(),
                    telemetry=telemetry,
                    queue=self.settings.queue_name,
                    retry_budget_seconds=self.settings.retry_budget_seconds,
                    **stages,
                )
        return self._pipeline

    @property
    def child_pipeline(self) -> Pipeline:
        """The pipeline of the children queue's session trigger: the same stages and handler,
        its delayed retries sent back to the children queue."""
        if self._child_pipeline is None:
            # A copy of the pipeline as built (traced or not), not a new one of the base type.
            child = copy.copy(self.pipeline)
            child.delayed_retries = self.child_delayed_retries
            if hasattr(child, "queue"):  # the traced pipeline names its queue in its spans
                child.queue = self.settings.child_queue_name
            self._child_pipeline = child
        return self._child_pipeline

    @property
    def telemetry(self) -> Telemetry | None:
        """The telemetry the pipeline reports to; None (off) unless an OpenTelemetry SDK
        provider is installed or one was passed."""
        if self._telemetry is None:
            from cancel_handler.telemetry.instruments import configured

            self._telemetry = configured(
                self.settings.telemetry_hash_key.encode("utf-8"),
                self.settings.trace_successes_per_second,
            )
        return self._telemetry

    @property
    def handler(self) -> CancelHandler:
        """The cancel handler (built with the pipeline, on first use)."""
        return self.pipeline.handler

    def _build_handler(self) -> CancelHandler:
        import httpx  # deferred: not needed to index the function

        from cancel_handler.graph.client import GraphClient
        from cancel_handler.graph.limiter import MailboxLimiter
        from cancel_handler.graph.token import TokenProvider

        settings = self.settings
        if self._http_client is None:
            self._http_client = httpx.AsyncClient(
                timeout=httpx.Timeout(settings.graph_timeout_seconds),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
        telemetry = self.telemetry
        if telemetry is None:
            graph = GraphClient(self._http_client, settings.graph_base_url)
        else:
            from cancel_handler.telemetry.graph import TracedGraphClient

            graph = TracedGraphClient(self._http_client, settings.graph_base_url, telemetry)
        return CancelHandler(
            graph,
            TokenProvider(self.credential, settings.graph_scope),
            retry_budget_seconds=settings.retry_budget_seconds,
            limiter=MailboxLimiter(settings.mailbox_concurrency),
            range_max_days=settings.range_max_days,
            range_max_events=settings.range_max_events,
            sleep=self._sleep, rng=self._rng, clock=self._clock, now=self._now,
        )

    @property
    def credential(self) -> TokenSource:
        """The managed identity credential (for Graph and for Service Bus sends), built once."""
        if self._credential is None:
            self._credential = _managed_identity(
                self.settings.managed_identity_client_id, self.settings.graph_timeout_seconds
            )
        return self._credential

    async def process(self, message: Any, actions: MessageActions) -> Outcome:
        """Run one `ServiceBusReceivedMessage` through the pipeline (see `pipeline.py`)."""
        return await self.pipeline.process(message, actions)

    async def process_child(self, message: Any, actions: MessageActions) -> Outcome:
        """Run one child request from the session-enabled children queue through the same
        pipeline (settled the same way: the host's settlement service settles session
        messages by lock token too)."""
        return await self.child_pipeline.process(message, actions)

    async def aclose(self) -> None:
        """Close the HTTP client (tests and the demo; the Functions host never unloads)."""
        if self._http_client is not None:
            await self._http_client.aclose()


def _no_namespace(entity: str) -> Any:
    raise RuntimeError(
        "no Service Bus namespace to reply through: set "
        "ServiceBusConnection__fullyQualifiedNamespace"
    )


def _managed_identity(client_id: str | None, timeout: float) -> TokenSource:
    """The Function App's managed identity (user-assigned when `client_id` is set). One quick
    retry inside the credential and bounded timeouts: the handler's own retry loop and budget
    take it from there."""
    from azure.identity import ManagedIdentityCredential

    options: dict[str, Any] = {
        "retry_total": 1,
        "connection_timeout": timeout,
        "read_timeout": timeout,
    }
    if client_id:
        options["client_id"] = client_id
    return ManagedIdentityCredential(**options)
