"""Property-based: no message body (malformed, huge, non-bytes) and no Graph answer makes
processing raise; every delivery gets exactly one settlement; every dead-letter has a reason
from the documented vocabulary and a description of at most 4096 characters."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cancel_handler.core.contract import MAX_BODY_BYTES
from cancel_handler.core.decision import (
    DEADLETTER_REASONS,
    MAX_DEADLETTER_FIELD,
    GraphResponse,
    Retry,
    Settlement,
    decide,
)
from cancel_handler.runtime import Processor
from cancel_handler.settings import load_settings
from tests.helpers import RecordingActions, RecordingSleep, received_message

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
ids = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"[A-Za-z0-9_=-]{1,200}", fullmatch=True),
    st.just("AAMkAGI2TG93AAA="),
)
upns = st.one_of(st.text(max_size=300), st.emails(), st.just("adele.vance@contoso.com"))
requests = st.fixed_dictionaries(
    {"userPrincipalName": upns, "eventId": ids},
    optional={"comment": st.one_of(st.none(), st.text(max_size=5000), json_values)},
).map(lambda d: json.dumps(d).encode())
huge = st.integers(MAX_BODY_BYTES - 64, MAX_BODY_BYTES + 4096).map(
    lambda n: json.dumps(
        {"userPrincipalName": "a@b.c", "eventId": "E", "comment": "x" * n}
    ).encode()
)
bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    requests,
    huge,
)
graph_answers = st.tuples(
    st.sampled_from([200, 202, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503, 504]),
    st.one_of(st.binary(max_size=512), json_values.map(lambda v: json.dumps(v).encode())),
    st.one_of(st.none(), st.sampled_from(["1", "2.5", "120", "-3", "soon", "nan", "1e309"])),
)


@dataclass
class _Token:
    token: str
    expires_on: int


class _Credential:
    def get_token_info(self, *scopes: str, options: dict | None = None) -> _Token:
        return _Token("test-token", int(time.time()) + 3600)


@dataclass
class _OddMessage:
    """A message whose AMQP body is not data sections (value or sequence bodies)."""

    body: Any
    delivery_count: int = 1
    message_id: str = "odd"
    correlation_id: str | None = None
    application_properties: dict | None = None


def _processor(status: int, body: bytes, retry_after: str | None) -> Processor:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    transport = httpx.MockTransport(
        lambda request: httpx.Response(status, headers=headers, content=body)
    )
    return Processor(
        load_settings({"GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"}),
        credential=_Credential(),
        http_client=httpx.AsyncClient(transport=transport),
        sleep=RecordingSleep(),
    )


def _check(actions: RecordingActions) -> None:
    settled = actions.only
    if settled.action == "deadletter":
        assert settled.reason in DEADLETTER_REASONS
        assert len(settled.description or "") <= MAX_DEADLETTER_FIELD
        assert len(settled.reason) <= MAX_DEADLETTER_FIELD


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, answer=graph_answers, delivery_count=st.integers(1, 12))
def test_any_body_and_any_graph_answer_end_in_one_controlled_settlement(
    body: bytes, answer: tuple, delivery_count: int
) -> None:
    """Whatever the body and whatever Graph answers: no exception, exactly one settlement,
    dead-letters only with documented reasons and bounded descriptions."""
    processor = _processor(*answer)
    actions = RecordingActions()

    async def run() -> None:
        try:
            await processor.process(received_message(body, delivery_count=delivery_count), actions)
        finally:
            await processor.aclose()

    asyncio.run(run())
    _check(actions)


@settings(max_examples=100, deadline=None)
@given(body=st.one_of(json_values, st.lists(st.text()), st.binary().map(lambda b: [b, "x"])))
def test_non_data_bodies_are_dead_lettered_as_invalid(body: Any) -> None:
    """AMQP value/sequence bodies (not bytes) are dead-lettered InvalidMessage or decoded."""
    processor = _processor(202, b"", None)
    actions = RecordingActions()

    async def run() -> None:
        try:
            await processor.process(_OddMessage(body), actions)
        finally:
            await processor.aclose()

    asyncio.run(run())
    _check(actions)


@settings(max_examples=500, deadline=None)
@given(
    status=st.integers(100, 599),
    code=st.one_of(st.none(), st.text(max_size=600)),
    message=st.one_of(st.none(), st.text(max_size=600)),
    request_id=st.one_of(st.none(), st.text(max_size=600)),
    retry_after=st.one_of(st.none(), st.floats(0, 1e6)),
    unknown=st.booleans(),
)
def test_decide_is_total_and_speaks_the_vocabulary(
    status: int,
    code: str | None,
    message: str | None,
    request_id: str | None,
    retry_after: float | None,
    unknown: bool,
) -> None:
    """The pure decision returns a settlement or a retry for every answer; dead-letters use the
    vocabulary and fit 4096 characters."""
    verdict = decide(
        GraphResponse(status, code, message, request_id, retry_after),
        may_be_cancelled_already=unknown,
    )
    assert isinstance(verdict, Settlement | Retry)
    if isinstance(verdict, Settlement) and verdict.action == "deadletter":
        assert verdict.reason in DEADLETTER_REASONS
        assert len(verdict.description) <= MAX_DEADLETTER_FIELD


_HEAD = b'{"userPrincipalName": "adele.vance@contoso.com", "eventId": "AAMkAGI2TG93AAA="'
_number_literals = st.from_regex(
    r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?", fullmatch=True
)
_hostile_values = st.one_of(
    _number_literals,
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.integers(4290, 6000).map(lambda n: "-" + "1" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "9007199254740992", "[]", "{}"]),
    st.integers(0xD800, 0xDFFF).map(lambda c: f'"x\\u{c:04x}"'),
    st.sampled_from(['"\\uffff"', '"\\ufdd0"', '"\\ud83d\\ude00"', '"\\u0000"']),
    st.text(max_size=20).map(json.dumps),
)
_hostile_names = st.one_of(
    st.sampled_from(["eventId", "userPrincipalName", "comment", "x", "\\ud800", "\\udc00"]),
    st.text(max_size=10).map(lambda t: json.dumps(t)[1:-1]),
)
_hostile_members = st.lists(
    st.tuples(_hostile_names, _hostile_values).map(lambda nv: f', "{nv[0]}": {nv[1]}'),
    min_size=1,
    max_size=3,
).map(lambda members: _HEAD + "".join(members).encode("utf-8", "surrogatepass") + b"}")
_valid_body = st.just(_HEAD + b"}")
_mutated = st.tuples(_valid_body, st.integers(0, 90), st.integers(0, 8), st.binary(max_size=8)).map(
    lambda t: t[0][: t[1]] + t[3] + t[0][t[1] + t[2] :]
)
any_body_bytes = st.one_of(st.binary(max_size=4096), _hostile_members, _mutated, _valid_body)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=any_body_bytes)
@example(body=_HEAD + b', "comment": "\\ud800"}')
@example(body=_HEAD + b', "ignored": ' + b"7" * 5000 + b"}")
@example(body=_HEAD + b', "eventId": "AAMkOTHER="}')
@example(body=_HEAD + b', "x": NaN}')
def test_any_bytes_with_graph_healthy_end_completed_or_invalid_never_given_back(
    body: bytes,
) -> None:
    """For any byte string as the body and a Graph that accepts every cancel, the message is
    completed (Cancelled) or dead-lettered InvalidMessage without calling Graph; never given
    back, never another reason."""
    calls: list[httpx.Request] = []

    def graph(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(202)

    processor = Processor(
        load_settings({"GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"}),
        credential=_Credential(),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(graph)),
        sleep=RecordingSleep(),
    )
    actions = RecordingActions()

    async def run() -> None:
        try:
            await processor.process(received_message(body), actions)
        finally:
            await processor.aclose()

    asyncio.run(run())
    settled = actions.only
    outcomes = {("complete", None), ("deadletter", "InvalidMessage")}
    assert (settled.action, settled.reason) in outcomes
    if settled.action == "complete":
        assert len(calls) == 1
    else:
        assert calls == []
        settled.description.encode("utf-8")  # valid text: the host can carry it
