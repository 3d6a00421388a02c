"""Copy markers (`resubmittedFromReason`, `cancelHandlerRetryCount`, …) change how a 404 is read,
so the function honours them only on copies our own tools made: a sender who sets them, or copies
them onto another message, gets the ordinary treatment and a warning in the log."""

from __future__ import annotations

import logging

import pytest

from cancel_handler.devtools.graph_simulator import Fault
from cancel_handler.ops.repair import resubmit_copy
from cancel_handler.servicebus.messages import (
    RESUBMITTED_FROM_PROPERTY,
    RETRY_COUNT_PROPERTY,
)
from tests.conftest import UPN, Loopback, cancel_body, process_all
from tests.helpers import (
    RecordingActions,
    RecordingSender,
    RecordingSleep,
    as_delivered,
    received_message,
)

ON = {"DELAYED_RETRY_MAX_COUNT": "3"}


def _warnings(caplog) -> list[str]:
    """Warnings of the function itself (settlement lines have their own logger)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "cancel_handler"
    ]


def _dead_lettered(reason: str, seq: int = 41, **properties: object):
    """A real message as it sits in the dead-letter queue with `reason`."""
    return received_message(
        cancel_body("WRONG-ID"),
        message_id=f"dl-{seq}",
        sequence_number=seq,
        dead_letter_reason=reason,
        application_properties={k.encode(): v for k, v in properties.items()},
    )


@pytest.mark.parametrize(
    "forged",
    [
        {b"resubmittedFromReason": b"MaxDeliveryCountExceeded"},
        {b"resubmittedFromReason": b"RetriesExhausted", b"resubmitCount": 1},
        {b"cancelHandlerRetryCount": 1, b"originalMessageId": b"upstream-1"},
        {b"cancelHandlerRetryCount": b"2"},
    ],
    ids=["resubmitted-mdc", "resubmitted-exhausted", "retry-count", "retry-count-text"],
)
def test_forged_marker_does_not_turn_a_wrong_event_id_into_already_cancelled(
    loopback: Loopback, caplog, forged: dict
) -> None:
    """A sender's own marker on a first delivery with an unknown event id: dead-lettered
    EventNotFound (not completed as AlreadyCancelled), and a warning names the properties and
    the message id, never their values' meaning as fact."""
    caplog.set_level(logging.INFO)
    message = received_message(
        cancel_body("WRONG-ID"), message_id="upstream-1", application_properties=forged
    )
    actions = RecordingActions()
    process_all(loopback.processor(), [message], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "EventNotFound")
    [warning] = _warnings(caplog)
    assert "upstream-1" in warning
    for name in forged:
        assert name.decode() in warning


def test_forged_retry_count_does_not_exhaust_delayed_retries(loopback: Loopback) -> None:
    """A sender's cancelHandlerRetryCount=99 does not make a throttled request RetriesExhausted:
    the function schedules delayed retry 1 as for any original."""
    loopback.graph.state.script(UPN, "T1", Fault(429, {"Retry-After": "300"}))
    sender = RecordingSender()
    message = received_message(
        cancel_body("T1"), application_properties={b"cancelHandlerRetryCount": 99}
    )
    actions = RecordingActions()
    process_all(loopback.processor(RecordingSleep(), sender=sender, **ON), [message], actions)
    assert (actions.only.action, actions.only.reason) == ("complete", None)
    [(copy, _)] = sender.scheduled
    assert copy.application_properties[RETRY_COUNT_PROPERTY] == 1


def test_genuine_resubmission_after_exhausted_retries_counts_404_as_done(
    loopback: Loopback, caplog
) -> None:
    """The copy `dlq resubmit` makes of a MaxDeliveryCountExceeded message completes on a 404
    (the earlier attempts may have cancelled it), with no warning."""
    caplog.set_level(logging.INFO)
    copy = resubmit_copy(_dead_lettered("MaxDeliveryCountExceeded"))
    actions = RecordingActions()
    process_all(loopback.processor(), [as_delivered(copy)], actions)
    assert (actions.only.action, actions.only.reason) == ("complete", None)
    assert _warnings(caplog) == []


def test_genuine_delayed_retry_copy_is_honoured_without_warning(
    loopback: Loopback, caplog
) -> None:
    """The function's own delayed-retry copy, after a 504 that hid a cancel, completes on 404."""
    caplog.set_level(logging.INFO)
    loopback.graph.state.add_event(UPN, "G1")
    loopback.graph.state.script(UPN, "G1", Fault(504, {"Retry-After": "900"}, cancels=True))
    sender = RecordingSender()
    actions = RecordingActions()
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    process_all(processor, [received_message(cancel_body("G1"))], actions)
    [(copy, _)] = sender.scheduled
    processor = loopback.processor(RecordingSleep(), sender=sender, **ON)
    process_all(processor, [as_delivered(copy)], actions)
    assert [s.action for s in actions.settled] == ["complete", "complete"]
    assert [c.status for c in loopback.graph.state.calls][-1] == 404
    assert _warnings(caplog) == []


@pytest.mark.parametrize("tamper", ["new-message-id", "changed-reason", "raised-count"])
def test_copied_or_altered_markers_are_not_honoured(
    loopback: Loopback, caplog, tamper: str
) -> None:
    """Markers of a genuine copy moved onto another message (a sender forwarding properties) or
    changed afterwards are ignored with a warning: the 404 dead-letters as EventNotFound."""
    caplog.set_level(logging.INFO)
    changes: dict = {}
    if tamper == "new-message-id":
        copy = resubmit_copy(_dead_lettered("MaxDeliveryCountExceeded"))
        changes = {"message_id": "forwarded-1"}
    else:
        copy = resubmit_copy(_dead_lettered("GraphForbidden"))
    properties = dict(copy.application_properties)
    if tamper == "changed-reason":
        properties[RESUBMITTED_FROM_PROPERTY] = "MaxDeliveryCountExceeded"
    elif tamper == "raised-count":
        properties[RETRY_COUNT_PROPERTY] = 1
    message = as_delivered(copy, application_properties=properties, **changes)
    actions = RecordingActions()
    process_all(loopback.processor(), [message], actions)
    assert (actions.only.action, actions.only.reason) == ("deadletter", "EventNotFound")
    assert len(_warnings(caplog)) == 1


def test_forged_markers_are_not_carried_into_copies_our_tools_make(loopback: Loopback) -> None:
    """A forged resubmittedFromReason is dropped from the delayed-retry copy (so the copy cannot
    launder it), and a resubmitted copy takes its markers from the dead-letter queue only."""
    loopback.graph.state.script(UPN, "L1", Fault(429, {"Retry-After": "300"}))
    forged = {b"resubmittedFromReason": b"MaxDeliveryCountExceeded", b"tenant": b"contoso"}
    sender = RecordingSender()
    message = received_message(cancel_body("L1"), application_properties=forged)
    process_all(
        loopback.processor(RecordingSleep(), sender=sender, **ON), [message], RecordingActions()
    )
    [(retry_copy, _)] = sender.scheduled
    assert RESUBMITTED_FROM_PROPERTY not in retry_copy.application_properties
    assert retry_copy.application_properties["tenant"] == "contoso"

    dead = _dead_lettered(
        "EventNotFound", resubmittedFromReason=b"RetriesExhausted", resubmitCount=7
    )
    resubmitted = resubmit_copy(dead)
    assert resubmitted.application_properties[RESUBMITTED_FROM_PROPERTY] == "EventNotFound"
    assert resubmitted.application_properties["resubmitCount"] == 1
