"""Run every benchmark, the fleet simulation included, and write docs/performance.md: `make bench`
(or `python -m bench.run`).

`--quick` shrinks every size (the smoke test in tests/ uses it) and `--out` names the report.
Each figure is a ratio or a count measured in the same run as its reference, over repeated runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench._common import (
    PEER_PYTHON,
    PRODUCT_PYTHON,
    ROOT,
    SimProcess,
    host_json_concurrency,
    machine,
    run_client,
    spread,
)
from bench.fanout import fan_out
from bench.fleet.scenarios import run_all as fleet
from bench.report import write_report

PEER_SNIFFIO = ROOT / ".venv-bench" / "sniffio-extra"

FLOOR = "import azure.functions, azurefunctions.extensions.bindings.servicebus"
IMPORT_TIMER = (
    "import time, sys; t = time.perf_counter(); {stmt}; print((time.perf_counter() - t) * 1000)"
)
OWN_CODE_TIMER = (
    f"import time; {FLOOR}; t = time.perf_counter(); import function_app; "
    "print((time.perf_counter() - t) * 1000)"
)


def timed_import(python: Path, code: str) -> float:
    """Milliseconds one fresh interpreter spends on `code` (the interpreter's start excluded)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CANCEL_QUEUE_NAME": "bench"}
    done = subprocess.run(  # noqa: S603 - our interpreters, fixed code
        [str(python), "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


#: Telemetry on: what the worker imports before it indexes the function (the Azure Monitor
#: distro), then the function, as in Azure with PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY.
OTEL_IMPORT = "import azure.monitor.opentelemetry; import function_app"


def cold_start(repeats: int, with_peer: bool) -> dict[str, Any]:
    kinds = {
        "floor": (PRODUCT_PYTHON, IMPORT_TIMER.format(stmt=FLOOR)),
        "ours": (PRODUCT_PYTHON, IMPORT_TIMER.format(stmt="import function_app")),
        "ours_otel": (PRODUCT_PYTHON, IMPORT_TIMER.format(stmt=OTEL_IMPORT)),
        "own_code": (PRODUCT_PYTHON, OWN_CODE_TIMER),
    }
    if with_peer:
        peer = "import bench.peers.msgraph_function_app"
        kinds["peer"] = (PEER_PYTHON, IMPORT_TIMER.format(stmt=peer))
    for python, code in kinds.values():
        timed_import(python, code)  # compile bytecode once; not counted
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(repeats):
        for name, (python, code) in kinds.items():
            samples[name].append(timed_import(python, code))
    result: dict[str, Any] = {name: spread(values) for name, values in samples.items()}
    result["repeats"] = repeats
    if with_peer:
        ratios = [o / p for o, p in zip(samples["ours"], samples["peer"], strict=True)]
        result["ours_over_peer"] = spread(ratios)
    return result


def client_args(sim: SimProcess, token: dict, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "graph_base_url": sim.graph_base_url,
        "identity_environment": sim.identity_environment,
        "token": token["token"],
        "expires_on": token["expires_on"],
        "prefix": f"{kind}-{time.monotonic_ns()}",
        **fields,
    }


def cpu(repeats: int, n: int, concurrency: int, with_peer: bool) -> dict[str, Any]:
    latency = 0.02
    kinds: dict[str, tuple[Path, dict[str, str]]] = {
        "ours": (PRODUCT_PYTHON, {}),
        "ours_otel": (PRODUCT_PYTHON, {}),
        "ours_otel_all": (PRODUCT_PYTHON, {}),
        "ours_otel_sdk": (PRODUCT_PYTHON, {}),
        "bare": (PRODUCT_PYTHON, {}),
    }
    if with_peer:
        kinds["msgraph"] = (PEER_PYTHON, {})
        kinds["msgraph_sniffio"] = (PEER_PYTHON, {"BENCH_EXTRA_PATH": str(PEER_SNIFFIO)})
    per_msg: dict[str, list[float]] = {name: [] for name in kinds}
    with SimProcess(latency=latency) as sim:
        token = sim.command("token")
        for _ in range(repeats):
            for name, (python, env) in kinds.items():
                kind = "msgraph" if name.startswith("msgraph") else name
                args = client_args(
                    sim,
                    token,
                    kind,
                    n=n,
                    warmup=max(n // 10, 20),
                    concurrency=concurrency,
                    mailboxes=400,
                )
                result = run_client(python, args, env)
                per_msg[name].append(result["cpu_s"] / n * 1e6)
    out: dict[str, Any] = {
        "latency": latency,
        "n": n,
        "concurrency": concurrency,
        "repeats": repeats,
        "us_per_message": {name: spread(values) for name, values in per_msg.items()},
    }
    for name in kinds:
        if not name.startswith("ours"):
            ratios = [o / r for o, r in zip(per_msg["ours"], per_msg[name], strict=True)]
            out[f"ours_over_{name}"] = spread(ratios)
    on_off = [t / o for t, o in zip(per_msg["ours_otel"], per_msg["ours"], strict=True)]
    out["telemetry_on_over_off"] = spread(on_off)
    every = [t / o for t, o in zip(per_msg["ours_otel_all"], per_msg["ours"], strict=True)]
    out["telemetry_all_over_off"] = spread(every)
    own = [t / o for t, o in zip(per_msg["ours_otel_sdk"], per_msg["ours"], strict=True)]
    out["telemetry_own_over_off"] = spread(own)
    return out


def throughput(repeats: int, n: int, concurrency: int) -> dict[str, Any]:
    latency = 0.05
    ideal = concurrency / latency
    rates: dict[str, list[float]] = {"ours": [], "bare": []}
    with SimProcess(latency=latency) as sim:
        token = sim.command("token")
        for _ in range(repeats):
            for kind in rates:
                args = client_args(
                    sim,
                    token,
                    kind,
                    n=n,
                    warmup=concurrency * 4,
                    concurrency=concurrency,
                    mailboxes=max(n // 5, 1),
                )
                result = run_client(PRODUCT_PYTHON, args)
                rates[kind].append(n / result["wall_s"])
        stats = sim.command("stats")
    return {
        "latency": latency,
        "n": n,
        "concurrency": concurrency,
        "repeats": repeats,
        "ideal_per_s": ideal,
        "per_s": {kind: spread(values) for kind, values in rates.items()},
        "efficiency": {kind: spread([r / ideal for r in values]) for kind, values in rates.items()},
        "sim_statuses": stats["statuses"],
        "max_peak_in_flight": stats["max_peak_in_flight"],
    }


def burst(repeats: int, n: int, concurrency: int) -> dict[str, Any]:
    latency, limit = 0.05, 4
    minimum = n * latency / limit
    runs: list[dict[str, Any]] = []
    with SimProcess(latency=latency) as sim:
        token = sim.command("token")
        sim.command("configure", mailbox_concurrency=limit, mailbox_window=[10000, 600])
        for _ in range(repeats):
            sim.command("reset")
            args = client_args(
                sim, token, "ours", n=n, warmup=limit, concurrency=concurrency, mailboxes=1
            )
            result = run_client(PRODUCT_PYTHON, args)
            stats = sim.command("stats")
            settled = result["settled"]
            runs.append(
                {
                    "drain_s": result["wall_s"],
                    "ratio": result["wall_s"] / minimum,
                    "completed": settled.get("complete", 0),
                    "deadletter": settled.get("deadletter", 0),
                    "abandon": settled.get("abandon", 0),
                    "throttled_429": stats["statuses"].get("429", 0),
                    "calls": stats["calls"],
                    "peak_in_flight": stats["max_peak_in_flight"],
                }
            )
    return {
        "latency": latency,
        "n": n,
        "concurrency": concurrency,
        "repeats": repeats,
        "mailbox_limit": limit,
        "minimum_s": minimum,
        "ratio": spread([r["ratio"] for r in runs]),
        "drain_s": spread([r["drain_s"] for r in runs]),
        "runs": runs,
    }


def memory(repeats: int, n: int, concurrency: int) -> dict[str, Any]:
    growth: list[float] = []
    samples: list[list[int]] = []
    with SimProcess() as sim:
        token = sim.command("token")
        for _ in range(repeats):
            args = client_args(
                sim,
                token,
                "ours",
                n=n,
                warmup=max(n // 10, 20),
                concurrency=concurrency,
                mailboxes=500,
                lazy_messages=True,
                rss_every=max(n // 10, 1),
            )
            result = run_client(PRODUCT_PYTHON, args)
            growth.append((result["rss_after_kib"] - result["rss_before_kib"]) / 1024)
            samples.append(result["rss_samples_kib"])
            sim.command("reset")
    return {
        "n": n,
        "concurrency": concurrency,
        "repeats": repeats,
        "growth_mb": spread(growth),
        "rss_samples_kib": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--no-peer", action="store_true", help="skip the msgraph-sdk peer")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()
    quick = args.quick
    with_peer = PEER_PYTHON.exists() and not args.no_peer
    concurrency = host_json_concurrency()
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "with_peer": with_peer}
    steps = {
        "cold_start": lambda: cold_start(2 if quick else 15, with_peer),
        "cpu": lambda: cpu(1 if quick else 11, 60 if quick else 2000, concurrency, with_peer),
        "throughput": lambda: throughput(1 if quick else 3, 80 if quick else 2000, concurrency),
        "burst": lambda: burst(1 if quick else 3, 40 if quick else 500, concurrency),
        "memory": lambda: memory(1 if quick else 2, 200 if quick else 20000, concurrency),
        "fan_out": lambda: fan_out(1 if quick else 3, 40 if quick else 500),
        "fleet": lambda: fleet(quick),
    }
    for name, step in steps.items():
        t = time.perf_counter()
        results[name] = step()
        print(f"{name}: {time.perf_counter() - t:.1f}s", flush=True)
    results["total_s"] = time.perf_counter() - started
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    write_report(results, Path(args.out))
    print(f"wrote {args.out} in {results['total_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
