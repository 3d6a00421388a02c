"""What the cancel path decided for one message, and how it got there."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cancel_handler.core.contract import CancelRequest
from cancel_handler.core.decision import Action, Reason, Settlement, clip
from cancel_handler.core.selection import RangeSelection


@dataclass(frozen=True, slots=True)
class RangeReport:
    """What a date-range request found and did: the selection (events to cancel and skips by
    cause), the Graph list calls it took and, once fanned out, the child requests' MessageIds
    in the order of `selection.selected` and the send batches used."""

    selection: RangeSelection
    list_calls: int = 0
    child_message_ids: tuple[str, ...] = ()
    send_batches: int = 0


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
    #: The event the cancel call named (for an iCalUId request: the id the lookup found).
    event_id: str | None = None
    #: Date-range requests only (Previewed, FannedOut, RangeTooLarge): what was selected and
    #: sent; a fanned-out or previewed range's reply carries it.
    range_report: RangeReport | None = None
    #: Seconds the in-process retries waited, out of the retry budget.
    waited_seconds: float = 0.0

    def settled(self, action: Action, reason: Reason, detail: str) -> Outcome:
        """This outcome with a new settlement, its description `detail` cut to what Service
        Bus keeps (:func:`clip`)."""
        return replace(self, settlement=Settlement(action, reason, clip(detail)))


@dataclass(frozen=True, slots=True)
class FanOutPlan:
    """A date range ready to fan out: one child request per selected event still has to be
    sent before the message may be completed. `outcome` carries the listing's attempts and
    report; the sender turns the plan into the final outcome."""

    request: CancelRequest
    outcome: Outcome
