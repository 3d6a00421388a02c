"""One benchmark client run, in a fresh process: `python bench/client.py '<json args>'`.

Kinds: `ours` (the product's Processor: real messages, managed-identity credential against the
loopback identity endpoint, settlement through a counting double), `bare` (a bare
`httpx.AsyncClient` POST loop) and `msgraph` (the msgraph-sdk cancel call; run it with
.venv-bench). All drive `concurrency` workers over `warmup` unmeasured then `n` measured messages
against the simulator at `graph_base_url`, and print one JSON line with CPU seconds (this process,
all threads), wall seconds, statuses/settlements and RSS samples.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench._common import CountingActions, cancel_body, received_message

COMMENT = "Cancelled by HR offboarding."


def rss_kib() -> int:
    """Resident set size now (VmRSS), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mailbox(args: dict[str, Any], i: int) -> str:
    """Round-robin over `mailboxes` organizers."""
    return f"organizer{i % args['mailboxes']:05d}@contoso.com"


async def drive(
    n: int, concurrency: int, start: int, one: Callable[[int], Awaitable[None]]
) -> None:
    """`concurrency` workers take message numbers start..start+n-1 in order, like the host's
    `maxConcurrentCalls` invocations pulling from the queue."""
    numbers = iter(range(start, start + n))

    async def worker() -> None:
        for i in numbers:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def ours(args: dict[str, Any]) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    from cancel_handler.runtime import Processor
    from cancel_handler.settings import load_settings

    os.environ.update(args["identity_environment"])
    settings = {"GRAPH_BASE_URL": args["graph_base_url"], **args.get("settings", {})}
    processor = Processor(load_settings(settings))
    actions = CountingActions()
    prefix = args["prefix"]
    prebuilt: dict[int, Any] = {}
    if not args.get("lazy_messages"):
        total = args["warmup"] + args["n"]
        for i in range(total):
            prebuilt[i] = received_message(cancel_body(mailbox(args, i), f"{prefix}-{i}"))

    async def one(i: int) -> None:
        message = prebuilt.pop(i, None) or received_message(
            cancel_body(mailbox(args, i), f"{prefix}-{i}")
        )
        await processor.process(message, actions)

    def report() -> dict:
        return {"settled": actions.counts, "deadletter_reasons": actions.reasons}

    return one, processor.aclose, report


async def bare(args: dict[str, Any]) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    import httpx

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
    )
    headers = {"Authorization": f"Bearer {args['token']}"}
    base, prefix = args["graph_base_url"], args["prefix"]
    statuses: Counter[int] = Counter()

    async def one(i: int) -> None:
        url = f"{base}/users/{mailbox(args, i)}/events/{prefix}-{i}/cancel"
        response = await client.post(url, json={"comment": COMMENT}, headers=headers)
        statuses[response.status_code] += 1

    def report() -> dict:
        return {"statuses": {str(k): v for k, v in statuses.items()}}

    return one, client.aclose, report


async def msgraph(args: dict[str, Any]) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    from azure.core.credentials import AccessToken
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import (
        CancelPostRequestBody,
    )

    class StaticCredential:
        """An async token credential that always returns the same token."""

        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(args["token"], args["expires_on"])

        async def close(self) -> None:
            pass

    auth = AzureIdentityAuthenticationProvider(
        StaticCredential(),
        scopes=["https://graph.microsoft.com/.default"],
        allowed_hosts=["127.0.0.1"],
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = args["graph_base_url"]
    client = GraphServiceClient(request_adapter=adapter)
    prefix = args["prefix"]
    failures: Counter[str] = Counter()

    async def one(i: int) -> None:
        body = CancelPostRequestBody(comment=COMMENT)
        try:
            await (
                client.users.by_user_id(mailbox(args, i))
                .events.by_event_id(f"{prefix}-{i}")
                .cancel.post(body)
            )
        except Exception as exc:
            failures[type(exc).__name__] += 1

    async def close() -> None:
        await adapter._http_client.aclose()

    def report() -> dict:
        return {"failures": dict(failures)}

    return one, close, report


#: Called once the measured messages are processed, before the CPU is read (telemetry: export
#: what the batch processor still holds, so its CPU is counted).
FLUSH: list[Callable[[], Any]] = []


async def ours_otel(
    args: dict[str, Any], envelopes: bool = True
) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    """`ours` with telemetry on as the worker turns it on in Azure: OpenTelemetry SDK providers
    installed before the processor is built, spans batched (the distro's BatchSpanProcessor) to
    an exporter that converts each to its Azure Monitor envelope and serializes it, as the
    distro's exporter does before sending (no network here), metric points aggregated. Without
    `envelopes` the exporter drops the spans: the function's own share of the cost."""
    from azure.monitor.opentelemetry.exporter.export.trace._exporter import (
        _convert_span_to_envelope,
    )
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    class EnvelopeExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            for span in spans if envelopes else ():
                json.dumps(_convert_span_to_envelope(span).as_dict())
            return SpanExportResult.SUCCESS

    # The sampler infra/app/function.bicep sets (OTEL_TRACES_SAMPLER=always_on).
    tracer_provider = TracerProvider(sampler=ALWAYS_ON)
    tracer_provider.add_span_processor(BatchSpanProcessor(EnvelopeExporter()))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    # The exemplar filter infra/app/function.bicep sets (OTEL_METRICS_EXEMPLAR_FILTER=always_off).
    metrics.set_meter_provider(
        MeterProvider(metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter())
    )
    FLUSH.extend([tracer_provider.force_flush, reader.get_metrics_data])
    return await ours(args)


async def ours_otel_all(
    args: dict[str, Any],
) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    """`ours_otel` keeping every success's trace (`TRACE_SUCCESSES_PER_SECOND=all`)."""
    args["settings"] = {"TRACE_SUCCESSES_PER_SECOND": "all"}
    return await ours_otel(args)


async def ours_otel_sdk(
    args: dict[str, Any],
) -> tuple[Callable[[int], Awaitable[None]], Callable, dict]:
    """`ours_otel` without the Azure Monitor envelopes (see there)."""
    return await ours_otel(args, envelopes=False)


KINDS = {
    "ours": ours,
    "ours_otel": ours_otel,
    "ours_otel_all": ours_otel_all,
    "ours_otel_sdk": ours_otel_sdk,
    "bare": bare,
    "msgraph": msgraph,
}


async def main(args: dict[str, Any]) -> dict[str, Any]:
    one, close, report = await KINDS[args["kind"]](args)
    concurrency, warmup, n = args["concurrency"], args["warmup"], args["n"]
    samples: list[int] = []
    try:
        if warmup:
            await drive(warmup, concurrency, 0, one)
        gc.collect()
        rss_before = rss_kib()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sample_every = args.get("rss_every")
        if sample_every:
            done = 0
            while done < n:
                step = min(sample_every, n - done)
                await drive(step, concurrency, warmup + done, one)
                done += step
                gc.collect()
                samples.append(rss_kib())
        else:
            await drive(n, concurrency, warmup, one)
        for flush in FLUSH:
            flush()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        gc.collect()
        rss_after = rss_kib()
    finally:
        await close()
    return {
        "kind": args["kind"],
        "n": n,
        "concurrency": concurrency,
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_samples_kib": samples,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        **report(),
    }


if __name__ == "__main__":
    if os.environ.get("BENCH_EXTRA_PATH"):  # e.g. sniffio added to the peer's environment
        sys.path.insert(0, os.environ["BENCH_EXTRA_PATH"])
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
