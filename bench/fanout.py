"""Date-range fan-out: Graph list calls, send batches and time for a 500-meeting range, each
against the minimum its page and batch sizes allow. `python -m bench.fanout` runs it alone.

Runs in one process against the loopback Graph simulator and identity endpoint (with a fixed
latency per Graph call) and a sender that packs the SDK's real `ServiceBusMessageBatch` at
Service Bus Standard's 256 KB batch limit, so the counts are what production would send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench._common import CountingActions, received_message, spread

UPN = "leaver@contoso.com"
#: Service Bus Standard's largest message (and so batch): 256 KB.
STANDARD_BATCH_BYTES = 256 * 1024
#: Graph's default page size for calendarView when no `$top` is sent.
GRAPH_DEFAULT_PAGE = 10


class BatchSender:
    """The sender surface the fan-out uses, with real SDK batches of a fixed maximum size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.batches: list[int] = []  # messages per batch
        self.bytes: list[int] = []  # encoded size per batch

    def create_message_batch(self) -> Any:
        from azure.servicebus import ServiceBusMessageBatch

        return ServiceBusMessageBatch(self.max_bytes)

    def send_messages(self, batch: Any) -> None:
        self.batches.append(len(batch))
        self.bytes.append(batch.size_in_bytes)


def one_run(n: int, latency: float) -> dict[str, Any]:
    """Fan out one range of `n` meetings; counts, sizes and wall time."""
    from cancel_handler.devtools.graph_simulator import GraphSimulator, Meeting
    from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority
    from cancel_handler.graph.calendar_view import PAGE_SIZE
    from cancel_handler.runtime import Processor
    from cancel_handler.servicebus.senders import SenderPool
    from cancel_handler.settings import load_settings

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    authority = TokenAuthority()
    with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
        saved = {name: os.environ.get(name) for name in identity.environment}
        os.environ.update(identity.environment)
        try:
            for i in range(n):
                at = start + timedelta(hours=i)
                meeting = Meeting(f"AAMkLeave{i:05}=", at, at + timedelta(minutes=30))
                graph.state.add_meeting(UPN, meeting)
            sender = BatchSender(STANDARD_BATCH_BYTES)
            env = {"GRAPH_BASE_URL": graph.graph_base_url, "RANGE_MAX_EVENTS": str(n)}
            processor = Processor(load_settings(env), fan_out_senders=SenderPool(lambda _: sender))
            body = json.dumps({
                "userPrincipalName": UPN,
                "startDateTime": start.isoformat(),
                "endDateTime": (start + timedelta(days=max(1, n // 24 + 2))).isoformat(),
                "comment": "On leave from tomorrow; please rebook with the team.",
            }).encode()
            actions = CountingActions()

            async def go() -> Any:
                await processor.process(received_message(body), actions)  # warm: token, pool
                sender.batches.clear()
                sender.bytes.clear()
                graph.state.calls.clear()
                graph.state.latency = latency
                t = time.perf_counter()
                outcome = await processor.process(received_message(body), actions)
                elapsed = time.perf_counter() - t
                await processor.aclose()
                return outcome, elapsed

            outcome, elapsed = asyncio.run(go())
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    report = outcome.range_report
    list_calls = sum(1 for c in graph.state.calls if c.method == "GET")
    min_calls = math.ceil(n / PAGE_SIZE)
    min_batches = math.ceil(sum(sender.bytes) / STANDARD_BATCH_BYTES)
    return {
        "reason": outcome.settlement.reason.value,
        "selected": len(report.selection.selected),
        "children": len(report.child_message_ids),
        "list_calls": list_calls,
        "min_list_calls": min_calls,
        "list_calls_at_default_page": math.ceil(n / GRAPH_DEFAULT_PAGE),
        "batches": len(sender.batches),
        "min_batches": min_batches,
        "child_bytes": sum(sender.bytes),
        "elapsed_s": elapsed,
        "min_elapsed_s": min_calls * latency,
    }


def fan_out(repeats: int, n: int, latency: float = 0.05) -> dict[str, Any]:
    """`repeats` runs of one `n`-meeting range; the counts must not vary, the time may."""
    runs = [one_run(n, latency) for _ in range(repeats)]
    return {
        "n": n,
        "latency": latency,
        "repeats": repeats,
        "runs": runs,
        "elapsed_s": spread([r["elapsed_s"] for r in runs]),
        "time_ratio": spread([r["elapsed_s"] / r["min_elapsed_s"] for r in runs]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(fan_out(args.repeats, args.n), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
