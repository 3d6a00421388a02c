"""Composition root: builds the Graph client, token provider and handler once per process.

`function_app.py` and the tests build a :class:`Processor` the same way; tests pass fakes or
loopback endpoints as keyword arguments.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import TYPE_CHECKING, Any

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.deliveries import on_last_delivery
from cancel_handler.core.outcome import FanOutPlan, Outcome
from cancel_handler.handler import CancelHandler
from cancel_handler.log_policy import quiet_library_loggers
from cancel_handler.servicebus.delayed_retry import (
    DelayedRetries,
    RetrySender,
    servicebus_sender_factory,
)
from cancel_handler.servicebus.delivery_count import keep_delivery_count
from cancel_handler.servicebus.fanout import FanOut, FanOutSender, log_range
from cancel_handler.servicebus.messages import message_body, read_markers
from cancel_handler.servicebus.replies import Replies, ReplySender, servicebus_reply_senders
from cancel_handler.servicebus.settle import MessageActions, log_safe, settle
from cancel_handler.settings import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from cancel_handler.graph.token import TokenSource

logger = logging.getLogger("cancel_handler")

USER_AGENT = "cancel-handler/0.1"

# Binding extension 1.0.0b2 drops every message's delivery count; this runs before the worker
# decodes the first message (function_app imports this module at indexing).
keep_delivery_count()


class Processor:
    """Processes one message end to end: body → decision → settlement.

    Settings are validated when it is built (start-up); the HTTP client and credential are
    created on the first message (keeps cold start short) and reused for every later one.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenSource | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry_sender_factory: Callable[[], RetrySender] | None = None,
        fan_out_sender_factory: Callable[[], FanOutSender] | None = None,
        reply_sender_factory: Callable[[str], ReplySender] | None = None,
        **handler_options: Any,
    ) -> None:
        quiet_library_loggers()
        self.settings = settings
        self._credential = credential
        self._http_client = http_client
        self._handler_options = handler_options
        self._handler: CancelHandler | None = None
        self.delayed_retries = self._delayed_retries(retry_sender_factory)
        self.fan_out = self._fan_out(fan_out_sender_factory)
        self.replies = self._replies(reply_sender_factory)

    @classmethod
    def from_environment(cls) -> Processor:
        """A processor configured from app settings; raises SettingsError on a bad one."""
        return cls(load_settings())

    @property
    def handler(self) -> CancelHandler:
        """The handler, built on first use."""
        if self._handler is None:
            self._handler = self._build_handler()
        return self._handler

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
        return CancelHandler(
            GraphClient(self._http_client, settings.graph_base_url),
            TokenProvider(self.credential, settings.graph_scope),
            retry_budget_seconds=settings.retry_budget_seconds,
            limiter=MailboxLimiter(settings.mailbox_concurrency),
            range_max_days=settings.range_max_days,
            range_max_events=settings.range_max_events,
            **self._handler_options,
        )

    @property
    def credential(self) -> TokenSource:
        """The managed identity credential (for Graph and for scheduling retries), built once."""
        if self._credential is None:
            self._credential = _managed_identity(
                self.settings.managed_identity_client_id, self.settings.graph_timeout_seconds
            )
        return self._credential

    def _delayed_retries(
        self, sender_factory: Callable[[], RetrySender] | None
    ) -> DelayedRetries | None:
        """Delayed retries when DELAYED_RETRY_MAX_COUNT > 0 and a sender can be made (a test's
        factory, or the queue's namespace); otherwise None: give-backs are abandoned."""
        settings = self.settings
        if settings.delayed_retry_max_count <= 0:
            return None
        if sender_factory is None:
            if not (settings.servicebus_namespace and settings.queue_name):
                return None
            sender_factory = servicebus_sender_factory(
                settings.servicebus_namespace, settings.queue_name, lambda: self.credential
            )
        return DelayedRetries(settings.delayed_retry_max_count, sender_factory)

    def _fan_out(self, sender_factory: Callable[[], FanOutSender] | None) -> FanOut:
        """Date-range fan-out through a test's factory or the queue's namespace (its own
        sender: the sync SDK sender is not shared across threads); without either, ranges with
        meetings to cancel are given back."""
        settings = self.settings
        if sender_factory is None and settings.servicebus_namespace and settings.queue_name:
            sender_factory = servicebus_sender_factory(
                settings.servicebus_namespace, settings.queue_name, lambda: self.credential
            )
        return FanOut(sender_factory)

    def _replies(self, sender_for: Callable[[str], ReplySender] | None) -> Replies:
        """Replies to the entities REPLY_TO_ALLOWED names (settings then require the namespace),
        through a test's factory or the real SDK. With the list empty nothing is ever sent; a
        request asking for a reply then gets the one warning line of a refused reply_to."""
        settings = self.settings
        if sender_for is None:
            sender_for = servicebus_reply_senders(
                settings.servicebus_namespace or "", lambda: self.credential
            )
        return Replies(settings.reply_to_allowed, settings.queue_name, sender_for)

    async def process(self, message: Any, actions: MessageActions) -> Outcome:
        """Decide, answer and settle one `ServiceBusReceivedMessage`: exactly one settlement
        call, after the reply when the request asked for one. Raises only when settling failed
        (the host then redelivers), or when the invocation was cancelled, after giving the
        message back."""
        try:
            outcome = self._on_last_delivery(message, await self._decide(message))
            answered = await self.replies.answer(message, outcome)
            outcome = self._on_last_delivery(message, answered)
            if outcome is not answered:
                # The reply failed on the queue's last delivery: rather than a silent
                # MaxDeliveryCountExceeded, DeliveriesExhausted names what was decided, and
                # the sender is answered with it if Service Bus now takes a reply.
                await self.replies.answer(message, outcome)
        except asyncio.CancelledError:
            await settle(message, actions, _given_back("invocation cancelled (shutdown)"))
            raise
        await settle(message, actions, outcome)
        return outcome

    def _on_last_delivery(self, message: Any, outcome: Outcome) -> Outcome:
        return on_last_delivery(
            outcome,
            delivery_count=getattr(message, "delivery_count", None),
            max_delivery_count=self.settings.max_delivery_count,
        )

    async def _decide(self, message: Any) -> Outcome:
        try:
            body = message_body(message)
        except ValueError as exc:
            return Outcome(Settlement(Action.DEADLETTER, Reason.INVALID_MESSAGE, str(exc)))
        try:
            markers = read_markers(message)
            if markers.ignored:
                logger.warning(
                    "message %s carries %s, reserved for the copies cancel-handler's tools make, "
                    "but not as they set them; ignored (see docs/integrate.md)",
                    log_safe(getattr(message, "message_id", None)),
                    ", ".join(markers.ignored),
                )
            result = await self.handler.handle(
                body,
                delivery_count=message.delivery_count,
                copy_of_earlier_attempt=markers.event_may_be_gone,
            )
            outcome = await self._send_children(message, result)
            log_range(message, outcome)
            if self.delayed_retries is not None:
                outcome = await self.delayed_retries.apply(
                    message, body, outcome, markers.retry_count
                )
        except Exception as exc:
            # A defect, not a Graph answer: give the message back (Service Bus dead-letters it
            # after MaxDeliveryCount) rather than fail without settling.
            # Type and stack frames only: an exception's text may hold a URL and so a UPN.
            logger.error(
                "unexpected %s while processing message %s; giving it back\n%s",
                type(exc).__name__,
                log_safe(getattr(message, "message_id", None)),
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            return _given_back(f"unexpected error: {type(exc).__name__}")
        return outcome

    async def _send_children(self, message: Any, result: Outcome | FanOutPlan) -> Outcome:
        """The handler's outcome, or for a date range to cancel, the outcome of sending its
        child requests."""
        if not isinstance(result, FanOutPlan):
            return result
        return await self.fan_out.send(message, result)

    async def aclose(self) -> None:
        """Close the HTTP client (tests and the demo; the Functions host never unloads)."""
        if self._http_client is not None:
            await self._http_client.aclose()


def _given_back(detail: str) -> Outcome:
    return Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, detail))


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
