"""The fleet section of docs/performance.md, rendered from `bench.fleet`'s results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- fleet:begin -->", "<!-- fleet:end -->"
#: The section goes before this heading when the document has no fleet section yet.
BEFORE = "## What was changed because of these benchmarks"

SOURCES = """\
What each stand-in enforces, and where it comes from:

- Graph (`cancel_handler/devtools/graph_limits.py`): 4 concurrent requests and 10,000 requests per
  10 minutes per app and mailbox ([Outlook service limits](https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits)),
  130,000 requests per 10 s per app ([global limits](https://learn.microsoft.com/graph/throttling-limits#global-limits)),
  counted across every instance; the excess is answered 429 `ApplicationThrottled` with
  `Retry-After` ([throttling](https://learn.microsoft.com/graph/throttling)); refused requests
  count toward the windows ("all requests accrue against your usage limits", same page).
- Service Bus (`bench/fleet/queue.py`): peek-lock with the queue's lock duration
  ([locks and settlement](https://learn.microsoft.com/azure/service-bus-messaging/message-transfers-locks-settlement#peeklock));
  delivery count raised on abandon and on lock expiry, dead-letter `MaxDeliveryCountExceeded`
  beyond `maxDeliveryCount` ([dead-letter queues](https://learn.microsoft.com/azure/service-bus-messaging/service-bus-dead-letter-queues#maximum-delivery-count));
  scheduled enqueue ([message sequencing](https://learn.microsoft.com/azure/service-bus-messaging/message-sequencing#scheduled-messages));
  duplicate detection, 10 minutes ([duplicate detection](https://learn.microsoft.com/azure/service-bus-messaging/duplicate-detection));
  the host's lock renewal up to `maxAutoLockRenewalDuration`; sessions: one receiver per session
  at a time, a session-enabled queue refuses a message without SessionId
  ([sessions](https://learn.microsoft.com/azure/service-bus-messaging/message-sessions)), the
  session trigger's `maxConcurrentSessions` (default 8), `maxConcurrentCallsPerSession` (default
  1) and `sessionIdleTimeout` (default: the client's `TryTimeout`, 60 s) as the Service Bus
  extension reads them (`ServiceBusOptions.cs` in Azure/azure-sdk-for-net,
  `sdk/servicebus/Microsoft.Azure.WebJobs.Extensions.ServiceBus/src/Config/`); a dead
  instance's message and session locks expire a lock duration after it stopped renewing them.
- Scaler (`bench/fleet/scaler.py`): fixed N, or Flex Consumption's target-based rule, desired =
  active messages ÷ `maxConcurrentCalls` (16; for the session trigger `maxConcurrentSessions`,
  16 here, both queues' messages summed), at most 4 added per decision, capped at
  `maximumInstanceCount` ([target-based scaling](https://learn.microsoft.com/azure/azure-functions/functions-target-based-scaling)).
- Each instance (`bench/fleet/instance.py`) is its own process running the real `function_app`
  (own event loop, per-mailbox limiter, token cache, HTTP client) with the real
  `ServiceBusMessageActions` over gRPC; messages arrive in the host's byte layout, decoded by the
  binding extension; the function's child requests go back to the queue stand-in.

Unknown, so parameters (values used in this run above): the `Retry-After` Graph sends on a
concurrency refusal and on a full window (here: until the window admits again), how long a
refusal takes, the order Graph checks its limits in, sliding vs. fixed windows, how often the
scale controller decides and how long a new instance takes to receive, scale-in (not modelled),
the order a queue hands out available messages (by sequence number), which instance Service
Bus gives a free session to (here: the first to ask with a free slot).
"""


DESIGN_TEXT = {
    "today": "children go to the cancel queue; each instance holds one mailbox to 4 calls.",
    "sessions": (
        "children go to a session-enabled children queue, SessionId = a keyed hash of the "
        "organizer + `#k` (k = child index mod 4), one call per session "
        "(`maxConcurrentCallsPerSession` 1), `maxConcurrentSessions` 16 per instance."
    ),
    "organizer-sessions": (
        "children go to a session-enabled children queue, SessionId = a keyed hash of the "
        "organizer, 4 calls per session (`maxConcurrentCallsPerSession` 4)."
    ),
    "paced": "children stay on the cancel queue, 4 scheduled per mean Graph latency.",
}


def _reasons(dead: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(dead.items())) or "0"


def render_section(fleet: dict[str, Any]) -> str:
    """The section's Markdown, between its markers."""
    p = fleet["params"]
    rows = []
    for r in fleet["runs"]:
        rows.append(
            f"| {r['scenario']} | {r['instances']} ({r['instances_started']}) "
            f"| {r['time_scale']:g} | {r['graph_cancelled']} / {r['meetings']} "
            f"| {r['drain_s']:.1f} / {r['minimum_s']:.1f} = **{r['drain_ratio']:.2f}**"
            f"{' (cut at the cap)' if r['timed_out'] else ''} "
            f"| {r['calls_per_cancel']:.2f} | {r['graph_throttled']} ({r['throttled_pct']:.1f} %) "
            f"| {r['give_backs']} | {_reasons(r['dead_letters'])} "
            f"| {r['max_mailbox_concurrency']} | {r['p50_s']:.1f} / {r['p95_s']:.1f} "
            f"| {r['cpu_busy'] * 100:.0f} % / {r['busiest_process'] * 100:.0f} %"
            f"{' **bound**' if r['simulation_bound'] else ''} |"
        )
    parts = []
    for r in fleet["runs"]:
        if len(r["parts"]) > 1:
            for tag, part in r["parts"].items():
                parts.append(
                    f"- {r['scenario']}, {tag}: {part['messages']} messages, "
                    f"{part['completed']} completed, {part['dead_letters']} dead-lettered, "
                    f"drained at {part['drain_s']:.1f} s, enqueue-to-settlement p50 "
                    f"{part['p50_s']:.1f} s, p95 {part['p95_s']:.1f} s"
                )
    throughput = []
    for r in fleet["runs"]:
        if r["scenario"] == "leaves" or r.get("killed"):
            throughput.append(
                f"- {r['scenario']} on {r['instances']}: {r['graph_cancelled']} cancelled in "
                f"{r['drain_s']:.1f} s, {r['throughput']:.1f} cancels/s over the drain, "
                f"{r.get('steady_throughput', 0.0):.1f} messages/s completed from the 10th to "
                f"the 90th percentile of settlements; {r['sent']} messages "
                f"sent, {r['settled_messages']} ended ({r['settlements']} settlements), "
                f"{r['lock_lost']} lock(s) expired"
            )
    lines = "\n".join(r["line"] for r in fleet["runs"])
    quick = " (QUICK SMOKE RUN: sizes too small to judge)" if fleet["quick"] else ""
    g, q = p["graph"], p["queue"]
    template = (Path(__file__).parent / "section_template.md").read_text("utf-8")
    return template.format(
        begin=BEGIN,
        end=END,
        quick=quick,
        total_s=fleet["total_s"],
        nproc=fleet["nproc"],
        latency_ms=p["latency_median"] * 1000,
        sigma=p["latency_sigma"],
        p95_ms=p["latency_p95"] * 1000,
        retry_after=g["concurrency_retry_after"],
        refusal_ms=g["refusal_latency"] * 1000,
        lock=q["lock_duration"],
        max_delivery=q["max_delivery_count"],
        renewal=q["max_auto_lock_renewal"],
        duplicates=q["duplicate_window"],
        budget=p["retry_budget"],
        delayed=p["delayed_retry_max_count"],
        range_max=p["range_max_events"],
        calls=fleet["max_concurrent_calls"],
        flex_initial=fleet["flex"]["initial"],
        flex_interval=fleet["flex"]["interval"],
        flex_delay=fleet["flex"]["start_delay"],
        flex_max=fleet["flex"]["maximum"],
        meetings=fleet["departure_meetings"],
        organizers=fleet["closure_organizers"],
        mean_ratio=p["latency_mean"] / p["latency_median"],
        rows="\n".join(rows),
        parts="\n".join(parts),
        lines=lines,
        sources=SOURCES,
        design=fleet.get("design", "today"),
        design_text=DESIGN_TEXT.get(fleet.get("design", "today"), ""),
        throughput="\n".join(throughput),
    )


def insert_section(text: str, section: str) -> str:
    """`text` with `section` in place of an earlier one, else before the "What was changed"
    heading, else at the end."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n?", re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: section, text, count=1)
    if BEFORE in text:
        return text.replace(BEFORE, section + "\n" + BEFORE, 1)
    return text.rstrip("\n") + "\n\n" + section


def write_section(section: str, path: Path) -> None:
    """Put `section` into the document at `path` (see `insert_section`)."""
    text = path.read_text("utf-8") if path.exists() else ""
    path.write_text(insert_section(text, section), encoding="utf-8")
