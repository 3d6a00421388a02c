"""The issue's scenarios and one call that runs them all (`python -m bench.fleet`, `make bench`)."""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, replace
from typing import Any

from bench._common import host_json_concurrency
from bench.fleet.run import FleetParams, Scenario, fleet_line, run_scenario
from bench.fleet.scaler import FixedScaler, FlexScaler

DEPARTURE_MEETINGS = 800
CLOSURE_ORGANIZERS = 5000
DEPARTURE_INSTANCES = (1, 4, 16, 40)
#: Each run's time scale: as fast as this machine (2 cores, about 300 simulated calls per real
#: second) can simulate what that fleet asks for. 40 instances retrying one mailbox make about
#: 150 calls per second; a closure's 640 invocations, far more (at scale 2: 30-70 % CPU).
DEPARTURE_TIME_SCALES = (0.25, 0.25, 0.5, 1.0)


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
        Scenario("departure", FixedScaler(n), meetings=DEPARTURE_MEETINGS, time_scale=scale)
        for n, scale in zip(DEPARTURE_INSTANCES, DEPARTURE_TIME_SCALES, strict=True)
    ]
    runs.append(Scenario("closure", flex, organizers=CLOSURE_ORGANIZERS, time_scale=2.0))
    runs.append(
        Scenario(
            "departure+closure",
            flex,
            meetings=DEPARTURE_MEETINGS,
            organizers=CLOSURE_ORGANIZERS,
            time_scale=2.0,
        )
    )
    return runs


def run_all(
    quick: bool = False,
    params: FleetParams | None = None,
    only: str | None = None,
    flex: FlexScaler | None = None,
    forced_scale: bool = False,
) -> dict[str, Any]:
    """Run every scenario (or those named `only`) at its own time scale, or every one at
    `params.time_scale` when `forced_scale`; the results for the report."""
    params = params or FleetParams()
    flex = flex or FlexScaler()
    started = time.perf_counter()
    runs = []
    for scenario in scenarios(quick, flex):
        if only and scenario.name != only:
            continue
        if scenario.time_scale is not None and not forced_scale:
            result = run_scenario(scenario, replace(params, time_scale=scenario.time_scale))
        else:
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
