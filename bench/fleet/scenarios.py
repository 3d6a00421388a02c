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
#: With sessions an organizer's children run one after another per session, so each message's
#: own simulation cost (receive, decode, gRPC settlement: milliseconds of this machine's time)
#: adds to the drain at a small scale; at scale 1 it is small next to Graph's latency, and the
#: fleet asks for at most 4 calls at once, which this machine simulates at any scale.
SESSION_DEPARTURE_TIME_SCALES = (1.0, 1.0, 1.0, 1.0)
#: Goal (b): many organizers' leaves (date ranges of `LEAVE_MEETINGS` each), `LEAVES_PER_INSTANCE`
#: per instance, on 1 and 16 instances: throughput should grow at least 0.8 x linearly.
LEAVE_MEETINGS = 100
LEAVES_PER_INSTANCE = 4
LEAVE_INSTANCES = (1, 16)
#: At most 3: the scaled retry budget and Graph timeout must still fit the host's lock renewal
#: (the function refuses to start otherwise: 3 x (60 + 30) + 30 = 300 s).
LEAVE_TIME_SCALES = (0.5, 3.0)
#: An instance dies (its process killed) this many seconds into a departure on 4 instances: the
#: one holding the most messages (with sessions: sessions) at that moment.
DEATH_MEETINGS = 200
DEATH_AT = 10.0


def scenarios(quick: bool, flex: FlexScaler, design: str = "sessions") -> list[Scenario]:
    """The issue's scenarios; tiny ones with `quick`."""
    if quick:
        small = FlexScaler(maximum=2, initial=1, interval=flex.interval,
                           start_delay=flex.start_delay)
        return [
            Scenario("departure", FixedScaler(2), meetings=20),
            Scenario("departure+closure", small, meetings=10, organizers=30),
        ]
    scales = SESSION_DEPARTURE_TIME_SCALES if "sessions" in design else DEPARTURE_TIME_SCALES
    runs = [
        Scenario("departure", FixedScaler(n), meetings=DEPARTURE_MEETINGS, time_scale=scale)
        for n, scale in zip(DEPARTURE_INSTANCES, scales, strict=True)
    ]
    runs += [
        Scenario(
            "leaves",
            FixedScaler(n),
            leaves=LEAVES_PER_INSTANCE * n,
            leave_meetings=LEAVE_MEETINGS,
            time_scale=scale,
        )
        for n, scale in zip(LEAVE_INSTANCES, LEAVE_TIME_SCALES, strict=True)
    ]
    runs.append(
        Scenario(
            "departure, an instance dies",
            FixedScaler(4),
            meetings=DEATH_MEETINGS,
            time_scale=0.5,
            kill_at=DEATH_AT,
        )
    )
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
    only: str | list[str] | None = None,
    flex: FlexScaler | None = None,
    forced_scale: bool = False,
    max_instances: int | None = None,
    instances: int | None = None,
) -> dict[str, Any]:
    """Run every scenario (or those named `only`) at its own time scale, or every one at
    `params.time_scale` when `forced_scale`; the results for the report."""
    params = params or FleetParams()
    flex = flex or FlexScaler()
    started = time.perf_counter()
    runs = []
    for scenario in scenarios(quick, flex, params.design):
        names = [only] if isinstance(only, str) else (only or [])
        if names and scenario.name not in names:
            continue
        if max_instances is not None and _pool(scenario) > max_instances:
            continue
        if instances is not None and _pool(scenario) != instances:
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
        "design": params.design,
        "params": described,
        "flex": asdict(flex),
        "departure_meetings": 20 if quick else DEPARTURE_MEETINGS,
        "closure_organizers": 30 if quick else CLOSURE_ORGANIZERS,
        "max_concurrent_calls": host_json_concurrency(),
        "nproc": os.cpu_count(),
        "runs": runs,
        "total_s": time.perf_counter() - started,
    }


def _pool(scenario: Scenario) -> int:
    """The most instances `scenario` may run."""
    scaler = scenario.scaler
    return scaler.count if isinstance(scaler, FixedScaler) else scaler.maximum
