"""Send cancel requests to the queue, in batches, in order; a sync and an async API.

Every request is validated with the function's contract before anything is sent. Batches are
sent one after another; if a batch fails, it and the batches after it are not sent (Service Bus
accepts or rejects a batch as a whole), so the caller knows exactly which requests went out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cancel_handler.ops.parameters import parameters_of
from cancel_handler.ops.requests import OutgoingRequest, prepare_request
from cancel_handler.ops.target import ServiceBusTarget
from cancel_handler.servicebus.batches import fill_batches
from cancel_handler.telemetry.producer import failed, producer_span


@dataclass
class SendSummary:
    """What happened to each request: sent ones in order, the rest unsent (with the error)."""

    sent: list[OutgoingRequest] = field(default_factory=list)
    unsent: list[OutgoingRequest] = field(default_factory=list)
    batches: int = 0
    error: BaseException | None = None


def send_cancel_requests(
    client: Any,
    queue_name: str,
    requests: Sequence[OutgoingRequest],
    *,
    on_sent: Callable[[list[OutgoingRequest]], None] | None = None,
    tracer_provider: Any = None,
) -> SendSummary:
    """Send validated requests with an open `ServiceBusClient`; stop at the first failed batch.
    Returns the summary; never raises for a Service Bus error (it is in `summary.error`).

    The sending is one `send <queue>` producer span (of `tracer_provider`, by default the
    global one) whose context every request carries."""
    summary = SendSummary()
    only = requests[0].message_id if len(requests) == 1 else None
    with (
        producer_span(queue_name, len(requests), only, tracer_provider) as span,
        client.get_queue_sender(queue_name) as sender,
    ):
        try:
            batches = fill_batches(
                requests, OutgoingRequest.to_message, sender.create_message_batch
            )
            for batch, members in batches:
                sender.send_messages(batch)
                summary.sent.extend(members)
                summary.batches += 1
                if on_sent is not None:
                    on_sent(members)
        except Exception as exc:
            summary.error = exc
            failed(span, exc)
    summary.unsent = list(requests[len(summary.sent) :])
    return summary


@dataclass(frozen=True, slots=True)
class _Send:
    """One validated request and the way to its queue: what both entry points prepare before
    they touch Service Bus."""

    outgoing: OutgoingRequest
    queue_name: str
    client: Any
    credential: Any
    fully_qualified_namespace: str | None
    connection_string: str | None

    def target(self) -> ServiceBusTarget:
        """The queue to open a client for, when the caller gave none."""
        return ServiceBusTarget(
            self.queue_name, self.fully_qualified_namespace, self.connection_string
        )


def _send(
    user_principal_name: str,
    event_id: str | None = None,
    comment: str | None = None,
    *,
    queue_name: str,
    fully_qualified_namespace: str | None = None,
    credential: Any = None,
    connection_string: str | None = None,
    message_id: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    reply_to_session_id: str | None = None,
    client: Any = None,
    **target: Any,
) -> _Send:
    """The parameters of both entry points: the request validated, with its ids and its reply
    address, before anything is sent."""
    outgoing = prepare_request(
        user_principal_name,
        event_id,
        comment,
        message_id=message_id,
        correlation_id=correlation_id,
        **target,
    )
    if reply_to:
        outgoing = outgoing.with_reply(reply_to, reply_to_session_id, cancel_queue=queue_name)
    return _Send(
        outgoing, queue_name, client, credential, fully_qualified_namespace, connection_string
    )


@parameters_of(_send)
def send_cancel_request(*args: Any, **kwargs: Any) -> OutgoingRequest:
    """Validate and send one cancel request; return it with the ids it was sent under.

    The target is `event_id`, or one of the keyword targets of :func:`prepare_request`
    (`ical_uid=`, or `start_date_time=` with `end_date_time=` and optional `preview=`;
    `max_range_days=` for the window check).

    Reach the queue with `client` (an open `ServiceBusClient`, left open), or with
    `fully_qualified_namespace` and `credential` (default `DefaultAzureCredential`), or with
    `connection_string`. Raises :class:`InvalidMessageError` before sending anything, and
    the SDK's `ServiceBusError` (or `ClientAuthenticationError`) when sending fails.

    `reply_to` (and `reply_to_session_id`, e.g. :func:`new_session_id`) ask the function for a
    reply there; :func:`wait_for_replies` reads it. A `reply_to` that is not a Service Bus
    entity name or names `queue_name`, or a session id over 128 characters, raises
    :class:`InvalidMessageError` (field `replyTo` or `replyToSessionId`) before sending.
    """
    send = _send(*args, **kwargs)
    if send.client is not None:
        return _send_one(send.client, send.queue_name, send.outgoing)
    with send.target().client(send.credential) as own_client:
        return _send_one(own_client, send.queue_name, send.outgoing)


def _send_one(client: Any, queue_name: str, outgoing: OutgoingRequest) -> OutgoingRequest:
    summary = send_cancel_requests(client, queue_name, [outgoing])
    if summary.error is not None:
        raise summary.error
    return outgoing


@parameters_of(_send)
async def send_cancel_request_async(*args: Any, **kwargs: Any) -> OutgoingRequest:
    """The asyncio variant of :func:`send_cancel_request` (`azure.servicebus.aio`), with the
    same parameters and targets.

    `credential` is any async token credential (`azure.identity.aio.*`, which needs `aiohttp`,
    or your own). Without one and without a connection string, `azure.identity.aio`'s
    `DefaultAzureCredential` is used if `aiohttp` is installed; otherwise :class:`TargetError`
    says what to pass. `client` is an open `azure.servicebus.aio.ServiceBusClient`, left open.
    """
    send = _send(*args, **kwargs)
    if send.client is not None:
        await _send_one_async(send.client, send.queue_name, send.outgoing)
        return send.outgoing
    async with send.target().async_client(send.credential) as own_client:
        await _send_one_async(own_client, send.queue_name, send.outgoing)
    return send.outgoing


async def _send_one_async(client: Any, queue_name: str, outgoing: OutgoingRequest) -> None:
    with producer_span(queue_name, 1, outgoing.message_id) as span:
        try:
            async with client.get_queue_sender(queue_name) as sender:
                batch = await sender.create_message_batch()
                batch.add_message(outgoing.to_message())
                await sender.send_messages(batch)
        except Exception as exc:
            failed(span, exc)
            raise

