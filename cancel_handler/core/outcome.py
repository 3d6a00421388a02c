"""What the cancel path decided for one message, and how it got there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cancel_handler.core.decision import Settlement

if TYPE_CHECKING:
    from cancel_handler.core.contract import CancelRequest
    from cancel_handler.core.reply import RangeResult


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one message and how it was reached."""

    settlement: Settlement
    attempts: int = 0
    graph_status: int | None = None
    request_id: str | None = None
    elapsed_ms: int = 0
    #: When given back: the wait Graph asked for in its last answer, if any.
    retry_after: float | None = None
    #: The validated request (None when the body broke the contract): its target goes into
    #: the reply to the sender.
    request: CancelRequest | None = None
    #: A fanned-out or previewed range request: the events selected, children sent, skips.
    range_result: RangeResult | None = None
