"""Render bench/run.py's results as docs/performance.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.fleet.report import insert_section, render_section

COMMAND = "make bench"


def _s(spread: dict[str, float], fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(spread[k]) for k in ("min", "median", "max"))


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _at_most(figure: str, spread: dict[str, float], goal: float) -> tuple[str, str, str, str]:
    """A goals-table row whose median must stay at or below `goal`."""
    return figure, _s(spread), f"≤ {goal:g}", _met(spread["median"] <= goal)


def _reference(
    figure: str, spread: dict[str, float], note: str = "(reference)"
) -> tuple[str, str, str, str]:
    """A goals-table row given for reference, with no goal."""
    return figure, _s(spread), note, "-"


def write_report(r: dict[str, Any], out: Path) -> None:
    """Write the report; the verdicts use the medians (burst and memory: the worst run)."""
    m, cs, cpu, tp, bu, mem, fo = (
        r["machine"],
        r["cold_start"],
        r["cpu"],
        r["throughput"],
        r["burst"],
        r["memory"],
        r["fan_out"],
    )
    own = cs["own_code"]["median"]
    rows = [
        (
            "1 cold start: own code over the floor (ms)",
            _s(cs["own_code"], "{:.1f}"),
            "≤ 50 ms",
            _met(own <= 50),
        )
    ]
    if "ours_over_peer" in cs:
        rows.append(_at_most("1 cold start: ours ÷ msgraph-sdk peer", cs["ours_over_peer"], 0.9))
    rows.append(_at_most("2 CPU per message: ours ÷ bare httpx loop", cpu["ours_over_bare"], 1.2))
    if "ours_over_msgraph" in cpu:
        rows += [
            _at_most(
                "2 CPU per message: ours ÷ msgraph-sdk (as pip installs it)",
                cpu["ours_over_msgraph"],
                0.5,
            ),
            _reference(
                "2 CPU per message: ours ÷ msgraph-sdk with sniffio added",
                cpu["ours_over_msgraph_sniffio"],
                "(for reference)",
            ),
        ]
    efficiency = tp["efficiency"]
    rows += [
        (
            "3 throughput: achieved ÷ ideal (ours)",
            _s(efficiency["ours"]),
            "≥ 0.9",
            _met(efficiency["ours"]["median"] >= 0.9),
        ),
        _reference(
            "3 throughput: achieved ÷ ideal (bare loop: the simulator's ceiling)",
            efficiency["bare"],
        ),
    ]
    worst = {
        key: max(run[key] for run in bu["runs"])
        for key in ("deadletter", "abandon", "throttled_429", "peak_in_flight")
    }
    rows += [
        (
            "4 burst: dead-letters / given back / 429s (worst run)",
            f"{worst['deadletter']} / {worst['abandon']} / {worst['throttled_429']}",
            "0 / 0 / 0",
            _met(worst["deadletter"] == worst["abandon"] == worst["throttled_429"] == 0),
        ),
        _at_most("4 burst: drain time ÷ minimum (n * latency ÷ 4)", bu["ratio"], 1.15),
        (
            f"5 memory: RSS growth over {mem['n']:,} messages (MB)",
            _s(mem["growth_mb"]),
            "≤ 5 MB",
            _met(mem["growth_mb"]["max"] <= 5),
        ),
    ]
    fo_runs = fo["runs"]
    most_calls = max(run["list_calls"] for run in fo_runs)
    most_batches = max(run["batches"] for run in fo_runs)
    min_calls, min_batches = fo_runs[0]["min_list_calls"], fo_runs[0]["min_batches"]
    rows += [
        (
            f"6 fan-out of {fo['n']} meetings: Graph list calls (most) / minimum",
            f"{most_calls} / {min_calls}",
            "= minimum",
            _met(most_calls == min_calls),
        ),
        (
            f"6 fan-out of {fo['n']} meetings: send batches (most) / minimum",
            f"{most_batches} / {min_batches}",
            "= minimum",
            _met(most_batches == min_batches),
        ),
        _reference("6 fan-out: time ÷ minimum (list calls * latency)", fo["time_ratio"]),
    ]
    rows += [
        _at_most("7 telemetry: CPU per message, on ÷ off", cpu["telemetry_on_over_off"], 1.15),
        _reference(
            "7 telemetry: every success's trace kept too (`TRACE_SUCCESSES_PER_SECOND=all`) ÷ off",
            cpu["telemetry_all_over_off"],
        ),
        _reference(
            "7 telemetry: the function's own share (spans and metrics, no export) ÷ off",
            cpu["telemetry_own_over_off"],
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    cpu_rows = "\n".join(
        f"| {name} | {_s(v, '{:.0f}')} |" for name, v in cpu["us_per_message"].items()
    )
    template = (Path(__file__).parent / "performance_template.md").read_text("utf-8")
    body = template.format(
        command=COMMAND,
        quick=" (QUICK SMOKE RUN: sizes too small to judge)" if r["quick"] else "",
        nproc=m["nproc"],
        cpu_model=m["cpu"],
        python=m["python"],
        platform=m["platform"],
        total=r["total_s"],
        table=table,
        cs_repeats=cs["repeats"],
        floor=_s(cs["floor"], "{:.0f}"),
        ours=_s(cs["ours"], "{:.0f}"),
        peer=_s(cs["peer"], "{:.0f}") if "peer" in cs else "not measured (no .venv-bench)",
        own=_s(cs["own_code"], "{:.1f}"),
        cpu_n=cpu["n"],
        cpu_c=cpu["concurrency"],
        cpu_lat=cpu["latency"] * 1000,
        cpu_repeats=cpu["repeats"],
        cpu_rows=cpu_rows,
        tp_n=tp["n"],
        tp_c=tp["concurrency"],
        tp_lat=tp["latency"] * 1000,
        tp_ideal=tp["ideal_per_s"],
        tp_ours=_s(tp["per_s"]["ours"], "{:.0f}"),
        tp_bare=_s(tp["per_s"]["bare"], "{:.0f}"),
        tp_peak=tp["max_peak_in_flight"],
        tp_repeats=tp["repeats"],
        bu_n=bu["n"],
        bu_c=bu["concurrency"],
        bu_min=bu["minimum_s"],
        bu_lat=bu["latency"] * 1000,
        bu_drain=_s(bu["drain_s"]),
        bu_repeats=bu["repeats"],
        bu_peak=worst["peak_in_flight"],
        bu_calls=max(run["calls"] for run in bu["runs"]),
        mem_n=mem["n"],
        mem_c=mem["concurrency"],
        mem_repeats=mem["repeats"],
        mem_growth=_s(mem["growth_mb"]),
        mem_samples=", ".join(f"{s / 1024:.1f}" for s in mem["rss_samples_kib"][0]),
        fo_n=fo["n"],
        fo_lat=fo["latency"] * 1000,
        fo_repeats=fo["repeats"],
        fo_calls=most_calls,
        fo_min_calls=min_calls,
        fo_default_calls=fo_runs[0]["list_calls_at_default_page"],
        fo_batches=most_batches,
        fo_min_batches=min_batches,
        fo_kib=fo_runs[0]["child_bytes"] / 1024,
        fo_time=_s(fo["elapsed_s"]),
        fo_min_time=fo_runs[0]["min_elapsed_s"],
        tel_import_off=_s(cs["ours"], "{:.0f}"),
        tel_import_on=_s(cs["ours_otel"], "{:.0f}"),
        tel_cpu_off=_s(cpu["us_per_message"]["ours"], "{:.0f}"),
        tel_cpu_on=_s(cpu["us_per_message"]["ours_otel"], "{:.0f}"),
        tel_ratio=_s(cpu["telemetry_on_over_off"]),
        tel_cpu_all=_s(cpu["us_per_message"]["ours_otel_all"], "{:.0f}"),
        tel_all_ratio=_s(cpu["telemetry_all_over_off"]),
        tel_cpu_sdk=_s(cpu["us_per_message"]["ours_otel_sdk"], "{:.0f}"),
        tel_own_ratio=_s(cpu["telemetry_own_over_off"]),
    )
    if "fleet" in r:
        body = insert_section(body, render_section(r["fleet"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
