"""`python -m bench.fleet`: the fleet scenarios against today's design; writes its section of
docs/performance.md and prints one `fleet:` line per run (the last line is the last run's).

    python -m bench.fleet [--quick] [--time-scale 0.25] [--only departure] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._common import ROOT, host_json_concurrency
from bench.fleet.report import render_section, write_section
from bench.fleet.run import FleetParams, Scenario, fleet_line, run_scenario
from bench.fleet.scaler import FixedScaler, FlexScaler

DEPARTURE_MEETINGS = 800
CLOSURE_ORGANIZERS = 5000
DEPARTURE_INSTANCES = (1, 4, 16, 40)


def scenarios(quick: bool, flex: FlexScaler) -> list[Scenario]:
    """The issue's scenarios; tiny ones with `quick`."""
    if quick:
        small = FlexScaler(maximum=2, initial=1, interval=flex.interval,
                           start_delay=flex.start_delay)
        return [
            Scenario("departure", FixedScaler(2), meetings=20),
            Scenario("departure+closure", small, meetings=10, organizers=30),
        ]
    runs = [
        Scenario("departure", FixedScaler(n), meetings=DEPARTURE_MEETINGS)
        for n in DEPARTURE_INSTANCES
    ]
    runs.append(Scenario("closure", flex, organizers=CLOSURE_ORGANIZERS))
    runs.append(
        Scenario(
            "departure+closure", flex, meetings=DEPARTURE_MEETINGS, organizers=CLOSURE_ORGANIZERS
        )
    )
    return runs


def run_all(
    quick: bool = False, params: FleetParams | None = None, only: str | None = None
) -> dict[str, Any]:
    """Run every scenario (or those named `only`); the results for the report."""
    params = params or FleetParams()
    flex = FlexScaler()
    started = time.perf_counter()
    runs = []
    for scenario in scenarios(quick, flex):
        if only and scenario.name != only:
            continue
        result = run_scenario(scenario, params)
        result["line"] = fleet_line(result)
        print(result["line"], flush=True)
        runs.append(result)
    sigma = params.latency_sigma
    described = {
        **asdict(params),
        "latency_p95": params.latency_median * math.exp(1.6449 * sigma),
        "latency_mean": params.latency_median * math.exp(sigma * sigma / 2),
    }
    return {
        "quick": quick,
        "params": described,
        "flex": asdict(flex),
        "departure_meetings": 20 if quick else DEPARTURE_MEETINGS,
        "closure_organizers": 30 if quick else CLOSURE_ORGANIZERS,
        "max_concurrent_calls": host_json_concurrency(),
        "nproc": os.cpu_count(),
        "runs": runs,
        "total_s": time.perf_counter() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--time-scale", type=float, default=FleetParams.time_scale)
    parser.add_argument("--only", help="run only this scenario (departure, closure, …)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "fleet.json"))
    args = parser.parse_args()
    results = run_all(args.quick, FleetParams(time_scale=args.time_scale), args.only)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    write_section(render_section(results), Path(args.out))
    print(f"wrote {args.out} in {results['total_s']:.0f}s")
    if results["runs"]:
        print(results["runs"][-1]["line"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
