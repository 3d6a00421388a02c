"""Graph calls as client spans: route template, status, Graph's request-id, the attempt.

The span is named and described by the route template (`POST /users/{id}/events/{id}/cancel`)
and never by its URL, which holds the organizer's UPN. A call that got no HTTP answer records
the error's type only (`error.type`), never its text.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode

from cancel_handler.graph.client import GraphClient, ReadAnswer
from cancel_handler.telemetry import names
from cancel_handler.telemetry.mailbox import route_of
from cancel_handler.telemetry.spans import open_span

if TYPE_CHECKING:
    import httpx

    from cancel_handler.core.contract import CancelRequest
    from cancel_handler.core.decision import GraphResponse
    from cancel_handler.telemetry.instruments import Telemetry

#: The Graph calls of the message being processed so far (set per message by the pipeline).
graph_calls: ContextVar[list[int] | None] = ContextVar("graph_calls", default=None)


class TracedGraphClient(GraphClient):
    """A :class:`GraphClient` whose every call is a client span and a duration point."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, telemetry: Telemetry) -> None:
        super().__init__(http, base_url)
        self._telemetry = telemetry
        self._server = urlsplit(base_url).hostname or ""

    async def cancel(
        self, request: CancelRequest, *, token: str, client_request_id: str
    ) -> GraphResponse:
        return await self._traced(
            "POST",
            names.ROUTE_CANCEL,
            request.user_principal_name,
            lambda: super(TracedGraphClient, self).cancel(
                request, token=token, client_request_id=client_request_id
            ),
        )

    async def read(
        self, url: str, *, token: str, client_request_id: str, prefer: tuple[str, ...] = ()
    ) -> ReadAnswer:
        route, user = route_of(self.base_url, url)
        answer = await self._traced(
            "GET",
            route,
            user,
            lambda: super(TracedGraphClient, self).read(
                url, token=token, client_request_id=client_request_id, prefer=prefer
            ),
        )
        return answer

    async def _traced(self, method: str, route: str, user: str | None, call: Any) -> Any:
        telemetry = self._telemetry
        calls = graph_calls.get()
        if calls is not None:
            calls[0] += 1
        attributes: dict[str, Any] = {
            names.HTTP_METHOD: method,
            names.URL_TEMPLATE: route,
            names.SERVER_ADDRESS: self._server,
        }
        metric_attributes = dict(attributes)
        attributes[names.GRAPH_ROUTE] = route
        if calls is not None:
            attributes[names.ATTEMPT] = calls[0]
        if user is not None:
            attributes[names.MAILBOX_HASH] = telemetry.mailbox(user)
        started = time.perf_counter()
        with open_span(telemetry.tracer, f"{method} {route}", SpanKind.CLIENT, attributes) as span:
            try:
                result = await call()
            except BaseException as exc:
                error = type(exc).__name__
                span.set_attribute(names.ERROR_TYPE, error)
                span.add_event("exception", {names.EXCEPTION_TYPE: error})
                span.set_status(Status(StatusCode.ERROR))
                metric_attributes[names.ERROR_TYPE] = error
                telemetry.graph_duration.record(
                    time.perf_counter() - started, metric_attributes
                )
                raise
            response = result.response if isinstance(result, ReadAnswer) else result
            status = response.status
            span.set_attribute(names.HTTP_STATUS, status)
            if response.request_id:
                span.set_attribute(names.GRAPH_REQUEST_ID, response.request_id)
            metric_attributes[names.HTTP_STATUS] = status
            if status >= 400:
                span.set_attribute(names.ERROR_TYPE, str(status))
                span.set_status(Status(StatusCode.ERROR))
                metric_attributes[names.ERROR_TYPE] = str(status)
            if status == 429 or (status == 503 and response.retry_after is not None):
                telemetry.graph_throttles.add(
                    1, {names.URL_TEMPLATE: route, names.HTTP_STATUS: status}
                )
        telemetry.graph_duration.record(time.perf_counter() - started, metric_attributes)
        return result
