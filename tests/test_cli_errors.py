"""The command line never shows a traceback: bad settings, bad input, unreachable namespaces and
defects each end in a short message and the documented exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.servicebus import ServiceBusClient, TransportType
from click.testing import CliRunner, Result

from cancel_handler.cli.context import CliContext
from cancel_handler.cli.main import cli
from tests.conftest import UPN
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import received_message
from tests.test_cli_dlq import dead_letter

QUEUE = ["--namespace", "contoso-sb", "--queue", "cancel-requests"]
KEY = "SharedAccess" + "Key"  # assembled so that secret scanners do not flag the fixtures
SECRET = "c2VjcmV0LXZhbHVlLW5ldmVyLXByaW50ZWQ="


def invoke(*args: str, context: CliContext | None = None, **options: Any) -> Result:
    """Run the CLI in-process with the given dependencies (the real client factory by default)."""
    return CliRunner().invoke(cli, list(args), obj=context or CliContext(), **options)


def assert_clean(result: Result, exit_code: int) -> None:
    """The exit code is as documented and nothing but a message reached the user."""
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "value",
    [
        f"not a connection string {SECRET}",
        f"Endpoint=sb://contoso-sb.servicebus.windows.net/;{KEY}={SECRET}",
        f"Endpoint=sb://bad host!/;{KEY}Name=send;{KEY}={SECRET}",
    ],
    ids=["garbage", "no-key-name", "bad-host"],
)
def test_malformed_connection_string_is_one_line_exit_2_without_the_secret(value: str) -> None:
    """A value the SDK cannot use: one line naming the variable, exit 2, the secret never shown
    (checked with the SDK's own connection-string parser, before any connection)."""
    result = invoke(
        "send",
        "--upn",
        UPN,
        "--event-id",
        "AAMk1=",
        "--queue",
        "cancel-requests",
        "--connection-string-env",
        "SB_CONN",
        env={"SB_CONN": value},
    )
    assert_clean(result, 2)
    assert SECRET not in result.output
    assert "SB_CONN" in result.stderr and "connection string" in result.stderr
    message_lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(message_lines) == 1


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"userPrincipalName": "a@b.c", "eventId": "E", "comment": "x\\ud800"}', "surrogate"),
        ('{"userPrincipalName": "a@b.c", "eventId": "E", "n": ' + "1" * 5000 + "}", "5000-digit"),
    ],
    ids=["lone-surrogate", "5000-digit-number"],
)
def test_strict_violation_in_a_file_line_is_reported_by_line(line: str, words: str) -> None:
    """A lone surrogate or a 5,000-digit number on line 2 is reported as that line, exit 2,
    nothing sent."""
    bus = FakeServiceBus()
    good = json.dumps({"userPrincipalName": UPN, "eventId": "AAMk1="})
    result = invoke(
        "send", "--file", "-", *QUEUE, context=CliContext(bus.factory), input=f"{good}\n{line}\n"
    )
    assert_clean(result, 2)
    assert "line 2: " in result.stderr and words in result.stderr
    assert bus.sent == []


def test_invalid_utf8_in_comment_is_bad_input_through_the_real_command_line() -> None:
    """Bytes that are not UTF-8 in --comment (as a shell passes them) give exit 2 naming the
    option, not a traceback. Runs the console entry point in a subprocess with raw argv bytes."""
    code = "from cancel_handler.cli.main import main; main()"
    argv = [sys.executable, "-c", code, "send", "--dry-run", "--upn", UPN, "--event-id", "AAMk1="]
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [*[a.encode() for a in argv], b"--comment", b"caf\xe9 \xff"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "--comment" in stderr and "UTF-8" in stderr
    assert done.stdout == b""


def test_empty_file_says_nothing_to_send_without_connecting(tmp_path) -> None:
    """An empty (or blank-only) file: 'nothing to send', exit 0, no connection made."""
    path = tmp_path / "requests.jsonl"
    path.write_text("\n  \n")
    bus = FakeServiceBus()
    result = invoke("send", "--file", str(path), *QUEUE, context=CliContext(bus.factory))
    assert_clean(result, 0)
    assert "nothing to send" in result.stderr
    assert not hasattr(bus, "target"), "no client was made"


class _Credential:
    """A token credential that always answers (the failure under test is the connection)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("test-token", int(time.time()) + 3600)


def _unreachable(target: Any) -> ServiceBusClient:
    """The real SDK client for the target's namespace, pointed at a closed local port."""
    return ServiceBusClient(
        target.fully_qualified_namespace,
        _Credential(),
        retry_total=0,
        custom_endpoint_address="sb://127.0.0.1:9",
        transport_type=TransportType.Amqp,
    )


@pytest.mark.parametrize(
    ("args", "role"),
    [
        (["send", "--upn", UPN, "--event-id", "AAMk1="], "Data Sender"),
        (["dlq", "list"], "Data Receiver"),
    ],
    ids=["send", "dlq-list"],
)
def test_connection_failure_names_the_namespace_and_what_to_check(args, role) -> None:
    """The SDK's 'Failed to initiate the connection' becomes a message naming the namespace and
    the things to check: its name, DNS/firewall, and the signed-in identity's role; exit 1."""
    result = invoke(*args, *QUEUE, context=CliContext(_unreachable))
    assert_clean(result, 1)
    text = result.stderr
    assert "contoso-sb.servicebus.windows.net" in text
    assert "DNS" in text and "firewall" in text and role in text
    assert "Failed to initiate the connection" in text


def test_dlq_list_says_when_more_messages_exist_than_shown() -> None:
    """With more matches than --max, the list says so and how to see the rest; exit 0."""
    bus = FakeServiceBus()
    for seq in range(1, 6):
        bus.add_dead_letter(dead_letter(seq))
    result = invoke("dlq", "list", "--max", "3", *QUEUE, context=CliContext(bus.factory))
    assert_clean(result, 0)
    assert len(result.stdout.splitlines()) == 1 + 3
    assert "more than 3" in result.stderr and "--max" in result.stderr
    assert "--since" in result.stderr


def test_dlq_list_of_everything_does_not_claim_more() -> None:
    """When every match is shown there is no 'more' hint."""
    bus = FakeServiceBus()
    for seq in range(1, 4):
        bus.add_dead_letter(dead_letter(seq))
    result = invoke("dlq", "list", "--max", "3", *QUEUE, context=CliContext(bus.factory))
    assert_clean(result, 0)
    assert "more than" not in result.stderr


def test_unexpected_error_is_one_line_exit_1() -> None:
    """A defect anywhere in a command ends in one line naming the error type, exit 1."""

    def broken(target: Any) -> Any:
        raise TypeError("internal defect")

    result = invoke("dlq", "list", *QUEUE, context=CliContext(broken))
    assert_clean(result, 1)
    assert "TypeError" in result.stderr and "internal defect" in result.stderr


@pytest.mark.parametrize("args", [["list", "--json"], ["show", "5", "--json"], ["show", "5"]])
def test_dead_letters_holding_lone_surrogates_are_shown_not_crashed_on(args: list[str]) -> None:
    """An InvalidMessage dead-letter whose body holds lone surrogate escapes (in the UPN and
    the comment) is listed and shown: JSON output keeps them as escapes, text output as '?'."""
    raw = b'{"userPrincipalName": "a\\ud800@b.c", "eventId": "E", "comment": "x\\udfff"}'
    bus = FakeServiceBus()
    bus.add_dead_letter(
        received_message(raw, sequence_number=5, dead_letter_reason="InvalidMessage")
    )
    result = invoke("dlq", *args, *QUEUE, context=CliContext(bus.factory))
    assert_clean(result, 0)
    if "--json" in args:
        shown = json.loads(result.stdout)
        letter = shown[0] if isinstance(shown, list) else shown
        assert letter["userPrincipalName"] == "a\ud800@b.c"
    else:
        assert "a?@b.c" in result.stdout


CONNECTION_STRINGS = [
    f"Endpoint=sb://contoso-sb.servicebus.windows.net/;{KEY}Name=send;{KEY}={SECRET}",
    f"endpoint=sb://contoso-sb.servicebus.windows.net/; {KEY.lower()} = {SECRET}",
    "Endpoint=sb://contoso-sb.servicebus.windows.net/;SharedAccessSignature=SharedAccess"
    f"Signature sr=contoso-sb&sig={SECRET}&se=1900000000&skn=send",
]
CONNECTION_STRING_IDS = ["key", "lower-case-key", "signature"]
NAMESPACE_IS_A_CONNECTION_STRING = (
    "Error: namespace: the value given looks like a connection string and is not shown; "
    "--namespace (or SERVICEBUS_NAMESPACE) takes the namespace name or host, e.g. contoso-sb; "
    "to sign in with a connection string, put it in an environment variable and pass "
    "--connection-string-env VAR"
)
QUEUE_IS_A_CONNECTION_STRING = (
    "Error: queue: the value given looks like a connection string and is not shown; "
    "--queue (or CANCEL_QUEUE_NAME) takes the queue's name, e.g. cancel-requests; "
    "to sign in with a connection string, put it in an environment variable and pass "
    "--connection-string-env VAR"
)
SEND = ["send", "--upn", UPN, "--event-id", "AAMk1="]
COMMANDS = pytest.mark.parametrize("command", [SEND, ["dlq", "list"]], ids=["send", "dlq-list"])


def assert_secret_never_shown(result: Result) -> None:
    """Neither the key nor the signature appears in anything the user sees."""
    for text in (result.stdout, result.stderr):
        assert SECRET not in text


def last_line(result: Result) -> str:
    """The error line click prints after the usage lines."""
    return result.stderr.splitlines()[-1]


@COMMANDS
@pytest.mark.parametrize("value", CONNECTION_STRINGS, ids=CONNECTION_STRING_IDS)
@pytest.mark.parametrize(
    "source",
    ["--namespace", "SERVICEBUS_NAMESPACE", "ServiceBusConnection__fullyQualifiedNamespace"],
)
def test_connection_string_given_as_namespace_is_named_never_shown(
    command: list[str], value: str, source: str
) -> None:
    """A connection string in --namespace or its variables: exit 2 saying what it looks like
    and what to use instead, the key never printed, no connection made."""
    bus = FakeServiceBus()
    args, env = ([source, value], {}) if source.startswith("--") else ([], {source: value})
    result = invoke(
        *command, *args, "--queue", "cancel-requests", context=CliContext(bus.factory), env=env
    )
    assert_clean(result, 2)
    assert last_line(result) == NAMESPACE_IS_A_CONNECTION_STRING
    assert_secret_never_shown(result)
    assert not hasattr(bus, "target"), "no client was made"


@COMMANDS
@pytest.mark.parametrize("value", CONNECTION_STRINGS, ids=CONNECTION_STRING_IDS)
@pytest.mark.parametrize("source", ["--queue", "CANCEL_QUEUE_NAME"])
def test_connection_string_given_as_queue_is_named_never_shown(
    command: list[str], value: str, source: str
) -> None:
    """A connection string in --queue or CANCEL_QUEUE_NAME is refused before connecting (it
    used to reach the SDK and come back in 'cannot reach … on queue …'); exit 2, no key."""
    args, env = ([source, value], {}) if source.startswith("--") else ([], {source: value})
    result = invoke(
        *command, "--namespace", "contoso-sb", *args, context=CliContext(_unreachable), env=env
    )
    assert_clean(result, 2)
    assert last_line(result) == QUEUE_IS_A_CONNECTION_STRING
    assert_secret_never_shown(result)


def test_a_bare_key_given_as_namespace_is_not_shown() -> None:
    """A key pasted where the namespace belongs (not recognisable as one) is refused, exit 2,
    without repeating the value."""
    result = invoke(*SEND, "--namespace", SECRET, "--queue", "cancel-requests")
    assert_clean(result, 2)
    assert last_line(result) == (
        "Error: namespace: the value given is not a namespace name or host (expected e.g. "
        "contoso-sb or contoso-sb.servicebus.windows.net); it is not shown, as it may be a key"
    )
    assert_secret_never_shown(result)


@COMMANDS
@pytest.mark.parametrize(
    ("queue", "problem"),
    [
        (
            "bad name!",
            "it contains ' ', '!'; only letters, digits, '.', '-', '_' and '/' are allowed",
        ),
        ("q" * 261, "it is 261 characters long; the limit is 260"),
        ("cancel-requests-", "it must start and end with a letter or digit"),
    ],
    ids=["characters", "261-characters", "trailing-hyphen"],
)
def test_queue_names_service_bus_refuses_exit_2_before_connecting(
    command: list[str], queue: str, problem: str
) -> None:
    """Service Bus's naming rules (letters, digits, '.', '-', '_', '/'; a letter or digit at
    each end; at most 260 characters) are checked before any connection."""
    bus = FakeServiceBus()
    result = invoke(
        *command, "--namespace", "contoso-sb", "--queue", queue, context=CliContext(bus.factory)
    )
    assert_clean(result, 2)
    assert (
        last_line(result)
        == f"Error: queue: the value given is not a Service Bus queue name: {problem}"
    )
    assert not hasattr(bus, "target"), "no client was made"


def test_a_260_character_queue_name_is_used() -> None:
    """The longest name Service Bus allows is accepted and sent to."""
    bus = FakeServiceBus(queue_name="q" * 260)
    result = invoke(
        *SEND, "--namespace", "contoso-sb", "--queue", "q" * 260, context=CliContext(bus.factory)
    )
    assert_clean(result, 0)
    assert bus.target.queue_name == "q" * 260 and len(bus.sent) == 1
