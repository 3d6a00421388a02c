"""The operators' queries (infra/app/workbook.json, docs/operate.md) against what the function
emits: every end state runs through the production path into the SDK's in-memory exporters, and
each span and metric point is converted to its Application Insights row by Azure Monitor's own
exporter (the pinned azure-monitor-opentelemetry-exporter's conversion functions, private but
pinned). Every table, column, attribute, metric name and filter literal a query uses must be
one those rows have, and every fact an operator needs must be queried somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from azure.monitor.opentelemetry.exporter._constants import _AUTOCOLLECTED_INSTRUMENT_NAMES
from azure.monitor.opentelemetry.exporter.export.metrics._exporter import (
    _convert_point_to_envelope,
)
from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope

from cancel_handler.servicebus.messages import ORIGINAL_ID_PROPERTY, RETRY_COUNT_PROPERTY, sealed
from cancel_handler.telemetry import names
from tests.conftest import UPN, Loopback, cancel_body
from tests.fake_servicebus import FakeServiceBus
from tests.helpers import as_delivered, received_message
from tests.test_range_replies import END, START
from tests.test_telemetry import (
    COMMENT,
    QUEUE,
    REPLIES,
    Recorded,
    dead_letter_cases,
    run,
    traced,
)

ROOT = Path(__file__).resolve().parents[1]
WORKBOOK = ROOT / "infra" / "app" / "workbook.json"
OPERATE = ROOT / "docs" / "operate.md"

#: Columns of the Application Insights tables the queries read (the classic schema of
#: requests, dependencies, traces and customMetrics), and what fills them here. `itemCount`:
#: 100 ÷ the envelope's sample rate, which a kept success's `_MS.sampleRate` sets
#: (test_telemetry_sampling.py), 1 for every other row.
COLUMNS = {
    "requests": {"timestamp", "id", "name", "duration", "success", "resultCode",
                 "customDimensions", "operation_Id", "operation_ParentId", "itemType",
                 "itemCount"},
    "dependencies": {"timestamp", "id", "name", "duration", "success", "resultCode", "type",
                     "target", "data", "customDimensions", "operation_Id", "operation_ParentId",
                     "itemType", "itemCount"},
    "traces": {"timestamp", "message", "severityLevel", "customDimensions", "operation_Id",
               "operation_ParentId", "itemType"},
    "customMetrics": {"timestamp", "name", "value", "valueSum", "valueCount", "valueMax",
                      "valueMin", "customDimensions", "itemType"},
}
#: KQL operators, functions and keywords the queries use.
KQL = {
    "let", "union", "where", "extend", "summarize", "by", "bin", "render", "timechart", "project",
    "order", "desc", "asc", "top", "distinct", "in", "and", "or", "tostring", "strcat", "sum",
    "sumif", "count", "countif", "percentile", "percentilew", "round", "startswith", "has",
    "isnotempty", "max",
}
#: What an operator needs from each message: each must be queried somewhere.
OPERATOR_ATTRIBUTES = {
    names.OUTCOME, names.REASON, names.GRAPH_STATUS, names.GRAPH_REQUEST_ID, names.ATTEMPTS,
    names.ATTEMPT, names.TARGET_KIND, names.DELIVERY_COUNT, names.MESSAGE_ID,
    names.CORRELATION_ID, names.PARENT_MESSAGE_ID, names.REQUEST_MESSAGE_ID, names.MAILBOX_HASH,
    names.FANOUT_SIZE, names.GRAPH_ROUTE,
}


def workbook_queries() -> list[str]:
    items = json.loads(WORKBOOK.read_text())["items"]
    return [item["content"]["query"] for item in items if item["type"] == 3]


def docs_queries() -> list[str]:
    section = OPERATE.read_text().split("\n## Telemetry\n", 1)[1]
    return re.findall(r"```kusto\n(.*?)\n```", section, re.DOTALL)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The Application Insights rows of every end state (see the module docs)."""
    mp = pytest.MonkeyPatch()
    from cancel_handler.devtools.graph_simulator import GraphSimulator
    from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority

    authority = TokenAuthority()
    try:
        with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
            for name, value in identity.environment.items():
                mp.setenv(name, value)
            loopback = Loopback(authority, identity, graph)
            recorded = Recorded()
            bus = FakeServiceBus(queue_name=QUEUE)
            bus.add_entity(REPLIES, sessions=True)
            graph.state.add_event(UPN, "EV1")
            graph.state.add_event(UPN, "EV2")
            graph.state.script(UPN, "EV2", *[_throttle()] * 2)
            cases = dead_letter_cases(loopback)  # also the leave's meetings; keeps the count
            copy_id = "copy-1"
            markers = {ORIGINAL_ID_PROPERTY: "req-original", RETRY_COUNT_PROPERTY: 1}
            messages = [
                received_message(cancel_body("EV1"), message_id=copy_id,
                                 application_properties=sealed(copy_id, markers)),
                traced(cancel_body("EV1", comment=COMMENT), reply_to=REPLIES,
                       reply_to_session_id="s-1"),
                traced(cancel_body("EV2"), message_id="req-throttled"),
                traced({"userPrincipalName": UPN, "startDateTime": START, "endDateTime": END},
                       message_id="req-range"),
                *(message for message, _ in cases.values()),
            ]
            run(loopback, recorded, *messages, bus=bus)
            children = [m for m in bus.sent if m.application_properties.get("parentMessageId")]
            run(loopback, recorded, as_delivered(children[0]), bus=bus)
    finally:
        mp.undo()
    return _to_rows(recorded)


def _throttle() -> Any:
    from cancel_handler.devtools.graph_simulator import Fault

    return Fault(429, {"Retry-After": "1"})


def _to_rows(recorded: Recorded) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in COLUMNS}
    for span in recorded.finished():
        envelope = _convert_span_to_envelope(span)
        data = envelope.data.base_data
        code = getattr(data, "response_code", None) or getattr(data, "result_code", None)
        row = {"name": data.name, "id": data.id, "resultCode": code,
               "success": data.success, "duration": data.duration,
               "customDimensions": dict(data.properties or {}),
               "operation_Id": envelope.tags["ai.operation.id"],
               "operation_ParentId": envelope.tags.get("ai.operation.parentId")}
        if envelope.data.base_type == "RequestData":
            tables["requests"].append(row)
        else:
            row.update({"type": data.type, "target": data.target, "data": data.data})
            tables["dependencies"].append(row)
    metrics = recorded.reader.get_metrics_data()
    for resource in metrics.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in _AUTOCOLLECTED_INSTRUMENT_NAMES:
                    # Azure Monitor turns it into its standard dependency metrics; the
                    # dependencies table carries the same calls.
                    continue
                for point in metric.data.data_points:
                    envelope = _convert_point_to_envelope(
                        point, metric.name, resource.resource, scope.scope
                    )
                    data = envelope.data.base_data
                    tables["customMetrics"].append(
                        {"name": data.metrics[0].name, "valueSum": data.metrics[0].value,
                         "valueCount": data.metrics[0].count,
                         "customDimensions": dict(data.properties or {})})
    return tables


def tables_of(query: str) -> set[str]:
    found = set(re.findall(r"^(?:let \w+ = )?(\w+)\s*$", query, re.MULTILINE))
    found |= set(re.findall(r"^let \w+ = (\w+)\n", query, re.MULTILINE))
    for listed in re.findall(r"union ([\w, ]+)", query):
        found |= {name.strip() for name in listed.split(",")}
    return found


def dimensions_of(query: str) -> set[str]:
    return set(re.findall(r'customDimensions\["([^"]+)"\]', query))


def metrics_of(query: str) -> set[str]:
    found = set(re.findall(r'name == "([^"]+)"', query))
    for listed in re.findall(r"name in \(([^)]*)\)", query):
        found |= set(re.findall(r'"([^"]+)"', listed))
    return found


def test_workbook_and_docs_hold_the_same_queries() -> None:
    """docs/operate.md shows exactly the workbook's queries, in its order."""
    assert workbook_queries() == docs_queries()
    assert len(workbook_queries()) == 8


def test_workbook_points_at_the_deployed_application_insights() -> None:
    """Every query runs on the Application Insights resource Bicep substitutes."""
    workbook = json.loads(WORKBOOK.read_text())
    assert workbook["fallbackResourceIds"] == ["__APPLICATION_INSIGHTS_ID__"]
    bicep = (ROOT / "infra" / "app" / "workbook.bicep").read_text()
    assert "replace(loadTextContent('workbook.json'), '__APPLICATION_INSIGHTS_ID__'" in bicep
    for item in workbook["items"]:
        if item["type"] == 3:
            assert item["content"]["resourceType"] == "microsoft.insights/components"
            assert item["content"]["timeContextFromParameter"] == "TimeRange"


@pytest.mark.parametrize("query", workbook_queries(), ids=lambda q: q.split("\n")[0][:30])
def test_every_table_column_and_attribute_a_query_uses_is_emitted(
    query: str, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Tables are ones rows land in; customDimensions keys are ones those rows carry; metric
    names are custom metrics the function records; every other name is a column of the tables
    read, a KQL word or a name the query defines itself."""
    tables = tables_of(query)
    assert tables and tables <= set(COLUMNS), tables
    emitted = {
        key for table in tables for row in rows[table] for key in row["customDimensions"]
    }
    assert dimensions_of(query) <= emitted, dimensions_of(query) - emitted
    custom_metrics = {row["name"] for row in rows["customMetrics"]}
    assert metrics_of(query) <= custom_metrics | {n for t in tables for n in _names(rows, t)}
    if "customMetrics" in tables:
        assert metrics_of(query) and metrics_of(query) <= custom_metrics
    code = re.sub(r'"[^"]*"', '""', query)
    defined = set(re.findall(r"\b(\w+) = ", code))
    columns = set().union(*(COLUMNS[table] for table in tables))
    words = set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", code))
    assert words - columns - KQL - defined - tables == set()


def _names(rows: dict[str, list[dict[str, Any]]], table: str) -> set[str]:
    return {row["name"] for row in rows[table]}


def test_the_queries_filters_match_the_rows(rows: dict[str, list[dict[str, Any]]]) -> None:
    """The literals queries filter on are what the rows hold: consumer spans named
    `process <queue>`, Graph calls as HTTP dependencies with their route template and Graph's
    status as result code, and a mailbox hash on each Graph call; sends are not HTTP."""
    assert all(row["name"].startswith("process ") for row in rows["requests"])
    graph = [row for row in rows["dependencies"] if row["type"] == "HTTP"]
    assert graph and all(
        row["customDimensions"][names.GRAPH_ROUTE] in names.ROUTES for row in graph
    )
    assert {row["resultCode"] for row in graph} >= {"202", "429", "404", "403", "400"}
    assert all(names.MAILBOX_HASH in row["customDimensions"] for row in graph)
    sends = [row for row in rows["dependencies"] if row not in graph]
    assert sends and all(row["type"] != "HTTP" for row in sends)


def test_everything_an_operator_needs_is_queried() -> None:
    """Each per-message fact and each custom metric appears in some query."""
    queries = workbook_queries()
    used = set().union(*(dimensions_of(q) for q in queries))
    assert used >= OPERATOR_ATTRIBUTES, OPERATOR_ATTRIBUTES - used
    custom = names.METRICS - set(_AUTOCOLLECTED_INSTRUMENT_NAMES)
    assert custom <= set().union(*(metrics_of(q) for q in queries))


def test_rows_hold_no_personal_data(rows: dict[str, list[dict[str, Any]]]) -> None:
    """As Application Insights would store them: no UPN, comment or URL in any row."""
    text = json.dumps(rows, default=str).lower()
    for secret in (UPN, "adele.vance", "contoso", COMMENT.lower(), "http://", "https://"):
        assert secret not in text, secret
