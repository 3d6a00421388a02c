"""Every span name, attribute and metric the function emits, named once.

OpenTelemetry's semantic conventions are used where they have a name (messaging, HTTP client,
error.type); the product's own facts are under `cancel.`. No value here ever holds a UPN, an
e-mail address, a comment, a token or a Graph URL: mailboxes appear only as
:func:`cancel_handler.telemetry.mailbox.mailbox_hash`, Graph calls only by route template.
docs/operate.md's KQL and infra/app/workbook.bicep query these names;
tests/test_telemetry_queries.py keeps both sides equal.
"""

from __future__ import annotations

#: The instrumentation scope of the function's tracer and meter.
SCOPE = "cancel_handler"

# Semantic conventions: messaging (https://opentelemetry.io/docs/specs/semconv/messaging/).
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_SYSTEM_SERVICEBUS = "servicebus"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_CONVERSATION_ID = "messaging.message.conversation_id"
MESSAGING_BATCH_COUNT = "messaging.batch.message_count"
MESSAGING_DELIVERY_COUNT = "messaging.servicebus.message.delivery_count"
# Semantic conventions: HTTP client spans (https://opentelemetry.io/docs/specs/semconv/http/).
HTTP_METHOD = "http.request.method"
HTTP_STATUS = "http.response.status_code"
URL_TEMPLATE = "url.template"
SERVER_ADDRESS = "server.address"
ERROR_TYPE = "error.type"
EXCEPTION_TYPE = "exception.type"

# The product's own attributes.
#: The ids again under `cancel.`: Azure Monitor's exporter files `messaging.*` attributes under
#: its own fields and leaves them out of customDimensions, where the workbook looks them up
#: (azure-monitor-opentelemetry-exporter, export/trace/_exporter.py, _is_standard_attribute).
MESSAGE_ID = "cancel.message_id"
CORRELATION_ID = "cancel.correlation_id"
DELIVERY_COUNT = "cancel.delivery_count"
#: The route template again: the exporter names an HTTP dependency from `url.full` (absent here,
#: so "POST /") and leaves `url.template` out of customDimensions.
GRAPH_ROUTE = "cancel.graph.route"
OUTCOME = "cancel.outcome"
REASON = "cancel.reason"
GRAPH_STATUS = "cancel.graph.status"
GRAPH_REQUEST_ID = "cancel.graph.request_id"
ATTEMPTS = "cancel.attempts"
#: 1 for a message's first Graph call, 2 for its second (a retry, or the cancel after a lookup).
ATTEMPT = "cancel.attempt"
TARGET_KIND = "cancel.target.kind"
MAILBOX_HASH = "cancel.mailbox.hash"
PARENT_MESSAGE_ID = "cancel.parent_message_id"
REQUEST_MESSAGE_ID = "cancel.request_message_id"
FANOUT_SIZE = "cancel.fanout.size"
#: The share (percent) a kept success was sampled at; Azure Monitor's exporter turns it into the
#: row's `itemCount` and keeps it out of customDimensions (its `_SAMPLE_RATE_KEY`).
SAMPLE_RATE = "_MS.sampleRate"

#: Every attribute a span of the function may carry (the privacy test checks values, the query
#: test checks that the KQL names only these).
SPAN_ATTRIBUTES = frozenset(
    {
        MESSAGING_SYSTEM,
        MESSAGING_OPERATION_TYPE,
        MESSAGING_OPERATION_NAME,
        MESSAGING_DESTINATION,
        MESSAGING_MESSAGE_ID,
        MESSAGING_CONVERSATION_ID,
        MESSAGING_BATCH_COUNT,
        MESSAGING_DELIVERY_COUNT,
        HTTP_METHOD,
        HTTP_STATUS,
        URL_TEMPLATE,
        SERVER_ADDRESS,
        ERROR_TYPE,
        MESSAGE_ID,
        CORRELATION_ID,
        DELIVERY_COUNT,
        GRAPH_ROUTE,
        OUTCOME,
        REASON,
        GRAPH_STATUS,
        GRAPH_REQUEST_ID,
        ATTEMPTS,
        ATTEMPT,
        TARGET_KIND,
        MAILBOX_HASH,
        PARENT_MESSAGE_ID,
        REQUEST_MESSAGE_ID,
        FANOUT_SIZE,
        SAMPLE_RATE,
    }
)

# Metrics. Durations in seconds, as the conventions ask.
#: Semantic conventions: duration of processing one message (histogram, s). Its count is the
#: messages settled, by outcome and reason (`valueCount` in Application Insights).
METRIC_PROCESS_DURATION = "messaging.process.duration"
#: Semantic conventions: duration of one HTTP client request, here one Graph call (histogram, s).
METRIC_GRAPH_DURATION = "http.client.request.duration"
#: Graph answers asking the function to slow down: 429, or 503 with Retry-After (counter).
METRIC_GRAPH_THROTTLES = "cancel_handler.graph.throttles"
#: Share of the in-process retry budget one message waited (histogram, 1).
METRIC_RETRY_BUDGET = "cancel_handler.retry_budget.utilization"
#: Child requests one date range was fanned out into (histogram, {message}).
METRIC_FANOUT_SIZE = "cancel_handler.fanout.size"

METRICS = frozenset(
    {
        METRIC_PROCESS_DURATION,
        METRIC_GRAPH_DURATION,
        METRIC_GRAPH_THROTTLES,
        METRIC_RETRY_BUDGET,
        METRIC_FANOUT_SIZE,
    }
)

#: Target kinds (`cancel.target.kind`): the contract's target, or `none` for a body that broke it.
TARGET_KINDS = {"eventId": "eventId", "iCalUId": "iCalUId", "startDateTime/endDateTime": "range"}
TARGET_NONE = "none"

# Graph routes, as templates: a Graph URL holds the organizer's UPN, so it is never recorded.
ROUTE_CANCEL = "/users/{id}/events/{id}/cancel"
ROUTE_EVENTS = "/users/{id}/events"
ROUTE_CALENDAR_VIEW = "/users/{id}/calendarView"
ROUTE_OTHER = "/{other}"
ROUTES = (ROUTE_CANCEL, ROUTE_EVENTS, ROUTE_CALENDAR_VIEW, ROUTE_OTHER)
