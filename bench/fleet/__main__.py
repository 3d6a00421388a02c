"""`python -m bench.fleet`: the fleet scenarios against the deployed design (keyed sessions;
`--design today` for the design before them); writes its section of docs/performance.md and
prints one `fleet:` line per run (the last line is the last run's).

    python -m bench.fleet [--quick] [--time-scale S] [--only departure] [--out FILE]
                          [--design today|sessions|organizer-sessions|paced]
                          [--max-instances N] [--instances N] [--retry-after 1]
                          [--refusal-latency 0.1] [--scale-interval 2] [--start-delay 3]
                          [--session-idle-timeout 2]

`--design` chooses how a date range's children are queued and consumed (`bench/fleet/design.py`);
`--max-instances` leaves out the runs that need more instances, `--instances` keeps only the runs
with that many.

The last four set what Microsoft does not document (unscaled seconds): the `Retry-After` of a
concurrency refusal, how long Graph takes to refuse, how often the scale controller decides and
how long a new instance takes to receive.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench._common import ROOT
from bench.fleet.design import DESIGNS
from bench.fleet.report import render_section, write_section
from bench.fleet.run import FleetParams
from bench.fleet.scaler import FlexScaler
from bench.fleet.scenarios import run_all
from cancel_handler.devtools.graph_limits import GraphLimitRules


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--time-scale", type=float, default=None, help="one time scale for every run"
    )
    parser.add_argument(
        "--only", action="append", help="run only this scenario (departure, closure, …); repeatable"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "fleet.json"))
    defaults, flex = GraphLimitRules(), FlexScaler()
    parser.add_argument("--retry-after", type=float, default=defaults.concurrency_retry_after)
    parser.add_argument("--refusal-latency", type=float, default=defaults.refusal_latency)
    parser.add_argument("--scale-interval", type=float, default=flex.interval)
    parser.add_argument("--start-delay", type=float, default=flex.start_delay)
    parser.add_argument("--design", choices=DESIGNS, default=FleetParams.design)
    parser.add_argument("--max-instances", type=int, default=None)
    parser.add_argument("--instances", type=int, default=None, help="only runs with this many")
    parser.add_argument(
        "--session-idle-timeout", type=float, default=FleetParams.session_idle_timeout
    )
    args = parser.parse_args()
    params = FleetParams(
        time_scale=args.time_scale or FleetParams.time_scale,
        design=args.design,
        session_idle_timeout=args.session_idle_timeout,
        graph=GraphLimitRules(
            concurrency_retry_after=args.retry_after, refusal_latency=args.refusal_latency
        ),
    )
    flex = FlexScaler(interval=args.scale_interval, start_delay=args.start_delay)
    results = run_all(
        args.quick,
        params,
        args.only,
        flex,
        forced_scale=bool(args.time_scale),
        max_instances=args.max_instances,
        instances=args.instances,
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    write_section(render_section(results), Path(args.out))
    print(f"wrote {args.out} in {results['total_s']:.0f}s")
    if results["runs"]:
        print(results["runs"][-1]["line"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
