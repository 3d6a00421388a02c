"""The fleet simulation's stand-ins follow the documented rules, and a tiny fleet run ends every
message exactly once (the real figures come from `python -m bench.fleet`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench.fleet.queue import MAX_DELIVERY_COUNT_EXCEEDED, Queue, QueueRules
from bench.fleet.run import steady_rate
from bench.fleet.scaler import desired_instances, next_count
from cancel_handler.devtools.graph_limits import GraphLimitRules, GraphLimits

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- Graph's limits ------------------------------------------------------------------------------


def test_a_fifth_concurrent_request_for_one_mailbox_is_refused_and_others_are_not() -> None:
    """Outlook allows 4 concurrent requests per app and mailbox: the 5th is refused with the
    configured Retry-After while another mailbox is still served; a release makes room."""
    limits = GraphLimits(GraphLimitRules(concurrency_retry_after=2.128), clock=Clock())
    assert [limits.admit("adele@contoso.com") for _ in range(4)] == [None] * 4
    refusal = limits.admit("ADELE@contoso.com")
    assert refusal is not None
    assert (refusal.limit, refusal.retry_after) == ("mailbox_concurrency", 2.128)
    assert refusal.message == "Application is over its MailboxConcurrency limit."
    limits.release("adele@contoso.com", refused=True)
    assert limits.admit("alex@contoso.com") is None
    limits.release("adele@contoso.com")
    assert limits.admit("adele@contoso.com") is None
    summary = limits.summary()
    assert summary["max_in_flight"] == 4
    assert summary["max_in_hand"] == 5
    assert summary["refused"] == {"mailbox_concurrency": 1}


def test_the_10001st_request_in_ten_minutes_for_one_mailbox_is_refused_until_one_leaves() -> None:
    """10,000 requests per 10 minutes per app and mailbox: the next one is refused, with a
    Retry-After until the oldest leaves the window; then one is admitted again."""
    clock = Clock()
    limits = GraphLimits(GraphLimitRules(mailbox_concurrency=None), clock=clock)
    for index in range(10_000):
        clock.now = 1000.0 + index * 0.01  # 100 s for all of them
        assert limits.admit("adele@contoso.com") is None
        limits.release("adele@contoso.com")
    clock.now = 1200.0
    refusal = limits.admit("adele@contoso.com")
    assert refusal is not None and refusal.limit == "mailbox_window"
    assert refusal.retry_after == pytest.approx(1000.0 + 600.0 - 1200.0)
    assert limits.admit("alex@contoso.com") is None
    clock.now = 1600.001  # the first request (at 1000.0) has left the window
    assert limits.admit("adele@contoso.com") is not None  # the refused one at 1200 counts
    limits.release("adele@contoso.com", refused=True)


def test_refused_requests_count_toward_the_window_only_when_told() -> None:
    """"All requests accrue against your usage limits": with `count_refused` a refused request
    fills the window as an admitted one does; without it, it does not."""
    for count_refused, admitted_after in ((True, False), (False, True)):
        clock = Clock()
        rules = GraphLimitRules(mailbox_concurrency=1, mailbox_window=(3, 60.0),
                                count_refused=count_refused)
        limits = GraphLimits(rules, clock=clock)
        assert limits.admit("m") is None  # 1 counted
        assert limits.admit("m") is not None  # concurrency: refused (counted or not)
        assert limits.admit("m") is not None
        limits.release("m")
        assert (limits.admit("m") is None) is admitted_after


def test_130000_requests_in_ten_seconds_fill_the_app_window_across_mailboxes() -> None:
    """Graph's global limit is 130,000 requests per 10 s per app, whatever the mailbox."""
    clock = Clock()
    limits = GraphLimits(GraphLimitRules(mailbox_window=None), clock=clock)
    for index in range(130_000):
        mailbox = f"user{index % 1000}@contoso.com"
        assert limits.admit(mailbox) is None
        limits.release(mailbox)
    clock.now += 9.9
    refusal = limits.admit("someone-else@contoso.com")
    assert refusal is not None and refusal.limit == "app_window"
    assert refusal.retry_after == pytest.approx(0.1)
    clock.now += 0.1  # the 130,000 leave the window
    assert limits.admit("someone-else@contoso.com") is None


def test_scaled_rules_shorten_every_duration_and_keep_every_count() -> None:
    """A time scale multiplies windows, Retry-After and refusal time; counts stay."""
    rules = GraphLimitRules().scaled(0.25)
    assert rules.mailbox_window == (10_000, 150.0)
    assert rules.app_window == (130_000, 2.5)
    assert rules.concurrency_retry_after == 0.25
    assert rules.mailbox_concurrency == 4
    assert QueueRules().scaled(0.5).lock_duration == 60.0


# -- the scaler ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"), [(0, 0), (1, 1), (16, 1), (17, 2), (800, 40), (5000, 40)]
)
def test_flex_target_is_waiting_messages_over_16_capped_at_40(length: int, expected: int) -> None:
    """Desired instances = ceil(messages ÷ maxConcurrentCalls), at most maximumInstanceCount."""
    assert desired_instances(length, 16, 40) == expected


@pytest.mark.parametrize(
    ("current", "length", "expected"), [(1, 5000, 5), (37, 5000, 40), (3, 16, 3), (0, 20, 2)]
)
def test_flex_adds_at_most_four_instances_per_decision(
    current: int, length: int, expected: int
) -> None:
    """Up to four instances are added at a time; a decision never removes one."""
    assert next_count(current, length, 16, 40) == expected


# -- the queue -----------------------------------------------------------------------------------


def _message(message_id: str, session_id: str | None = None) -> dict:
    return {"body": "e30=", "message_id": message_id, "session_id": session_id}


def test_each_abandon_raises_the_delivery_count_and_the_tenth_dead_letters() -> None:
    """Delivery counts 1..10 are seen; the 10th abandon moves the message to the DLQ with
    MaxDeliveryCountExceeded."""
    queue = Queue(QueueRules(max_delivery_count=10), clock=Clock())
    queue.send(_message("m1"))
    seen = []
    for _ in range(10):
        [delivered] = queue.receive("i0", 1)
        seen.append(delivered["delivery_count"])
        assert queue.settle(delivered["lock_token"], "abandon")
    assert seen == list(range(1, 11))
    assert queue.receive("i0", 1) == []
    [final] = queue.finals
    assert (final.outcome, final.reason, final.deliveries) == (
        "deadletter", MAX_DELIVERY_COUNT_EXCEEDED, 10
    )


def test_an_expired_lock_redelivers_with_a_higher_count_and_the_old_lock_cannot_settle() -> None:
    """Lock expiry counts as a failed delivery; settling under the lost lock fails."""
    clock = Clock()
    queue = Queue(QueueRules(lock_duration=60.0, max_auto_lock_renewal=0.0), clock=clock)
    queue.send(_message("m1"))
    [first] = queue.receive("i0", 1)
    clock.now += 59.0
    assert queue.receive("i1", 1) == []
    clock.now += 1.0
    [second] = queue.receive("i1", 1)
    assert (second["message_id"], second["delivery_count"]) == ("m1", 2)
    assert not queue.settle(first["lock_token"], "complete")
    assert queue.settle(second["lock_token"], "complete")
    assert [(f.outcome, f.deliveries) for f in queue.finals] == [("complete", 2)]


def test_the_hosts_lock_renewal_keeps_the_lock_up_to_its_maximum() -> None:
    """With renewal up to 300 s, a 60 s lock is still held at 299 s and lost at 300 s."""
    clock = Clock()
    queue = Queue(QueueRules(lock_duration=60.0, max_auto_lock_renewal=300.0), clock=clock)
    queue.send(_message("m1"))
    queue.receive("i0", 1)
    clock.now += 299.0
    assert queue.receive("i1", 1) == []
    clock.now += 1.0
    assert [m["delivery_count"] for m in queue.receive("i1", 1)] == [2]


def test_a_scheduled_message_is_received_only_from_its_time() -> None:
    """Scheduled enqueue: invisible before its time, then delivered."""
    clock = Clock()
    queue = Queue(clock=clock)
    queue.send(_message("later"), scheduled_at=clock.now + 30.0)
    assert queue.receive("i0", 1) == [] and queue.active() == 0 and queue.unfinished() == 1
    clock.now += 30.0
    assert [m["message_id"] for m in queue.receive("i0", 1)] == ["later"]


def test_duplicate_detection_drops_a_repeated_message_id_within_its_window() -> None:
    """A MessageId seen within the window is dropped; after the window it is accepted."""
    clock = Clock()
    queue = Queue(QueueRules(duplicate_window=600.0), clock=clock)
    assert queue.send(_message("child-1"))
    clock.now += 599.0
    assert not queue.send(_message("child-1"))
    clock.now += 1.0
    assert queue.send(_message("child-1"))
    assert (queue.counts["sent"], queue.counts["duplicates_dropped"]) == (2, 1)


def test_a_session_belongs_to_one_receiver_with_one_call_at_a_time() -> None:
    """Sessions: one receiver per session, maxConcurrentCallsPerSession 1, at most
    maxConcurrentSessions per receiver; a message without a SessionId is refused."""
    clock = Clock()
    rules = QueueRules(sessions=True, max_concurrent_sessions=1, session_idle_timeout=5.0)
    queue = Queue(rules, clock=clock)
    for index in range(3):
        queue.send(_message(f"a{index}", "adele"))
    queue.send(_message("b0", "alex"))
    [first] = queue.receive("i0", 5)
    assert first["message_id"] == "a0"
    assert [m["message_id"] for m in queue.receive("i1", 5)] == ["b0"]
    assert queue.receive("i1", 5) == []  # adele's session is i0's; i1 holds alex's
    assert queue.settle(first["lock_token"], "complete")
    assert [m["message_id"] for m in queue.receive("i0", 5)] == ["a1"]
    clock.now += 5.0
    assert queue.receive("i1", 5) == []  # adele's session is busy (a1 locked by i0)
    with pytest.raises(ValueError, match="session_id"):
        queue.send(_message("no-session"))


# -- a tiny fleet --------------------------------------------------------------------------------


def test_a_tiny_fleet_ends_every_message_exactly_once(tmp_path: Path) -> None:
    """Two instance processes and a two-instance Flex fleet, scaled time: every sent message is
    completed or dead-lettered exactly once, each meeting is cancelled once, Graph never runs
    a 5th call for a mailbox, and the report ends with the `fleet:` line."""
    out, results = tmp_path / "performance.md", tmp_path / "fleet.json"
    out.write_text("# Performance\n\n## What was changed because of these benchmarks\n")
    done = subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-m", "bench.fleet", "--quick", "--out", str(out), "--json",
         str(results)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=110,
    )
    data = json.loads(results.read_text())
    for run in data["runs"]:
        assert run["unfinished"] == 0 and not run["timed_out"]
        assert run["completed"] + run["dead_letters_total"] == run["sent"]
        assert run["settlements"] == run["settled_messages"] == run["sent"]
        assert run["graph_cancelled"] == run["meetings"]
        assert run["max_mailbox_in_flight"] <= 4
    departure, both = data["runs"]
    assert departure["sent"] == 21  # the date range and its 20 child requests
    assert both["sent"] == 1 + 10 + 30
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"fleet: design=organizer-sessions scenario=departure\+closure instances=flex\(max 2\) "
        r"drain_ratio=\d+\.\d\d "
        r"calls_per_cancel=\d+\.\d\d throttled_pct=\d+\.\d dead_letters=\d+ "
        r"max_mailbox_concurrency=\d+",
        last,
    )
    text = out.read_text()
    assert text.index("## 8. Fleet") < text.index("## What was changed")


# -- the instance's link to the queue ------------------------------------------------------------


def test_the_functions_sends_reach_the_queue_and_come_back_as_the_host_delivers_them() -> None:
    """A child request sent through the SDK's batch, and a copy scheduled for later, reach the
    queue stand-in; the child is delivered as the host's bytes decoded by the extension, body,
    ids and application properties intact, and the scheduled copy waits for its time."""
    from datetime import UTC, datetime, timedelta

    from azure.servicebus import ServiceBusMessage

    from bench.fleet.broker import Broker
    from bench.fleet.instance import BrokerLink, BrokerSender, received
    from cancel_handler.runtime import configure_process

    configure_process()  # as function_app's import does in each instance, before any message
    queue = Queue()
    with Broker(queue) as broker:
        broker.start_receiver("i0")
        sender = BrokerSender(BrokerLink(broker.base_url))
        batch = sender.create_message_batch()
        batch.add_message(
            ServiceBusMessage(
                b'{"userPrincipalName": "leaver@contoso.com", "eventId": "AAMk1="}',
                message_id="child-1",
                correlation_id="parent-1",
                application_properties={"parentMessageId": "parent-1"},
            )
        )
        sender.send_messages(batch)
        later = datetime.now(UTC) + timedelta(minutes=10)
        sender.schedule_messages([ServiceBusMessage(b"{}", message_id="retry-1")], later)
        assert (queue.unfinished(), queue.active()) == (2, 1)
        [fields] = queue.receive("i0", 5)
    message = received(fields)
    assert b"".join(message.body) == (
        b'{"userPrincipalName": "leaver@contoso.com", "eventId": "AAMk1="}'
    )
    assert (message.message_id, message.correlation_id, message.delivery_count) == (
        "child-1", "parent-1", 1
    )
    assert message.application_properties == {b"parentMessageId": b"parent-1"}
    assert str(message.lock_token) == fields["lock_token"]


def test_an_idle_session_is_released_to_another_receiver() -> None:
    """After the session idle timeout with nothing locked, another receiver may take it."""
    clock = Clock()
    queue = Queue(QueueRules(sessions=True, session_idle_timeout=5.0), clock=clock)
    queue.send(_message("a0", "adele"))
    queue.send(_message("a1", "adele"))
    [first] = queue.receive("i0", 1)
    assert queue.settle(first["lock_token"], "complete")
    clock.now += 4.9
    assert queue.receive("i1", 1) == []
    clock.now += 0.1
    assert [m["message_id"] for m in queue.receive("i1", 1)] == ["a1"]


# -- sessions and the designs ----------------------------------------------------------------


def test_session_settings_default_to_the_extensions_values() -> None:
    """The Service Bus extension's ServiceBusOptions: maxConcurrentSessions 8,
    maxConcurrentCallsPerSession 1, sessionIdleTimeout unset = the client's TryTimeout, 60 s."""
    rules = QueueRules()
    assert (rules.max_concurrent_sessions, rules.calls_per_session) == (8, 1)
    assert rules.session_idle_timeout == 60.0


def _child(upn: str, parent: str, index: int) -> dict:
    import base64

    body = json.dumps({"userPrincipalName": upn, "eventId": f"AAMk{index}="}).encode()
    return {
        "body": base64.b64encode(body).decode(),
        "message_id": f"{parent}-child-{index}",
        "application_properties": {"parentMessageId": parent},
    }


def test_the_sessions_design_spreads_an_organizers_children_over_four_keyed_sessions() -> None:
    """Child k gets SessionId = keyed hash of the organizer + '#(k mod 4)': four sessions per
    organizer, the same for any case of the address, never the address itself."""
    from bench.fleet.design import Design, organizer_key

    design = Design("sessions")
    ids = [design.route(_child("Adele@contoso.com", "p1", k), k)[0] for k in range(9)]
    key = organizer_key("adele@contoso.com")
    assert ids == [f"{key}#{k % 4}" for k in range(9)]
    assert all("adele" not in (i or "").lower() for i in ids)
    assert organizer_key("alex@contoso.com") != key
    assert Design("organizer-sessions").route(_child("adele@contoso.com", "p", 5), 5) == (
        key,
        None,
    )
    assert Design("organizer-sessions").calls_per_session == 4
    assert Design("sessions").calls_per_session == 1
    assert Design("paced", pace=0.5).route(_child("a@b.c", "p", 9), 9) == (None, 1.0)
    assert Design("today").route(_child("a@b.c", "p", 9), 9) == (None, None)
    with pytest.raises(ValueError, match="unknown design"):
        Design("coordinator")


def test_four_sessions_of_one_call_hold_an_organizer_to_four_across_receivers() -> None:
    """With one call per session, however many receivers ask, at most four of one
    organizer's children (its four sessions) are locked at once; another organizer's are not
    held back."""
    from bench.fleet.design import Design

    clock = Clock()
    queue = Queue(QueueRules(sessions=True, max_concurrent_sessions=16), clock=clock)
    design = Design("sessions")
    for k in range(40):
        message = _child("adele@contoso.com", "p1", k)
        design.route(message, k)
        queue.send(message)
    other = _child("alex@contoso.com", "p2", 0)
    design.route(other, 0)
    queue.send(other)
    taken = [m for r in range(10) for m in queue.receive(f"i{r}", 16)]
    adele = [m for m in taken if not m["message_id"].startswith("p2")]
    assert len(adele) == 4
    assert len({m["session_id"] for m in adele}) == 4
    assert [m["message_id"] for m in taken if m["message_id"].startswith("p2")] == ["p2-child-0"]
    assert queue.settle(adele[0]["lock_token"], "complete")
    again = [m for r in range(10) for m in queue.receive(f"i{r}", 16)]
    assert [m["session_id"] for m in again] == [adele[0]["session_id"]]


def test_calls_per_session_lets_one_receiver_run_that_many_of_a_session() -> None:
    """maxConcurrentCallsPerSession 4: the session's receiver gets 4 of its messages at once,
    never a 5th, and no other receiver gets any."""
    queue = Queue(QueueRules(sessions=True, calls_per_session=4), clock=Clock())
    for index in range(6):
        queue.send(_message(f"a{index}", "adele"))
    assert [m["message_id"] for m in queue.receive("i0", 16)] == ["a0", "a1", "a2", "a3"]
    assert queue.receive("i0", 16) == []
    assert queue.receive("i1", 16) == []


def test_an_instance_that_dies_holding_a_session_loses_nothing() -> None:
    """The receiver dies with two messages of its session locked: a lock duration later they
    come back (delivery count 2) to another receiver, in order, and every message of the
    session ends exactly once."""
    clock = Clock()
    rules = QueueRules(
        sessions=True, calls_per_session=2, lock_duration=60.0, max_auto_lock_renewal=300.0
    )
    queue = Queue(rules, clock=clock)
    for index in range(3):
        queue.send(_message(f"a{index}", "adele"))
    held = queue.receive("i0", 16)
    assert [m["message_id"] for m in held] == ["a0", "a1"]
    clock.now += 10.0
    queue.receiver_gone("i0")
    clock.now += 59.0
    assert queue.receive("i1", 16) == []  # the locks still stand
    clock.now += 1.0
    back = queue.receive("i1", 16)
    assert [(m["message_id"], m["delivery_count"]) for m in back] == [("a0", 2), ("a1", 2)]
    assert queue.counts["lock_lost"] == 2
    for message in back:
        assert queue.settle(message["lock_token"], "complete")
    [last] = queue.receive("i1", 16)
    assert queue.settle(last["lock_token"], "complete")
    assert not any(queue.settle(m["lock_token"], "complete") for m in held)  # the dead locks
    assert sorted(f.message_id for f in queue.finals) == ["a0", "a1", "a2"]
    assert queue.unfinished() == 0


def test_the_broker_routes_a_child_to_the_children_queue_by_the_design() -> None:
    """Design `sessions`: a child request sent to the cancel queue lands on the children queue
    with its SessionId; an upstream request (no parentMessageId) stays on the cancel queue;
    a child sent with a SessionId of its own keeps it."""
    from bench.fleet.broker import Broker
    from bench.fleet.design import CHILD_QUEUE_NAME, Design

    queue, children = Queue(), Queue(QueueRules(sessions=True))
    broker = Broker(queue, children=children, design=Design("sessions"))
    assert broker.send("meeting-cancellations", _child("adele@contoso.com", "p1", 0), None)
    assert broker.send("meeting-cancellations", _message("upstream"), None)
    own = {**_child("adele@contoso.com", "p1", 1), "session_id": "given#1"}
    assert broker.send(CHILD_QUEUE_NAME, own, None)
    assert (queue.unfinished(), children.unfinished()) == (1, 2)
    sessions = sorted(m["session_id"] for m in children.receive("i0", 16))
    assert sessions[1] == "given#1" and sessions[0].endswith("#0")


def test_the_fleets_session_settings_are_host_jsons() -> None:
    """The simulated session trigger runs with the host.json the app ships: maxConcurrentSessions,
    maxConcurrentCallsPerSession (the product's design: 4, Graph's concurrent requests per
    mailbox) and sessionIdleTimeout; the fleet runs the product's design by default."""
    from bench.fleet.design import PRODUCT_DESIGN, Design
    from bench.fleet.run import FleetParams

    service_bus = json.loads((ROOT / "host.json").read_text())["extensions"]["serviceBus"]
    params = FleetParams()
    assert params.design == PRODUCT_DESIGN == "organizer-sessions"
    assert params.max_concurrent_sessions == service_bus["maxConcurrentSessions"]
    assert Design(PRODUCT_DESIGN).calls_per_session == service_bus["maxConcurrentCallsPerSession"]
    assert service_bus["maxConcurrentCallsPerSession"] == 4
    hours, minutes, seconds = (float(x) for x in service_bus["sessionIdleTimeout"].split(":"))
    assert params.session_idle_timeout == hours * 3600 + minutes * 60 + seconds


def test_the_steady_rate_leaves_out_the_start_and_the_last_sessions_tail() -> None:
    """One message a second, then a straggler at 1,000 s: the drain says 0.1 a second, the
    steady rate 1; at time scale 2 (every time doubled) still 1 per unscaled second."""
    settled = [float(i) for i in range(99)] + [1000.0]
    assert steady_rate(settled, 1.0) == 1.0
    assert steady_rate([2 * t for t in settled], 2.0) == 1.0
    assert steady_rate([5.0] * 20, 1.0) == 0.0  # all at once: no rate to speak of
    assert steady_rate([1.0, 2.0], 1.0) == 0.0  # too few to tell


def test_a_settlement_hands_the_sessions_next_message_to_its_waiting_holder() -> None:
    """The holder of a session, waiting for its next message, gets it when the current one is
    settled, long before its wait ends; a receiver waiting for a free session gets nothing."""
    queue = Queue(QueueRules(sessions=True, session_idle_timeout=60.0))
    queue.send(_message("a0", "adele"))
    queue.send(_message("a1", "adele"))
    [first] = queue.receive("i0", 1)
    got: dict[str, list] = {}

    def waits(receiver: str, seconds: float) -> None:
        got[receiver] = queue.receive(receiver, 1, wait=seconds)

    holder = threading.Thread(target=waits, args=("i0", 60.0))
    other = threading.Thread(target=waits, args=("i1", 0.5))
    holder.start()
    other.start()
    other.join(10)
    assert got["i1"] == []
    assert holder.is_alive()  # adele's a1 waits for a0's settlement
    assert queue.settle(first["lock_token"], "complete")
    holder.join(30)
    assert not holder.is_alive()
    assert [m["message_id"] for m in got["i0"]] == ["a1"]
