"""`cancel-handler send --reply-to … --wait …` against the real function: the command sends to
the Service Bus double, the function (Processor.process with the loopback Graph and identity)
processes what was sent and replies into the double's session-enabled reply queue, and the
command reads its own session and exits by the outcomes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from cancel_handler.cli.context import CliContext
from cancel_handler.cli.main import cli
from cancel_handler.ops.replies import wait_for_replies_async
from tests.conftest import UPN, Loopback
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import RecordingActions, RecordingSleep, as_delivered
from tests.reply_schema import reply_event

QUEUE = ["--namespace", "contoso-sb", "--queue", "cancel-requests"]
REPLIES = "cancel-replies"


def function_behind(
    bus: FakeServiceBus, loopback: Loopback, *, now: Any = None, **settings: str
) -> list:
    """Let the function process every request sent so far whenever the command waits (a date
    range's children, which it sends to the same queue, on the next wait); returns the
    settlement calls it made."""
    settled: list = []
    done = 0

    def run_function() -> None:
        nonlocal done
        batch = bus.sent[done:]
        done = len(bus.sent)
        if not batch:
            return
        actions = RecordingActions()
        processor = loopback.processor(
            RecordingSleep(), replies=bus, fan_out=bus, now=now, REPLY_TO_ALLOWED=REPLIES,
            **settings,
        )

        async def process() -> None:
            try:
                for message in batch:
                    await processor.process(as_delivered(message), actions)
            finally:
                await processor.aclose()

        asyncio.run(process())
        settled.extend(actions.settled)

    bus.on_idle = run_function
    return settled


def run(bus: FakeServiceBus, *args: str, input: str | None = None):
    """Invoke the CLI with the double as Service Bus and the double's clock."""
    context = CliContext(client_factory=bus.factory, clock=lambda: bus.now)
    return CliRunner().invoke(cli, list(args), obj=context, input=input)


def reply_lines(stdout: str) -> list[dict]:
    """The reply JSON lines the command printed."""
    return [json.loads(line)["reply"] for line in stdout.splitlines() if '"reply"' in line]


def test_all_cancelled_exits_0_and_prints_each_outcome(loopback: Loopback) -> None:
    """Two requests, one already cancelled by an earlier attempt: both answered, exit 0."""
    bus = FakeServiceBus()
    bus.add_entity(REPLIES)
    loopback.graph.state.add_event(UPN, "AAMk1=")
    settled = function_behind(bus, loopback)
    requests = "\n".join(
        json.dumps({"userPrincipalName": UPN, "eventId": e, "requestId": r})
        for e, r in [("AAMk1=", "r-1"), ("AAMk2=", "r-2")]
    )
    loopback.graph.state.add_event(UPN, "AAMk2=")
    result = run(bus, "send", "--file", "-", "--reply-to", REPLIES, "--wait", "60", *QUEUE,
                 input=requests)
    assert result.exit_code == 0, result.output
    assert [s.action for s in settled] == ["complete", "complete"]
    sent = bus.sent
    assert {m.reply_to for m in sent} == {REPLIES}
    [session] = {m.reply_to_session_id for m in sent}
    assert len(session) == 36, "a session id of its own"
    assert reply_lines(result.stdout) == [
        {"requestMessageId": "r-1", "outcome": "cancelled", "reason": "Cancelled"},
        {"requestMessageId": "r-2", "outcome": "cancelled", "reason": "Cancelled"},
    ]
    for reply in bus.entities[REPLIES].messages:
        assert reply.session_id == session
        reply_event(reply)
    assert (
        "replies: 2 succeeded (cancelled, already cancelled, fanned out or previewed), "
        "0 dead-lettered, 0 unanswered"
    ) in result.stderr


def test_any_dead_letter_exits_1_and_says_why(loopback: Loopback) -> None:
    """One request cancelled, one for an unknown event: exit 1, the reason on stderr."""
    bus = FakeServiceBus()
    bus.add_entity(REPLIES)
    loopback.graph.state.add_event(UPN, "AAMk1=")
    function_behind(bus, loopback)
    requests = "\n".join(
        json.dumps({"userPrincipalName": UPN, "eventId": e, "requestId": r})
        for e, r in [("AAMk1=", "r-1"), ("MISSING=", "r-2")]
    )
    result = run(bus, "send", "--file", "-", "--reply-to", REPLIES, "--wait", "60", *QUEUE,
                 input=requests)
    assert result.exit_code == 1, result.output
    assert [r["outcome"] for r in reply_lines(result.stdout)] == ["cancelled", "deadLettered"]
    assert "dead-lettered r-2: EventNotFound: Graph 404" in result.stderr


def test_no_reply_in_time_exits_3(loopback: Loopback) -> None:
    """The function never runs (app down): after --wait seconds on the clock, exit 3 naming the
    unanswered request."""
    bus = FakeServiceBus()
    bus.add_entity(REPLIES)
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", "--request-id", "r-9",
                 "--reply-to", REPLIES, "--wait", "30", *QUEUE)
    assert result.exit_code == 3, result.output
    assert "no reply yet for r-9 (outcome unknown)" in result.stderr
    assert bus.now >= 30


def test_other_sessions_replies_are_left_alone(loopback: Loopback) -> None:
    """A reply in another sender's session is neither read nor completed."""
    bus = FakeServiceBus()
    entity = bus.add_entity(REPLIES)
    loopback.graph.state.add_event(UPN, "AAMk1=")
    function_behind(bus, loopback)
    first = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", "--request-id", "r-a",
                "--reply-to", REPLIES, *QUEUE)
    assert first.exit_code == 0, first.output
    bus.on_idle()  # the function answers r-a in the first sender's session
    second = run(bus, "send", "--upn", UPN, "--event-id", "AAMk2=", "--request-id", "r-b",
                 "--reply-to", REPLIES, "--wait", "5", *QUEUE)
    assert second.exit_code == 1, second.output  # r-b: EventNotFound
    [reply_a] = [m for m in entity.messages if m.correlation_id == "r-a"]
    assert reply_a.message_id not in entity.completed


@pytest.mark.parametrize(
    "args",
    [["--wait", "5"], ["--reply-session-id", "s"], ["--reply-to", REPLIES, "--wait", "0"]],
)
def test_wait_options_need_reply_to_and_a_positive_time(args: list[str]) -> None:
    """--wait/--reply-session-id without --reply-to, or a zero wait, is a usage error."""
    bus = FakeServiceBus()
    result = run(bus, "send", "--upn", UPN, "--event-id", "AAMk1=", *args, *QUEUE)
    assert result.exit_code == 2
    assert bus.sent == []


def test_dry_run_shows_the_reply_address() -> None:
    """--dry-run prints replyTo and the session id each request would carry."""
    result = run(FakeServiceBus(), "send", "--upn", UPN, "--event-id", "AAMk1=", "--reply-to",
                 REPLIES, "--reply-session-id", "run-42", "--dry-run")
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert (line["replyTo"], line["replyToSessionId"]) == (REPLIES, "run-42")


ALLOWED_NAME_CHARACTERS = "only letters, digits, '.', '-', '_' and '/' are allowed"


@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "send"])
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--reply-to", REPLIES, "--reply-session-id", "s" * 200],
            {},
            "Error: --reply-session-id is too long for a Service Bus session id (it is 200 "
            "characters long; the limit is 128); nothing was sent",
        ),
        (
            ["--reply-to", "bad name!", "--wait", "5"],
            {},
            "Error: --reply-to is not a Service Bus queue or topic name (it contains ' ', '!'; "
            f"{ALLOWED_NAME_CHARACTERS}); nothing was sent",
        ),
        (
            ["--reply-to", "Cancel-Requests", "--wait", "5", "--queue", "cancel-requests"],
            {},
            "Error: --reply-to names the cancel queue 'cancel-requests' itself, where the "
            "function never sends replies; nothing was sent",
        ),
        (
            ["--reply-to", "cancel-requests"],
            {"CANCEL_QUEUE_NAME": "CANCEL-REQUESTS"},
            "Error: --reply-to names the cancel queue 'CANCEL-REQUESTS' itself, where the "
            "function never sends replies; nothing was sent",
        ),
    ],
    ids=["200-character-session", "bad-entity-name", "cancel-queue", "cancel-queue-from-env"],
)
def test_reply_addresses_never_answered_exit_2_before_connecting(
    dry_run: list[str], args: list[str], env: dict[str, str], message: str
) -> None:
    """A session id over Service Bus's 128 characters, a reply entity Service Bus would refuse,
    or the cancel queue itself (any case) is refused up front, with or without --dry-run:
    exit 2, one line saying why, nothing sent, no connection."""
    bus = FakeServiceBus()
    result = CliRunner().invoke(
        cli,
        [
            "send",
            "--upn",
            UPN,
            "--event-id",
            "AAMk1=",
            "--namespace",
            "contoso-sb",
            *args,
            *dry_run,
        ],
        obj=CliContext(client_factory=bus.factory),
        env=env,
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [message]
    assert result.stdout == ""
    assert bus.sent == [] and not hasattr(bus, "target")


def test_a_128_character_session_id_is_sent() -> None:
    """Service Bus's longest session id passes and goes onto the message."""
    bus = FakeServiceBus()
    result = run(
        bus,
        "send",
        "--upn",
        UPN,
        "--event-id",
        "AAMk1=",
        "--reply-to",
        REPLIES,
        "--reply-session-id",
        "s" * 128,
        *QUEUE,
    )
    assert result.exit_code == 0, result.output
    assert bus.sent[0].reply_to_session_id == "s" * 128


class _AsyncReceiver:
    """The aio receiver surface over the double's sync session receiver."""

    def __init__(self, receiver) -> None:
        self._receiver = receiver

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def receive_messages(self, **kwargs):
        return self._receiver.receive_messages(**kwargs)

    async def complete_message(self, message) -> None:
        self._receiver.complete_message(message)


class _AsyncClient:
    def __init__(self, bus: FakeServiceBus) -> None:
        self._bus = bus

    def get_queue_receiver(self, queue_name: str, **kwargs):
        return _AsyncReceiver(self._bus.get_queue_receiver(queue_name, **kwargs))


def test_async_api_awaits_the_same_replies(loopback: Loopback) -> None:
    """wait_for_replies_async returns the replies the function sent to the session."""
    from cancel_handler import prepare_request, send_cancel_requests

    bus = FakeServiceBus()
    bus.add_entity(REPLIES)
    loopback.graph.state.add_event(UPN, "AAMk1=")
    function_behind(bus, loopback)
    outgoing = prepare_request(UPN, "AAMk1=", message_id="r-async").with_reply(REPLIES, "s-1")
    send_cancel_requests(bus, "cancel-requests", [outgoing])
    bus.on_idle()  # the function runs (outside the waiting event loop) and replies
    bus.on_idle = None
    waited = asyncio.run(
        wait_for_replies_async(
            _AsyncClient(bus), REPLIES, "s-1", ["r-async"], 10, clock=lambda: bus.now
        )
    )
    assert waited.all_succeeded
    assert [r.outcome for r in waited.replies] == ["cancelled"]


def test_a_fanned_out_range_is_waited_on_to_its_last_meeting() -> None:
    """A `fannedOut` reply adds its children's MessageIds to the wait; a child's dead-letter
    then decides the result (wait_for_replies with replies built by the function's code)."""
    from cancel_handler.core.decision import Action, Reason, Settlement
    from cancel_handler.core.outcome import Outcome, RangeReport
    from cancel_handler.core.reply import RequestFacts, build_reply
    from cancel_handler.core.selection import RangeSelection
    from cancel_handler.ops.replies import wait_for_replies
    from cancel_handler.servicebus.replies import reply_message

    bus = FakeServiceBus()
    entity = bus.add_entity(REPLIES)
    answers = [
        (Outcome(Settlement(Action.COMPLETE, Reason.FANNED_OUT),
                 range_report=RangeReport(RangeSelection(()), child_message_ids=("c-1", "c-2"))),
         "range-1", None),
        (Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED)), "c-1", "range-1"),
        (Outcome(Settlement(Action.DEADLETTER, Reason.NOT_ORGANIZER, "Graph 400")), "c-2",
         "range-1"),
    ]
    for outcome, message_id, parent in answers:
        facts = RequestFacts(message_id, reply_to_session_id="s-r", parent_message_id=parent)
        reply = build_reply(outcome, facts, entity=REPLIES, source="/cancel-handler/queues/q")
        entity.accept(reply_message(reply))
    waited = wait_for_replies(bus, REPLIES, "s-r", ["range-1"], 10, clock=lambda: bus.now)
    assert [r.request_message_id for r in waited.replies] == ["range-1", "c-1", "c-2"]
    assert [r.reason for r in waited.dead_lettered] == ["NotOrganizer"]
    assert waited.missing == [] and not waited.all_succeeded
    assert waited.replies[1].data["parentMessageId"] == "range-1"


def test_a_leave_is_waited_on_until_each_meeting_is_answered(loopback: Loopback) -> None:
    """`send --from --to --reply-to --wait`: the function fans the range out, replies
    `fannedOut`, cancels each child and answers each; the command prints all three replies and
    exits 0 only after the last child's answer."""
    from cancel_handler.devtools.graph_simulator import Meeting

    now = datetime(2027, 3, 1, 12, tzinfo=UTC)
    for event_id, day in (("REVIEW", 11), ("PLANNING", 12)):
        start = datetime(2027, 3, day, 9, tzinfo=UTC)
        loopback.graph.state.add_meeting(UPN, Meeting(event_id, start, start.replace(hour=10)))
    bus = FakeServiceBus()
    bus.add_entity(REPLIES)
    settled = function_behind(bus, loopback, now=lambda: now)
    result = run(bus, "send", "--upn", UPN, "--from", "2027-03-10T00:00:00Z", "--to",
                 "2027-03-20T00:00:00Z", "--request-id", "leave-1", "--reply-to", REPLIES,
                 "--wait", "60", *QUEUE)
    assert result.exit_code == 0, result.output
    assert [s.action for s in settled] == ["complete"] * 3
    lines = reply_lines(result.stdout)
    children = [m.message_id for m in bus.sent[1:]]
    assert [(r["requestMessageId"], r["outcome"]) for r in lines] == [
        ("leave-1", "fannedOut"), (children[0], "cancelled"), (children[1], "cancelled")]
    assert {m.reply_to_session_id for m in bus.sent} == {bus.sent[0].reply_to_session_id}
    assert [c.event_id for c in loopback.cancels()] == ["REVIEW", "PLANNING"]
    assert "replies: 3 succeeded" in result.stderr
