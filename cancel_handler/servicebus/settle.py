"""Apply a decision to the message through `ServiceBusMessageActions`, and log it once."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from cancel_handler.core.decision import Action
from cancel_handler.core.errors import SettlementError
from cancel_handler.core.outcome import Outcome
from cancel_handler.core.redaction import printable

if TYPE_CHECKING:
    from cancel_handler.servicebus.delivery import Delivery

logger = logging.getLogger("cancel_handler.settlement")

#: The line's fields as flat `extra` keys too, named as on the message's span: OpenTelemetry's
#: log handler turns each into one customDimensions entry (the nested `cancel_handler` dict
#: arrives as one string).
FLAT_NAMES = {
    "message_id": "cancel.message_id",
    "correlation_id": "cancel.correlation_id",
    "outcome": "cancel.outcome",
    "reason": "cancel.reason",
    "graph_status": "cancel.graph.status",
    "request_id": "cancel.graph.request_id",
    "attempts": "cancel.attempts",
    "elapsed_ms": "cancel.elapsed_ms",
    "error": "cancel.error",
}


class MessageActions(Protocol):
    """The settlement methods of the binding extension's `ServiceBusMessageActions`."""

    def complete(self, message: Any) -> None: ...

    def abandon(self, message: Any) -> None: ...

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None: ...


async def settle(
    message: Any, actions: MessageActions, delivery: Delivery, outcome: Outcome
) -> None:
    """Complete, dead-letter or abandon `message` (the SDK object the actions take; `delivery`
    is what was read off it) as `outcome` says; raise :class:`SettlementError` when the host
    refuses, so the invocation fails and the message is redelivered rather than reported as
    handled."""
    settlement = outcome.settlement
    try:
        # The actions are blocking gRPC calls to the host: keep them off the event loop.
        if settlement.action is Action.COMPLETE:
            await asyncio.to_thread(actions.complete, message)
        elif settlement.action is Action.DEADLETTER:
            await asyncio.to_thread(
                actions.deadletter,
                message,
                deadletter_reason=settlement.reason.value,
                deadletter_error_description=settlement.description,
            )
        else:
            await asyncio.to_thread(actions.abandon, message)
    except Exception as exc:
        log_settlement(delivery, outcome, failed=exc)
        raise SettlementError(settlement.action.value, exc) from exc
    log_settlement(delivery, outcome)


def log_settlement(
    delivery: Delivery, outcome: Outcome, failed: BaseException | None = None
) -> None:
    """One structured line per message: ids, outcome, reason, Graph status and request-id,
    attempts, elapsed ms. Never the token, never the comment text."""
    settlement = outcome.settlement
    if settlement.action is Action.COMPLETE and failed is None:
        level = logging.INFO
    elif failed is not None:
        level = logging.ERROR
    else:
        level = logging.WARNING
    if not logger.isEnabledFor(level):
        return  # building the line costs ~0.1 ms per message; skip it when nobody reads it
    fields = {
        "message_id": log_safe(delivery.message_id),
        "correlation_id": log_safe(delivery.correlation_id),
        "outcome": settlement.action.value if failed is None else "settlement_failed",
        "reason": settlement.reason.value,
        "graph_status": outcome.graph_status,
        "request_id": log_safe(outcome.request_id),
        "attempts": outcome.attempts,
        "elapsed_ms": outcome.elapsed_ms,
    }
    if failed is not None:
        fields["error"] = type(failed).__name__
    text = " ".join(f"{key}={log_field(value)}" for key, value in fields.items())
    flat = {FLAT_NAMES[key]: value for key, value in fields.items() if value is not None}
    logger.log(level, "settlement %s", text, extra={"cancel_handler": fields, **flat})


def log_safe(value: object, limit: int = 128) -> str | None:
    """A sender-controlled value for a log line: :func:`printable`, at most `limit` characters;
    None stays None."""
    return None if value is None else printable(value, limit)


def log_field(value: object) -> str:
    """`value` as the value of a `key=value` pair in a log line: `-` for None, in double quotes
    (JSON string escapes) when it is empty or holds a space, a quote or `=`, so that a value
    can never pass for another field."""
    if value is None:
        return "-"
    text = str(value)
    if text and not any(c in text for c in ' "='):
        return text
    return json.dumps(text, ensure_ascii=False)
