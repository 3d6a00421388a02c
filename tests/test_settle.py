"""Settlement and its one log line: the right `ServiceBusMessageActions` call, a refusal turned
into SettlementError, and a log line that sender-controlled ids cannot forge or bloat."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cancel_handler.core.decision import Action, Reason, Settlement
from cancel_handler.core.errors import SettlementError
from cancel_handler.core.outcome import Outcome
from cancel_handler.servicebus.delivery import delivery_of
from cancel_handler.servicebus.settle import log_field, log_settlement, settle
from tests.helpers import RecordingActions, received_message

LOGGER = "cancel_handler.settlement"


def _outcome(action: Action, reason: Reason, description: str = "") -> Outcome:
    return Outcome(Settlement(action, reason, description), 2, 404, "rid-7", 31)


@pytest.mark.parametrize(
    ("action", "reason", "recorded"),
    [
        (Action.COMPLETE, Reason.CANCELLED, ("complete", None, None)),
        (Action.ABANDON, Reason.TRANSIENT_FAILURE, ("abandon", None, None)),
        (Action.DEADLETTER, Reason.EVENT_NOT_FOUND, ("deadletter", "EventNotFound", "why")),
    ],
)
def test_each_decision_makes_its_settlement_call(
    action: Action, reason: Reason, recorded: tuple
) -> None:
    """complete, abandon and deadletter (with reason and description) reach the actions once."""
    actions = RecordingActions()
    message = received_message(b"{}")
    asyncio.run(settle(message, actions, delivery_of(message), _outcome(action, reason, "why")))
    settled = actions.only
    assert settled.message is message
    assert (settled.action, settled.reason, settled.description) == recorded


@pytest.mark.parametrize("refused", ["complete", "abandon", "deadletter"])
def test_a_refused_settlement_raises_and_logs_an_error(
    refused: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The host refusing a settlement raises SettlementError naming the action, and the log line
    says settlement_failed with the error type, at ERROR."""
    action = Action(refused)
    actions = RecordingActions(fail_on={refused})
    message = received_message(b"{}", message_id="m-refused")
    with caplog.at_level(logging.INFO, logger=LOGGER), pytest.raises(SettlementError) as caught:
        asyncio.run(
            settle(message, actions, delivery_of(message), _outcome(action, Reason.CANCELLED))
        )
    assert str(caught.value) == f"settlement '{refused}' failed: RuntimeError"
    assert caught.value.action == refused and isinstance(caught.value.__cause__, RuntimeError)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "message_id=m-refused correlation_id=- outcome=settlement_failed" in record.getMessage()
    assert record.getMessage().endswith("error=RuntimeError")


@pytest.mark.parametrize(
    ("action", "level"),
    [
        (Action.COMPLETE, logging.INFO),
        (Action.DEADLETTER, logging.WARNING),
        (Action.ABANDON, logging.WARNING),
    ],
)
def test_log_level_follows_the_outcome(
    action: Action, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Completions log at INFO; dead-letters and give-backs at WARNING."""
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        log_settlement(delivery_of(received_message(b"{}")), _outcome(action, Reason.CANCELLED))
    [record] = caplog.records
    assert record.levelno == level


def test_the_log_line_lists_every_field_in_order(caplog: pytest.LogCaptureFixture) -> None:
    """One line: message and correlation id, outcome, reason, Graph status and request-id,
    attempts, elapsed ms; absent values read '-'; the same fields are attached as data."""
    message = received_message(b"{}", message_id="m-1")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log_settlement(delivery_of(message), _outcome(Action.DEADLETTER, Reason.EVENT_NOT_FOUND))
    [record] = caplog.records
    assert record.getMessage() == (
        "settlement message_id=m-1 correlation_id=- outcome=deadletter reason=EventNotFound "
        "graph_status=404 request_id=rid-7 attempts=2 elapsed_ms=31"
    )
    assert record.cancel_handler == {
        "message_id": "m-1",
        "correlation_id": None,
        "outcome": "deadletter",
        "reason": "EventNotFound",
        "graph_status": 404,
        "request_id": "rid-7",
        "attempts": 2,
        "elapsed_ms": 31,
    }


def test_nothing_is_built_when_nobody_reads_the_level(caplog: pytest.LogCaptureFixture) -> None:
    """With the logger above INFO, a completion writes no record."""
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        log_settlement(
            delivery_of(received_message(b"{}")), _outcome(Action.COMPLETE, Reason.CANCELLED)
        )
    assert caplog.records == []


@pytest.mark.parametrize(
    ("sent", "logged", "shown"),
    [
        (
            "id\nsettlement message_id=forged",
            "id?settlement message_id=forged",
            '"id?settlement message_id=forged"',
        ),
        # (No NUL: the AMQP decoder ends a string there, so it never reaches the function.)
        ("a\rb\tc\x1bd\x7fe\x85f", "a?b?c?d?e?f", "a?b?c?d?e?f"),
        ("two words", "two words", '"two words"'),
        ('say "hi"', 'say "hi"', '"say \\"hi\\""'),
        ("k=v", "k=v", '"k=v"'),
        ("ok-id_1.2", "ok-id_1.2", "ok-id_1.2"),
        ("ümlaut-✓", "ümlaut-✓", "ümlaut-✓"),
        ("x" * 200, "x" * 128, "x" * 128),
    ],
)
def test_sender_controlled_ids_cannot_forge_log_lines(
    sent: str, logged: str, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Control characters and line breaks in message and correlation ids become '?' (spaces
    stay), each is cut to 128 characters, and in the line a value with a space, a quote or '='
    (or an empty one) is quoted, so one message gives exactly one parseable line."""
    message = received_message(b"{}", message_id=sent, correlation_id=sent)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log_settlement(delivery_of(message), _outcome(Action.COMPLETE, Reason.CANCELLED))
    [record] = caplog.records
    assert record.cancel_handler["message_id"] == logged
    assert record.cancel_handler["correlation_id"] == logged
    assert f"message_id={shown} correlation_id={shown} outcome=complete" in record.getMessage()


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), ("", '""'), (7, "7"), ("a b", '"a b"'), ("a", "a"), ("XRAY", "XRAY"),
     ("ümlaut x", '"ümlaut x"')],
)
def test_log_field_marks_missing_and_empty_values_apart(value: object, shown: str) -> None:
    """None is `-`, an empty text `""`: the two never read alike."""
    assert log_field(value) == shown


def test_bytes_ids_are_decoded_before_cleaning(caplog: pytest.LogCaptureFixture) -> None:
    """An id given as bytes (as AMQP may carry it) is logged as text, bad bytes as '?'."""

    class Message:
        message_id = b"bytes-id\n"
        correlation_id = b"\xff"

    with caplog.at_level(logging.INFO, logger=LOGGER):
        log_settlement(delivery_of(Message()), _outcome(Action.COMPLETE, Reason.CANCELLED))
    fields = caplog.records[0].cancel_handler
    assert (fields["message_id"], fields["correlation_id"]) == ("bytes-id?", "\ufffd")


def test_a_message_without_ids_is_logged_with_dashes(caplog: pytest.LogCaptureFixture) -> None:
    """An object without message_id/correlation_id attributes still gets its one log line."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        log_settlement(delivery_of(object()), _outcome(Action.COMPLETE, Reason.CANCELLED))
    assert caplog.records[0].getMessage().startswith(
        "settlement message_id=- correlation_id=- outcome=complete"
    )
