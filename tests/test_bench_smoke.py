"""The benchmark code runs end to end at tiny sizes (the real run is `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmarks_run_at_tiny_sizes_and_write_a_report(tmp_path: Path) -> None:
    """`python -m bench.run --quick` measures every figure and renders the report."""
    out, results = tmp_path / "performance.md", tmp_path / "results.json"
    subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-m", "bench.run", "--quick", "--no-peer", "--out", str(out),
         "--json", str(results)],
        cwd=ROOT, check=True, capture_output=True, timeout=110,
    )
    data = json.loads(results.read_text())
    assert data["burst"]["runs"][0]["deadletter"] == 0
    assert data["cpu"]["us_per_message"]["ours"]["median"] > 0
    assert data["cpu"]["us_per_message"]["ours_otel"]["median"] > 0
    assert data["cold_start"]["ours_otel"]["median"] > 0
    [fan_out] = data["fan_out"]["runs"]
    assert (fan_out["reason"], fan_out["children"]) == ("FannedOut", 40)
    assert fan_out["list_calls"] == 1 and fan_out["batches"] == 1
    text = out.read_text()
    assert "QUICK SMOKE RUN" in text and "| 4 burst: dead-letters" in text
    assert "## 6. Date-range fan-out" in text
    assert [run["sent"] for run in data["fleet"]["runs"]] == [21, 41]
    assert text.index("## 8. Fleet") < text.index("## What was changed")
    assert "| 7 telemetry: CPU per message, on ÷ off |" in text
    assert "## 7. Telemetry on and off" in text
