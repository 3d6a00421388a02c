"""The last-delivery rule: a request that is still failing transiently on what would be its last
delivery is dead-lettered by the function itself (`DeliveriesExhausted`), so that it gets a final
answer, instead of being given back for Service Bus to dead-letter silently."""

from __future__ import annotations

from cancel_handler.core.decision import Action, Reason
from cancel_handler.core.outcome import Outcome


def on_last_delivery(
    outcome: Outcome, *, delivery_count: int | None, max_delivery_count: int
) -> Outcome:
    """`outcome` unchanged, unless it gives the message back on delivery number
    `max_delivery_count` or later (1 = first delivery): then a `DeliveriesExhausted` dead-letter.

    Off when `max_delivery_count` is 0; a missing or non-positive `delivery_count` never counts
    as the last delivery (Service Bus then dead-letters as `MaxDeliveryCountExceeded`, as before):
    an unknown count must not end a request early."""
    settlement = outcome.settlement
    if (
        settlement.action is not Action.ABANDON
        or max_delivery_count <= 0
        or not isinstance(delivery_count, int)
        or isinstance(delivery_count, bool)
        or delivery_count < max_delivery_count
    ):
        return outcome
    description = (
        f"still failing on delivery {delivery_count} (MAX_DELIVERY_COUNT={max_delivery_count}, "
        f"the queue's last); last error: {settlement.description}"
    )
    return outcome.settled(Action.DEADLETTER, Reason.DELIVERIES_EXHAUSTED, description)
