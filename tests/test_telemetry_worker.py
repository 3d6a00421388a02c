"""Telemetry on, end to end as in Azure: the pinned worker's own set-up of the Azure Monitor
distro, the app settings infra/app/function.bicep sets, the function, and what reaches an
Application Insights ingestion endpoint (a recording stand-in on loopback)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import UPN, Loopback, cancel_body
from tests.test_telemetry_setup import app_settings

ROOT = Path(__file__).resolve().parents[1]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
COMMENT = "Room closed; Adele's private note"


class Ingestion(ThreadingHTTPServer):
    """Answers the exporter's track calls as Application Insights does and keeps every item."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Track)


class _Track(BaseHTTPRequestHandler):
    server: Ingestion

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode("utf-8")
        items = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
        self.server.items.extend(items)
        self.server.paths.append(self.path)
        answer = json.dumps(
            {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ingestion() -> Iterator[Ingestion]:
    server = Ingestion()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run_probe(
    loopback: Loopback, ingestion: Ingestion, tmp_path: Path, traces_kept: str
) -> dict[str, list[dict]]:
    """One plain cancel through the worker's set-up of the distro with the deployment's
    settings (`TRACE_SUCCESSES_PER_SECOND` = `traces_kept`); what Application Insights received,
    by kind."""
    loopback.graph.state.add_event(UPN, "EV1")
    settings = app_settings()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        **loopback.identity.environment,
        "GRAPH_BASE_URL": loopback.graph.graph_base_url,
        "CANCEL_QUEUE_NAME": "cancel-requests",
        "TELEMETRY_HASH_KEY": "test-key",
        "TRACE_SUCCESSES_PER_SECOND": traces_kept,
        **{name: settings[name] for name in (
            "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
            "OTEL_TRACES_SAMPLER",
            "OTEL_METRICS_EXEMPLAR_FILTER",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
        )},
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{ingestion.server_address[1]}/"
        ),
        # No calls home from this test (SDK statistics), no retry files.
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    }
    request = {
        "body": cancel_body("EV1", comment=COMMENT),
        "message_id": "req-1",
        "properties": {"traceparent": TRACEPARENT, "Diagnostic-Id": TRACEPARENT},
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, our probe
        [sys.executable, str(ROOT / "tests" / "telemetry_probe.py")],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, input=json.dumps(request),
        capture_output=True, text=True, timeout=90, check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "azure_monitor_configured": True, "pipeline": "TracedPipeline", "settled": "complete",
        "sampler": True,
        "exemplar_filter": "AlwaysOffExemplarFilter",
        # Nothing holds a span once the message is done and the exporter flushed: neither the
        # spans left out nor those exported (the distro's GenAI agent processor keeps every
        # span it saw start until that span's end reaches it).
        "spans_alive": 0,
    }
    by_kind: dict[str, list[dict]] = {}
    for item in ingestion.items:
        by_kind.setdefault(item["data"]["baseType"], []).append(item)
    return by_kind


def settled_counts(by_kind: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], int]:
    """Messages by outcome and reason as Application Insights gets them: the count
    (`valueCount`) of each `messaging.process.duration` envelope."""
    counts: dict[tuple[str, str], int] = {}
    for item in by_kind["MetricData"]:
        data = item["data"]["baseData"]
        for metric in data["metrics"]:
            if metric["name"] == "messaging.process.duration":
                key = (data["properties"]["cancel.outcome"], data["properties"]["cancel.reason"])
                counts[key] = counts.get(key, 0) + metric["count"]
    return counts


def test_worker_set_up_exports_the_functions_telemetry_without_personal_data(
    loopback: Loopback, ingestion: Ingestion, tmp_path: Path
) -> None:
    """With the deployment's settings (every success's trace kept), the worker's distro set-up
    makes the function run its traced pipeline; Application Insights receives the consumer span
    (continuing the sender's trace), the Graph call, the settlement log line with its fields and
    the custom metrics, and no UPN, comment, token or Graph URL."""
    by_kind = run_probe(loopback, ingestion, tmp_path, "all")
    [request_row] = [
        i for i in by_kind["RequestData"]
        if i["data"]["baseData"]["name"] == "process cancel-requests"
    ]
    assert request_row["tags"]["ai.operation.id"] == TRACE_ID
    properties = request_row["data"]["baseData"]["properties"]
    assert (properties["cancel.outcome"], properties["cancel.reason"]) == ("complete", "Cancelled")
    assert properties["cancel.message_id"] == "req-1"
    [graph] = [
        i for i in by_kind["RemoteDependencyData"]
        if i["data"]["baseData"]["properties"].get("cancel.graph.route")
    ]
    assert graph["data"]["baseData"]["resultCode"] == "202"
    assert graph["tags"]["ai.operation.id"] == TRACE_ID
    logs = [
        i["data"]["baseData"] for i in by_kind["MessageData"]
        if i["data"]["baseData"]["message"].startswith("settlement ")
    ]
    assert [log["properties"]["cancel.outcome"] for log in logs] == ["complete"]
    metric_names = {
        metric["name"] for i in by_kind["MetricData"] for metric in i["data"]["baseData"]["metrics"]
    }
    assert "messaging.process.duration" in metric_names
    assert settled_counts(by_kind) == {("complete", "Cancelled"): 1}
    exported = json.dumps(ingestion.items).lower()
    for secret in (UPN, "adele.vance", COMMENT.lower(), "bearer", "sim-token", "/users/adele"):
        assert secret not in exported, secret


def test_a_success_left_out_of_the_traces_is_still_counted_and_logged(
    loopback: Loopback, ingestion: Ingestion, tmp_path: Path
) -> None:
    """No successes' traces kept: behind the distro's own processors, the plain cancel sends
    no request and no Graph dependency row, and is still in the metrics and the log."""
    by_kind = run_probe(loopback, ingestion, tmp_path, "0")
    ours = [
        i for kind in ("RequestData", "RemoteDependencyData") for i in by_kind.get(kind, [])
        if i["data"]["baseData"]["properties"].get("cancel.message_id")
        or i["data"]["baseData"]["properties"].get("cancel.graph.route")
    ]
    assert ours == []
    metric_names = {
        metric["name"] for i in by_kind["MetricData"] for metric in i["data"]["baseData"]["metrics"]
    }
    assert "http.client.request.duration" in metric_names
    assert settled_counts(by_kind) == {("complete", "Cancelled"): 1}
    logs = [
        i["data"]["baseData"] for i in by_kind["MessageData"]
        if i["data"]["baseData"]["message"].startswith("settlement ")
    ]
    assert [log["properties"]["cancel.outcome"] for log in logs] == ["complete"]
