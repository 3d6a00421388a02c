"""Run fleet scenarios: the queue stand-in and scaler here, Graph in its own process, and one
process per Function App instance (`bench/fleet/instance.py`).

Durations (Graph latency and `Retry-After`, Graph's windows, lock duration, retry budget,
scaler timings) are multiplied by `time_scale` so that a run takes a fraction of the time it
would in Azure; every figure is reported in unscaled seconds. Counts are not scaled.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import PRODUCT_PYTHON, ROOT, SimProcess, host_json_concurrency
from bench.fleet.broker import Broker
from bench.fleet.design import CHILD_QUEUE_NAME, PRODUCT_DESIGN, Design
from bench.fleet.queue import Queue, QueueRules
from bench.fleet.scaler import FixedScaler, FlexScaler, next_count
from cancel_handler.devtools.graph_limits import MAILBOX_CONCURRENCY, GraphLimitRules
from cancel_handler.graph.calendar_view import PAGE_SIZE

LEAVER = "leaver@contoso.com"
QUEUE_NAME = "meeting-cancellations"
#: Real seconds between two looks of the control loop at the queue and the scaler.
POLL = 0.02
#: Share of the machine's CPUs, or of one core for one process, above which a run measured the
#: machine more than the design.
SIMULATION_BOUND = 0.85


@dataclass(frozen=True)
class FleetParams:
    """Everything a run depends on, in unscaled seconds (see the modules for sources)."""

    time_scale: float = 0.25
    #: Graph latency: log-normal, median 300 ms; sigma 0.6 puts p95 near 0.8 s, p99 near 1.2 s.
    latency_median: float = 0.3
    latency_sigma: float = 0.6
    seed: int = 17
    graph: GraphLimitRules = field(default_factory=GraphLimitRules)
    queue: QueueRules = field(default_factory=QueueRules)
    #: App settings as infra sets them (CANCEL_RETRY_BUDGET_SECONDS, GRAPH_TIMEOUT_SECONDS,
    #: MAX_DELIVERY_COUNT = the queue's maxDeliveryCount, DELAYED_RETRY_MAX_COUNT).
    retry_budget: float = 60.0
    graph_timeout: float = 30.0
    delayed_retry_max_count: int = 0
    range_max_events: int = 800
    #: The most simulated seconds one run may last; it stops there and says so.
    cap: float = 1200.0
    #: How the children of a date range are queued and consumed (`bench/fleet/design.py`): by
    #: default as deployed (CHILD_QUEUE_NAME, one keyed session per organizer, 4 calls in it);
    #: `today` gives the before figures.
    design: str = "organizer-sessions"
    #: `paced`: seconds between two groups of 4 children (the mean Graph latency).
    pace: float = 0.36
    #: The session trigger's host.json settings: `maxConcurrentSessions` per instance and
    #: `sessionIdleTimeout` (seconds); a test keeps them equal to host.json's.
    max_concurrent_sessions: int = 16
    session_idle_timeout: float = 2.0

    def children_rules(self) -> QueueRules:
        """The session-enabled children queue: the cancel queue's settings, with sessions and
        the session trigger's host.json settings for this design."""
        return replace(
            self.queue,
            sessions=True,
            max_concurrent_sessions=self.max_concurrent_sessions,
            calls_per_session=Design(self.design).calls_per_session,
            session_idle_timeout=self.session_idle_timeout,
        )


@dataclass(frozen=True)
class Scenario:
    """What is sent at once: one organizer's departure (`meetings` via one date range) and
    `organizers` single-meeting requests for as many organizers (a building closure)."""

    name: str
    scaler: FixedScaler | FlexScaler
    meetings: int = 0
    organizers: int = 0
    #: This run's time scale (None: the parameters'); slower where the fleet asks for more
    #: than the machine can simulate at the default.
    time_scale: float | None = None
    #: `leaves` organizers each sending one date range of `leave_meetings` meetings.
    leaves: int = 0
    leave_meetings: int = 0
    #: Simulated seconds after the start at which the instance holding the most messages dies
    #: (its process is killed).
    kill_at: float | None = None


def app_settings(params: FleetParams, sim: SimProcess) -> dict[str, str]:
    """The instances' app settings, durations scaled."""
    s = params.time_scale
    return {
        "CANCEL_QUEUE_NAME": QUEUE_NAME,
        "GRAPH_BASE_URL": sim.graph_base_url,
        **sim.identity_environment,
        "CANCEL_RETRY_BUDGET_SECONDS": f"{params.retry_budget * s:g}",
        "GRAPH_TIMEOUT_SECONDS": f"{params.graph_timeout * s:g}",
        "GRAPH_MAILBOX_CONCURRENCY": str(MAILBOX_CONCURRENCY),
        "MAX_DELIVERY_COUNT": str(params.queue.max_delivery_count),
        "DELAYED_RETRY_MAX_COUNT": str(params.delayed_retry_max_count),
        "RANGE_MAX_EVENTS": str(params.range_max_events),
        # The product's own design: the function sends children to the children queue with
        # their SessionIds (its sends go to the broker; the namespace is never contacted).
        **(
            {
                "CHILD_QUEUE_NAME": CHILD_QUEUE_NAME,
                "CHILD_SESSION_KEY": "fleet-simulation-key",
                "ServiceBusConnection__fullyQualifiedNamespace": "fleet.servicebus.windows.net",
            }
            if params.design == PRODUCT_DESIGN
            else {}
        ),
    }


def listeners(params: FleetParams) -> list[dict[str, Any]]:
    """The triggers each instance runs: the cancel queue's, and the children queue's for a
    session design (`maxConcurrentSessions` * `maxConcurrentCallsPerSession` slots)."""
    calls = host_json_concurrency()
    queues: list[dict[str, Any]] = [{"name": QUEUE_NAME, "slots": calls, "sessions": False}]
    if Design(params.design).uses_sessions:
        rules = params.children_rules()
        slots = rules.max_concurrent_sessions * rules.calls_per_session
        queues.append({"name": CHILD_QUEUE_NAME, "slots": slots, "sessions": True})
    return queues


class Instances:
    """The instance processes of one run, started before the clock and stopped after it."""

    def __init__(
        self,
        count: int,
        broker_url: str,
        settings: dict[str, str],
        cap: float,
        queues: list[dict[str, Any]] | None = None,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ServiceBusConnection")}
        env["PYTHONPATH"] = str(ROOT)
        self.processes: list[subprocess.Popen] = []
        for index in range(count):
            config = {
                "receiver": f"instance-{index}",
                "broker_url": broker_url,
                "environment": settings,
                "max_concurrent_calls": host_json_concurrency(),
                "queues": queues,
                "deadline": time.time() + cap + 120,
            }
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - our interpreter, our module
                    [str(PRODUCT_PYTHON), "-m", "bench.fleet.instance", json.dumps(config)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        for process in self.processes:
            assert process.stdout is not None
            if not process.stdout.readline():
                raise RuntimeError("an instance process failed to start")

    def kill(self, index: int) -> None:
        """End instance `index` at once, as a crashed host would end (nothing settled)."""
        self.processes[index].kill()
        self.processes[index].wait()

    def stop(self) -> None:
        """Close their input (they exit), wait a little, then end those still running."""
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def tagger(message: dict[str, Any]) -> str:
    """Which part of a scenario a message belongs to (by its organizer)."""
    import base64

    try:
        upn = json.loads(base64.b64decode(message["body"]))["userPrincipalName"]
    except (KeyError, ValueError, TypeError):
        return "other"
    if upn == LEAVER:
        return "departure"
    return "leave" if upn.startswith("leave-") else "closure"


def wire_body(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """A message as an upstream system sends it, in the broker's form."""
    import base64

    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "message_id": message_id,
        "content_type": "application/json",
        "application_properties": {},
    }


def first_messages(scenario: Scenario) -> list[dict[str, Any]]:
    """The requests sent at the start: the departure's date range, the closure's cancels."""
    messages = []
    start = _tomorrow()
    if scenario.meetings:
        end = start + timedelta(hours=scenario.meetings + 1)
        body = {
            "userPrincipalName": LEAVER,
            "startDateTime": start.isoformat(),
            "endDateTime": end.isoformat(),
            "comment": "Leaving the company; please rebook with the team.",
        }
        messages.append(wire_body(body, "departure-range"))
    for index in range(scenario.leaves):
        body = {
            "userPrincipalName": leave_organizer(index),
            "startDateTime": start.isoformat(),
            "endDateTime": (start + timedelta(hours=scenario.leave_meetings + 1)).isoformat(),
            "comment": "On leave; please rebook.",
        }
        messages.append(wire_body(body, f"leave-range-{index:05}"))
    for index in range(scenario.organizers):
        body = {
            "userPrincipalName": f"organizer-{index:05}@contoso.com",
            "eventId": f"AAMkClosure{index:05}=",
            "comment": "Building closed; please rebook.",
        }
        messages.append(wire_body(body, f"closure-{index:05}"))
    return messages


def leave_organizer(index: int) -> str:
    """The organizer of the `index`-th leave."""
    return f"leave-{index:05}@contoso.com"


def minimum_seconds(scenario: Scenario, params: FleetParams, max_instances: int) -> float:
    """The drain time Graph's limits allow at best, at median latency: one organizer's meetings
    4 at a time after its calendar pages, and every request spread over all instances'
    `maxConcurrentCalls`."""
    median = params.latency_median

    def one_organizer(meetings: int) -> float:
        pages = math.ceil(meetings / PAGE_SIZE)
        return pages * median + meetings * median / MAILBOX_CONCURRENCY

    organizer = 0.0
    if scenario.meetings:
        organizer = one_organizer(scenario.meetings)
    elif scenario.leaves:
        organizer = one_organizer(scenario.leave_meetings)
    elif scenario.organizers:
        organizer = median
    slots = max_instances * host_json_concurrency()
    requests = scenario.meetings + scenario.organizers + scenario.leaves * scenario.leave_meetings
    fleet = requests * median / slots
    return max(organizer, fleet)


def run_scenario(scenario: Scenario, params: FleetParams) -> dict[str, Any]:
    """One run of `scenario`; its figures (seconds unscaled)."""
    s = params.time_scale
    scaler = scenario.scaler
    pool = scaler.count if isinstance(scaler, FixedScaler) else scaler.maximum
    cpu_before = _cpu()
    wall_started = time.perf_counter()
    with SimProcess() as sim:
        sim.command(
            "configure",
            graph_limits={**asdict(params.graph), "scale": s},
            latency_lognormal={
                "median": params.latency_median * s,
                "sigma": params.latency_sigma,
                "seed": params.seed,
            },
        )
        calendars = [(LEAVER, scenario.meetings)] if scenario.meetings else []
        calendars += [(leave_organizer(i), scenario.leave_meetings) for i in range(scenario.leaves)]
        for mailbox, count in calendars:
            sim.command(
                "add_meetings",
                mailbox=mailbox,
                count=count,
                start=(_tomorrow() + timedelta(minutes=30)).isoformat(),
                every_minutes=60,
            )
        design = Design(params.design, pace=params.pace * s)
        queue = Queue(params.queue.scaled(s))
        children = Queue(params.children_rules().scaled(s)) if design.uses_sessions else None
        broker = Broker(queue, tagger, children=children, design=design)
        with broker:
            instances = Instances(
                pool,
                broker.base_url,
                app_settings(params, sim),
                params.cap * s,
                listeners(params),
            )
            pids = [os.getpid(), sim.pid, *(p.pid for p in instances.processes)]
            try:
                busy_before, drive_started = _process_cpu(pids), time.perf_counter()
                timeline = _drive(scenario, params, broker, instances)
                drive_wall = time.perf_counter() - drive_started
                used = {
                    pid: cpu - busy_before.get(pid, 0.0) for pid, cpu in _process_cpu(pids).items()
                }
                timeline["drive_busy"] = sum(used.values()) / (drive_wall * (os.cpu_count() or 1))
                timeline["busiest_process"] = max(used.values()) / drive_wall
            finally:
                broker.stopping.set()
                instances.stop()
        stats = sim.command("stats")
    cpu = _cpu() - cpu_before
    wall = time.perf_counter() - wall_started
    queues = [queue] if children is None else [queue, children]
    return _figures(scenario, params, queues, stats, timeline, cpu, wall)


def _drive(
    scenario: Scenario, params: FleetParams, broker: Broker, instances: Instances
) -> dict[str, Any]:
    """Send the first messages, start instances as the scaler says, kill one when the scenario
    says, wait for the queues to drain (or the cap). Times in the queue's clock."""
    s, scaler = params.time_scale, scenario.scaler
    queue, children = broker.queue, broker.children
    queues = [queue] if children is None else [queue, children]
    killed: str | bool = False
    planned = 0
    starts: list[tuple[float, int]] = []
    started_at = queue.clock()
    if isinstance(scaler, FixedScaler):
        for index in range(scaler.count):
            broker.start_receiver(f"instance-{index}")
        planned = scaler.count
    for message in first_messages(scenario):
        queue.send(message, tag=tagger(message))
    if isinstance(scaler, FlexScaler):
        for index in range(scaler.initial):
            broker.start_receiver(f"instance-{index}")
        planned = scaler.initial
    next_decision, running, timed_out = started_at, planned, False
    while True:
        now = queue.clock()
        for q in queues:
            q.tick()
        if scenario.kill_at is not None and not killed and (
            now - started_at >= scenario.kill_at * s
        ):
            # The instance holding the most locks (and so, with sessions, sessions) dies.
            held: Counter[str] = Counter()
            for q in queues:
                held.update(q.holders())
            victim = held.most_common(1)[0][0] if held else "instance-0"
            instances.kill(int(victim.rsplit("-", 1)[1]))
            for q in queues:
                q.receiver_gone(victim)
            killed = victim
        if isinstance(scaler, FlexScaler):
            while starts and starts[0][0] <= now:
                _, index = starts.pop(0)
                broker.start_receiver(f"instance-{index}")
                running += 1
            if now >= next_decision:
                # Target executions per instance: maxConcurrentCalls (16) and, for the session
                # trigger, maxConcurrentSessions (16 here): one sum over both queues.
                length = sum(q.active() for q in queues)
                wanted = next_count(planned, length, scaler.target_per_instance, scaler.maximum)
                starts.extend((now + scaler.start_delay * s, i) for i in range(planned, wanted))
                planned = wanted
                next_decision = now + scaler.interval * s
        if sum(q.unfinished() for q in queues) == 0:
            break
        if now - started_at > params.cap * s:
            timed_out = True
            break
        time.sleep(POLL)
    return {
        "started_at": started_at,
        "instances": running,
        "timed_out": timed_out,
        "killed": killed,
    }


def _figures(
    scenario: Scenario,
    params: FleetParams,
    queues: list[Queue],
    stats: dict[str, Any],
    timeline: dict[str, Any],
    cpu: float,
    wall: float,
) -> dict[str, Any]:
    s = params.time_scale
    finals = [f for q in queues for f in q.finals]
    counts: Counter[str] = Counter()
    for q in queues:
        counts.update(q.counts)
    started = timeline["started_at"]
    drain = (max((f.settled_at for f in finals), default=started) - started) / s
    max_instances = (
        scenario.scaler.count
        if isinstance(scenario.scaler, FixedScaler)
        else scenario.scaler.maximum
    )
    minimum = minimum_seconds(scenario, params, max_instances)
    statuses = stats["statuses"]
    calls, cancelled, throttled = stats["calls"], statuses.get("202", 0), statuses.get("429", 0)
    dead: dict[str, int] = {}
    for final in finals:
        if final.outcome == "deadletter":
            dead[final.reason or ""] = dead.get(final.reason or "", 0) + 1
    limits = stats["limits"] or {}
    parts = {}
    for tag in sorted({f.tag or "" for f in finals}):
        mine = [f for f in finals if (f.tag or "") == tag]
        waits = [(f.settled_at - f.enqueued_at) / s for f in mine]
        parts[tag] = {
            "messages": len(mine),
            "completed": sum(1 for f in mine if f.outcome == "complete"),
            "dead_letters": sum(1 for f in mine if f.outcome == "deadletter"),
            "p50_s": _percentile(waits, 50),
            "p95_s": _percentile(waits, 95),
            "drain_s": (max(f.settled_at for f in mine) - started) / s,
        }
    waits = [(f.settled_at - f.enqueued_at) / s for f in finals]
    return {
        "scenario": scenario.name,
        "design": params.design,
        "time_scale": s,
        "instances": scenario.scaler.label,
        "instances_started": timeline["instances"],
        "meetings": (
            scenario.meetings + scenario.organizers + scenario.leaves * scenario.leave_meetings
        ),
        "sent": counts["sent"],
        "settled_messages": len({f.message_id for f in finals}),
        "settlements": len(finals),
        "completed": sum(1 for f in finals if f.outcome == "complete"),
        "dead_letters": dead,
        "dead_letters_total": sum(dead.values()),
        "unfinished": sum(q.unfinished() for q in queues),
        "give_backs": counts["abandon"],
        "lock_lost": counts["lock_lost"],
        "duplicates_dropped": counts["duplicates_dropped"],
        "deliveries": counts["deliveries"],
        "killed": timeline["killed"],
        "throughput": cancelled / drain if drain else 0.0,
        "steady_throughput": steady_rate(
            [f.settled_at for f in finals if f.outcome == "complete"], s
        ),
        "drain_s": drain,
        "minimum_s": minimum,
        "drain_ratio": drain / minimum,
        "graph_calls": calls,
        "graph_cancelled": cancelled,
        "graph_throttled": throttled,
        "graph_refusals": limits.get("refused", {}),
        "calls_per_cancel": calls / cancelled if cancelled else float("inf"),
        "throttled_pct": 100.0 * throttled / calls if calls else 0.0,
        "max_mailbox_concurrency": limits.get("max_in_hand", 0),
        "max_mailbox_in_flight": limits.get("max_in_flight", 0),
        "p50_s": _percentile(waits, 50),
        "p95_s": _percentile(waits, 95),
        "parts": parts,
        "timed_out": timeline["timed_out"],
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_busy": timeline["drive_busy"],
        "busiest_process": timeline["busiest_process"],
        "simulation_bound": max(timeline["drive_busy"], timeline["busiest_process"])
        >= SIMULATION_BOUND,
    }


def fleet_line(result: dict[str, Any]) -> str:
    """The one-line summary of a run."""
    return (
        f"fleet: design={result['design']} scenario={result['scenario']} "
        f"instances={result['instances']} "
        f"drain_ratio={result['drain_ratio']:.2f} "
        f"calls_per_cancel={result['calls_per_cancel']:.2f} "
        f"throttled_pct={result['throttled_pct']:.1f} "
        f"dead_letters={result['dead_letters_total']} "
        f"max_mailbox_concurrency={result['max_mailbox_concurrency']}"
    )


def steady_rate(settled_at: list[float], time_scale: float) -> float:
    """Messages completed per unscaled second between the 10th and the 90th percentile of their
    settlement times: the fleet's rate once it runs, without the start (sessions accepted,
    calendars listed) and the end (the last session's tail: the slowest of many sums of
    log-normal latencies, longer the more sessions run, whatever the instances)."""
    if len(settled_at) < 10:
        return 0.0
    ordered = sorted(settled_at)
    first, last = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    if last <= first:
        return 0.0
    return ((len(ordered) * 9) // 10 - len(ordered) // 10) / ((last - first) / time_scale)


def _percentile(values: list[float], p: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _process_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds each running process of `pids` used so far (Linux /proc; none elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def _cpu() -> float:
    """CPU seconds of this process and its ended children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _tomorrow() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
