"""`cancel-handler dlq`: peek-only listing, filters, resubmit order and settlement, purge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cancel_handler.cli.context import CliContext
from cancel_handler.cli.main import cli
from cancel_handler.ops.repair import resubmitted_id
from cancel_handler.servicebus.messages import copy_check, sealed
from tests.conftest import UPN, cancel_body
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import received_message

QUEUE = ["--namespace", "contoso-sb", "--queue", "cancel-requests"]
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def dead_letter(seq: int, reason: str = "GraphForbidden", **options):
    """A real received message as Service Bus hands it out of the dead-letter queue."""
    options.setdefault("dead_letter_error_description", f"Graph 403; seq {seq}")
    options.setdefault("enqueued_time", T0 + timedelta(minutes=seq))
    options.setdefault("message_id", f"m-{seq}")
    return received_message(
        cancel_body(f"AAMk{seq}=", comment=f"secret comment {seq}"),
        sequence_number=seq,
        dead_letter_reason=reason,
        **options,
    )


def bus_with(*letters) -> FakeServiceBus:
    """A double whose dead-letter queue holds `letters`."""
    bus = FakeServiceBus()
    for letter in letters:
        bus.add_dead_letter(letter)
    return bus


def run(bus: FakeServiceBus, *args: str):
    """Invoke the CLI with the double as Service Bus."""
    return CliRunner().invoke(cli, ["dlq", *args, *QUEUE], obj=CliContext(bus.factory))


def test_list_prints_a_table_without_settling_anything() -> None:
    """The table shows sequence number, reason, description and request fields, not the comment."""
    bus = bus_with(dead_letter(7, delivery_count=3), dead_letter(9, "EventNotFound"))
    result = run(bus, "list")
    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split()[:3] == ["SEQ", "ENQUEUED", "(UTC)"]
    assert first.split()[:6] == ["7", "2025-03-01", "08:07:00", "3", "GraphForbidden", "m-7"]
    assert UPN in first and "AAMk7=" in first and "Graph 403; seq 7" in first
    assert "EventNotFound" in second
    assert "secret comment" not in result.stdout
    assert bus.events == [] and len(bus.dead_letters) == 2


def test_list_json_has_the_dead_letter_fields() -> None:
    """--json prints an array with ids, times, delivery count, reason and description."""
    bus = bus_with(dead_letter(7, correlation_id="c-7", delivery_count=2))
    result = run(bus, "list", "--json")
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item == {
        "sequenceNumber": 7,
        "messageId": "m-7",
        "correlationId": "c-7",
        "enqueuedTime": "2025-03-01T08:07:00+00:00",
        "deliveryCount": 2,
        "deadLetterReason": "GraphForbidden",
        "deadLetterErrorDescription": "Graph 403; seq 7",
        "userPrincipalName": UPN,
        "eventId": "AAMk7=",
    }


def test_list_pages_through_the_whole_queue_and_honours_max() -> None:
    """Peeking pages by sequence number past one page; --max caps the output."""
    bus = bus_with(*(dead_letter(seq) for seq in range(1, 251)))
    everything = json.loads(run(bus, "list", "--json", "--max", "1000").stdout)
    assert [item["sequenceNumber"] for item in everything] == list(range(1, 251))
    assert len(json.loads(run(bus, "list", "--json", "--max", "5").stdout)) == 5


def test_list_filters_by_reason_and_time() -> None:
    """--reason and --since (inclusive) / --until (exclusive) select by reason and enqueued time."""
    bus = bus_with(
        dead_letter(1, "NotOrganizer"),
        dead_letter(2, "GraphForbidden"),
        dead_letter(3, "NotOrganizer"),
        dead_letter(4, "MaxDeliveryCountExceeded"),
    )
    by_reason = run(bus, "list", "--json", "--reason", "NotOrganizer")
    assert [i["sequenceNumber"] for i in json.loads(by_reason.stdout)] == [1, 3]
    by_time = run(
        bus, "list", "--json", "--since", "2025-03-01T08:02:00Z", "--until", "2025-03-01T08:04"
    )
    assert [i["sequenceNumber"] for i in json.loads(by_time.stdout)] == [2, 3]


def test_unknown_reason_exits_2_with_the_vocabulary() -> None:
    """A reason outside the documented vocabulary is a usage error listing the known ones."""
    result = run(bus_with(dead_letter(1)), "list", "--reason", "Forbidden")
    assert result.exit_code == 2
    assert "GraphForbidden" in result.stderr and "TTLExpiredException" in result.stderr


def test_bad_time_exits_2() -> None:
    """--since must be ISO 8601."""
    result = run(bus_with(), "list", "--since", "yesterday")
    assert result.exit_code == 2 and "ISO 8601" in result.stderr


def test_show_prints_everything_including_the_comment() -> None:
    """`show SEQ` peeks one message in full; terminal control characters are neutralised."""
    bus = bus_with(dead_letter(5, dead_letter_error_description="bad\x1b[31m red"))
    result = run(bus, "show", "5")
    assert result.exit_code == 0, result.output
    assert "comment: secret comment 5" in result.stdout
    assert "deadLetterErrorDescription: bad?[31m red" in result.stdout
    assert "\x1b" not in result.stdout
    assert bus.events == []


def test_show_of_a_missing_sequence_number_exits_1() -> None:
    """Peek returns the next message after a gap; show checks it is the one asked for."""
    result = run(bus_with(dead_letter(6)), "show", "5")
    assert result.exit_code == 1
    assert "no dead-lettered message with sequence number 5" in result.stderr


def test_resubmit_sends_then_completes_in_sequence_order() -> None:
    """Copies go out in sequence order, and each original is completed only after its send."""
    bus = bus_with(dead_letter(30), dead_letter(10), dead_letter(20, "NotOrganizer"))
    result = run(bus, "resubmit", "--reason", "GraphForbidden")
    assert result.exit_code == 0, result.output
    assert bus.events[0] == ("send", [resubmitted_id("m-10", 10), resubmitted_id("m-30", 30)])
    assert bus.events[1:3] == [("complete", 10), ("complete", 30)]
    assert ("abandon", 20) in bus.events
    assert list(bus.dead_letters) == [20]
    assert "resubmitted 2, failed 0, not removed 0, skipped 0" in result.stdout


def test_resubmitted_copy_keeps_body_ids_and_properties() -> None:
    """The copy keeps body, correlation id, content type, subject and properties, drops
    DeadLetter*, sets originalMessageId, increments resubmitCount, records the dead-letter
    reason it came from, restarts the delayed-retry count and adds a fresh copy check. (The
    dead-lettered message is itself a copy our tools made: its markers carry their check.)"""
    markers = sealed("m-4", {"resubmitCount": 1, "cancelHandlerRetryCount": 3})
    original = dead_letter(
        4,
        correlation_id="c-4",
        subject="cancel",
        application_properties={
            b"tenant": b"contoso",
            **{k.encode(): v.encode() if isinstance(v, str) else v for k, v in markers.items()},
        },
    )
    bus = bus_with(original)
    assert run(bus, "resubmit", "--sequence-number", "4").exit_code == 0
    (copy,) = bus.sent
    assert copy.message_id == resubmitted_id("m-4", 4) != "m-4"
    assert (copy.correlation_id, copy.content_type, copy.subject) == (
        "c-4",
        "application/json",
        "cancel",
    )
    assert b"".join(copy.body) == b"".join(original.body)
    assert copy.application_properties == {
        "tenant": "contoso",
        "resubmitCount": 2,
        "originalMessageId": "m-4",
        "resubmittedFromReason": original.dead_letter_reason,
        "cancelHandlerCopyCheck": copy_check(copy.message_id, copy.application_properties),
    }
    assert original.dead_letter_reason


def test_failed_send_leaves_the_dead_letters_uncompleted() -> None:
    """When the send fails, nothing is completed, the originals are abandoned and stay, exit 1."""
    bus = bus_with(dead_letter(1), dead_letter(2))
    bus.fail_sends = {1}
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 1
    assert not any(kind == "complete" for kind, _ in bus.events)
    assert {("abandon", 1), ("abandon", 2)} <= set(bus.events)
    assert sorted(bus.dead_letters) == [1, 2]
    assert "failed 1: link detached" in result.stderr


def test_resubmit_fills_batches_in_order_and_completes_after_each_send() -> None:
    """Copies go out in as few batches as fit (two per batch here), each batch's originals
    completed right after its send."""
    bus = bus_with(*(dead_letter(seq) for seq in range(1, 6)))
    bus.batch_max_bytes = 700
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 0, result.output
    sends = [ids for kind, ids in bus.events if kind == "send"]
    assert sends == [
        [resubmitted_id(f"m-{s}", s) for s in group] for group in ([1, 2], [3, 4], [5])
    ]
    assert [kind for kind, _ in bus.events[:4]] == ["send", "complete", "complete", "send"]
    assert bus.dead_letters == {}


def _too_large(seq: int):
    """A dead letter whose copy does not fit a 700-byte batch."""
    return received_message(
        cancel_body(f"AAMk{seq}=", comment="x" * 2000),
        sequence_number=seq,
        dead_letter_reason="GraphForbidden",
        message_id=f"m-{seq}",
        enqueued_time=T0,
    )


def test_a_copy_too_large_for_any_batch_fails_alone_and_stops() -> None:
    """A first copy too large for an empty batch is reported failed; nothing is sent and
    every original stays dead-lettered."""
    bus = bus_with(_too_large(1), dead_letter(2))
    bus.batch_max_bytes = 700
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 1
    assert "failed 1: too large to resend" in result.stderr
    assert bus.sent == [] and sorted(bus.dead_letters) == [1, 2]


def test_a_copy_too_large_after_sent_batches_fails_and_the_rest_is_skipped() -> None:
    """When the too-large copy comes after copies already sent, those stay resubmitted, it is
    reported failed like a first one, and the ones after it are skipped, not lost."""
    bus = bus_with(dead_letter(1), _too_large(2), dead_letter(3))
    bus.batch_max_bytes = 700
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 1
    assert bus.sent_ids == [resubmitted_id("m-1", 1)]
    assert "failed 2: too large to resend" in result.stderr
    assert "skipped 3" in result.stderr
    assert sorted(bus.dead_letters) == [2, 3]


def test_a_failed_send_is_reported_without_its_credentials() -> None:
    """The reason a resubmit failed is the error's first line with any key redacted, like every
    other error line the tool prints."""
    bus = bus_with(dead_letter(1))

    def refuse(batch) -> None:
        raise RuntimeError(
            "link detached: Endpoint=sb://contoso-sb.servicebus.windows.net/;"
            "SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ==\ncondition: amqp:x"
        )

    sender = bus.get_queue_sender(bus.queue_name)
    sender.send_messages = refuse
    bus.get_queue_sender = lambda queue_name: sender
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 1
    assert "c2VjcmV0LWtleQ" not in result.output + result.stderr
    assert "failed 1: link detached: Endpoint=sb://contoso-sb.servicebus.windows.net/;" in (
        result.stderr
    )
    assert "SharedAccessKey=<redacted>" in result.stderr and "amqp:x" not in result.stderr


def test_resubmit_dry_run_changes_nothing() -> None:
    """--dry-run lists what would be resubmitted under which new id, and settles nothing."""
    bus = bus_with(dead_letter(3))
    result = run(bus, "resubmit", "--all", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would resubmit 3 (GraphForbidden) as {resubmitted_id('m-3', 3)}" in result.stdout
    assert bus.events == [] and bus.sent == []


@pytest.mark.parametrize("args", [[], ["--all", "--reason", "NotOrganizer"]])
def test_resubmit_needs_exactly_one_kind_of_selection(args) -> None:
    """No selector, or --all mixed with a filter, is a usage error (exit 2)."""
    result = run(bus_with(dead_letter(1)), "resubmit", *args)
    assert result.exit_code == 2


def test_resubmit_of_thousands_reports_counts() -> None:
    """A large resubmit runs through the progress bar and ends with the summary."""
    bus = bus_with(*(dead_letter(seq) for seq in range(1, 1201)))
    result = run(bus, "resubmit", "--all")
    assert result.exit_code == 0, result.output
    assert bus.sent_ids == [resubmitted_id(f"m-{s}", s) for s in range(1, 1201)]
    assert "resubmitted 1200, failed 0" in result.stdout
    assert bus.dead_letters == {}


def test_purge_without_yes_lists_and_exits_2() -> None:
    """Without --yes, purge prints what it would delete, deletes nothing and exits 2."""
    bus = bus_with(dead_letter(1, "EventNotFound"), dead_letter(2))
    result = run(bus, "purge", "--reason", "EventNotFound")
    assert result.exit_code == 2
    assert "would purge 1 (EventNotFound) m-1" in result.stdout
    assert "add --yes" in result.stderr
    assert bus.events == [] and sorted(bus.dead_letters) == [1, 2]


def test_purge_with_yes_completes_only_the_selection() -> None:
    """--yes completes the selected messages and gives the others back untouched."""
    bus = bus_with(dead_letter(1, "EventNotFound"), dead_letter(2), dead_letter(3, "EventNotFound"))
    result = run(bus, "purge", "--reason", "EventNotFound", "--yes")
    assert result.exit_code == 0, result.output
    assert [e for e in bus.events if e[0] == "complete"] == [("complete", 1), ("complete", 3)]
    assert list(bus.dead_letters) == [2]
    assert "purged 2, failed 0" in result.stdout


def test_message_gone_before_resubmit_is_reported_as_skipped() -> None:
    """A message peeked but no longer there when received is skipped, with exit code 1."""
    bus = bus_with(dead_letter(1))
    peeked = list(bus.dead_letters.values())
    original_receive = bus.get_queue_receiver

    def vanish_then_receive(queue_name, **kwargs):
        receiver = original_receive(queue_name, **kwargs)
        if "receive_mode" in kwargs:
            bus.dead_letters.clear()
        return receiver

    bus.get_queue_receiver = vanish_then_receive
    result = run(bus, "resubmit", "--all")
    assert peeked and result.exit_code == 1
    assert "skipped 1" in result.stderr and bus.sent == []


def test_list_names_icaluid_and_range_targets() -> None:
    """Dead letters of iCalUId and date-range requests show their target in the table and in
    --json, and their new reasons are accepted by --reason."""
    by_uid = received_message(
        {"userPrincipalName": UPN, "iCalUId": "UID-77"}, sequence_number=1,
        dead_letter_reason="AmbiguousEvent", message_id="m-1",
    )
    by_range = received_message(
        {"userPrincipalName": UPN, "startDateTime": "2026-07-01T00:00:00Z",
         "endDateTime": "2026-07-08T00:00:00Z"}, sequence_number=2,
        dead_letter_reason="RangeTooLarge", message_id="m-2",
    )
    bus = bus_with(by_uid, by_range)
    table = run(bus, "list")
    assert table.exit_code == 0, table.output
    assert "iCalUId UID-77" in table.stdout
    assert "2026-07-01T00:00:00Z/20" in table.stdout  # cut to the column width
    items = json.loads(run(bus, "list", "--json", "--reason", "RangeTooLarge").stdout)
    assert [(i["startDateTime"], i["endDateTime"]) for i in items] == [
        ("2026-07-01T00:00:00Z", "2026-07-08T00:00:00Z")]
    assert json.loads(run(bus, "list", "--json", "--reason", "AmbiguousEvent").stdout)[0][
        "iCalUId"] == "UID-77"


@pytest.mark.parametrize(
    "command", [["list"], ["resubmit"], ["purge", "--yes"]], ids=["list", "resubmit", "purge"]
)
@pytest.mark.parametrize(
    ("since", "until", "shown"),
    [
        ("2025-03-01", "2025-02-01", "2025-03-01T00:00:00+00:00 is not earlier than --until "
         "2025-02-01T00:00:00+00:00"),
        ("2025-03-01T10:00+02:00", "2025-03-01T08:00Z", "2025-03-01T10:00:00+02:00 is not "
         "earlier than --until 2025-03-01T08:00:00+00:00"),
    ],
    ids=["reversed", "same-instant"],
)
def test_a_window_no_message_can_be_in_exits_2_before_connecting(
    command: list[str], since: str, until: str, shown: str
) -> None:
    """--since at or after --until (instants compared across offsets) is refused naming both
    options, exit 2, and nothing is peeked, resubmitted or purged."""
    bus = bus_with(dead_letter(1))
    result = run(bus, *command, "--since", since, "--until", until)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: --since {shown}, so no message can match (--since is inclusive, --until "
        "exclusive)"
    )
    assert not hasattr(bus, "target"), "no client was made"


def test_a_window_of_one_second_is_used() -> None:
    """A --since just before --until is an ordinary filter."""
    bus = bus_with(dead_letter(1))
    when = (T0 + timedelta(minutes=1)).isoformat()
    later = (T0 + timedelta(minutes=1, seconds=1)).isoformat()
    result = run(bus, "list", "--json", "--since", when, "--until", later)
    assert result.exit_code == 0, result.output
    assert [letter["sequenceNumber"] for letter in json.loads(result.stdout)] == [1]


def test_both_repairs_show_the_same_parameters() -> None:
    """Resubmit and purge take one parameter list; each shows it in full."""
    import inspect

    from cancel_handler.ops.repair import purge_dead_letters, resubmit_dead_letters

    expected = (
        "(client: 'Any', queue_name: 'str', sequence_numbers: 'Iterable[int]', *, "
        "on_progress: 'Progress | None' = None, max_wait_time: 'float' = 5.0) -> 'RepairSummary'"
    )
    assert str(inspect.signature(resubmit_dead_letters)) == expected
    assert str(inspect.signature(purge_dead_letters)) == expected
