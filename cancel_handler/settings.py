"""App settings, read once from the environment into a frozen value object.

Every name here is an app setting of the Function App; `infra/` sets exactly these (a test keeps
the two lists equal). A missing or invalid value fails at start-up with an error naming the setting.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cancel_handler.core.contract import DEFAULT_RANGE_MAX_DAYS, RANGE_MAX_DAYS_CEILING
from cancel_handler.core.entities import ENTITY_NAME
from cancel_handler.core.errors import SettingsError
from cancel_handler.core.selection import DEFAULT_RANGE_MAX_EVENTS, RANGE_MAX_EVENTS_CEILING
from cancel_handler.host_settings import lock_renewal_seconds

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_GRAPH_TIMEOUT_SECONDS = 30.0
DEFAULT_RETRY_BUDGET_SECONDS = 60.0
DEFAULT_MAILBOX_CONCURRENCY = 4
DEFAULT_DELAYED_RETRY_MAX_COUNT = 0
DEFAULT_MAX_DELIVERY_COUNT = 0
#: Plain successes' traces kept a second per instance (Azure Monitor's rate-limited default).
DEFAULT_TRACE_SUCCESSES_PER_SECOND = 5.0
#: What one delivery needs besides its retry waits and its last Graph call: the token request
#: and the settlement (infra/app/servicebus.bicep sizes the queue's lock the same way).
INVOCATION_MARGIN_SECONDS = 30.0
#: The shortest CHILD_SESSION_KEY accepted (Bicep's uniqueString gives 13 characters).
CHILD_SESSION_KEY_MIN_LENGTH = 12

#: Settings the Python code reads (the trigger binding reads CANCEL_QUEUE_NAME and the
#: ServiceBusConnection__* group through the host).
CODE_SETTINGS = (
    "CANCEL_QUEUE_NAME",
    "CHILD_QUEUE_NAME",
    "CHILD_SESSION_KEY",
    "GRAPH_BASE_URL",
    "AZURE_CLIENT_ID",
    "GRAPH_TIMEOUT_SECONDS",
    "CANCEL_RETRY_BUDGET_SECONDS",
    "GRAPH_MAILBOX_CONCURRENCY",
    "DELAYED_RETRY_MAX_COUNT",
    "RANGE_MAX_DAYS",
    "RANGE_MAX_EVENTS",
    "REPLY_TO_ALLOWED",
    "MAX_DELIVERY_COUNT",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "TELEMETRY_HASH_KEY",
    "TRACE_SUCCESSES_PER_SECOND",
)

#: Settings only the Functions host reads (identity-based trigger connection and storage).
HOST_SETTINGS = (
    "ServiceBusConnection__credential",
    "ServiceBusConnection__clientId",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "PYTHON_ISOLATE_WORKER_DEPENDENCIES",
)

#: Settings the Python worker and its Azure Monitor distro read (docs/operate.md, "Telemetry"):
#: the worker configures OpenTelemetry itself (azure-functions-runtime 1.3.0,
#: handle_event.worker_init_request), every span is kept (no head sampling drops a failure),
#: no metric point is offered as an exemplar (Azure Monitor sends none), and the distro's HTTP
#: instrumentations stay off (they would record Graph URLs, which hold the UPN).
TELEMETRY_SETTINGS = (
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "OTEL_TRACES_SAMPLER",
    "OTEL_METRICS_EXEMPLAR_FILTER",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
)


@dataclass(frozen=True)
class Settings:
    """The function's configuration; build it with :func:`load_settings`."""

    queue_name: str = ""
    #: The session-enabled queue of date ranges' children; empty = the cancel queue, no session.
    child_queue_name: str = ""
    #: The key of the organizer hash in the children's SessionIds.
    child_session_key: str = ""
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    managed_identity_client_id: str | None = None
    graph_timeout_seconds: float = DEFAULT_GRAPH_TIMEOUT_SECONDS
    retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS
    mailbox_concurrency: int = DEFAULT_MAILBOX_CONCURRENCY
    delayed_retry_max_count: int = DEFAULT_DELAYED_RETRY_MAX_COUNT
    range_max_days: int = DEFAULT_RANGE_MAX_DAYS
    range_max_events: int = DEFAULT_RANGE_MAX_EVENTS
    #: Entities replies may be sent to; empty = replies off.
    reply_to_allowed: tuple[str, ...] = ()
    #: The queue's maxDeliveryCount; 0 = the last-delivery rule is off.
    max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT
    servicebus_namespace: str | None = None
    #: The key of the mailbox hash in telemetry (`cancel.mailbox.hash`); never shown.
    telemetry_hash_key: str = field(default="", repr=False)
    #: Plain successes' traces kept a second on one instance; None = every one (telemetry only).
    trace_successes_per_second: float | None = DEFAULT_TRACE_SUCCESSES_PER_SECOND

    @property
    def graph_scope(self) -> str:
        """Token scope for Graph: `<scheme>://<host>/.default` of the base URL."""
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`SettingsError` naming the bad one."""
    env = os.environ if environ is None else environ

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    base_url = _graph_base_url(text("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL)
    queue_name = text("CANCEL_QUEUE_NAME") or ""
    namespace = text("ServiceBusConnection__fullyQualifiedNamespace")
    child_queue_name, child_session_key = _child_queue(
        text("CHILD_QUEUE_NAME"), text("CHILD_SESSION_KEY"), queue_name, namespace
    )
    settings = Settings(
        queue_name=queue_name,
        child_queue_name=child_queue_name,
        child_session_key=child_session_key,
        graph_base_url=base_url,
        managed_identity_client_id=text("AZURE_CLIENT_ID"),
        graph_timeout_seconds=_positive_float(
            "GRAPH_TIMEOUT_SECONDS", text("GRAPH_TIMEOUT_SECONDS"), DEFAULT_GRAPH_TIMEOUT_SECONDS
        ),
        retry_budget_seconds=_non_negative_float(
            "CANCEL_RETRY_BUDGET_SECONDS",
            text("CANCEL_RETRY_BUDGET_SECONDS"),
            DEFAULT_RETRY_BUDGET_SECONDS,
        ),
        mailbox_concurrency=_int_in_range(
            "GRAPH_MAILBOX_CONCURRENCY",
            text("GRAPH_MAILBOX_CONCURRENCY"),
            DEFAULT_MAILBOX_CONCURRENCY,
            low=1,
            high=64,
        ),
        delayed_retry_max_count=_int_in_range(
            "DELAYED_RETRY_MAX_COUNT",
            text("DELAYED_RETRY_MAX_COUNT"),
            DEFAULT_DELAYED_RETRY_MAX_COUNT,
            low=0,
            high=100,
        ),
        range_max_days=_int_in_range(
            "RANGE_MAX_DAYS",
            text("RANGE_MAX_DAYS"),
            DEFAULT_RANGE_MAX_DAYS,
            low=1,
            high=RANGE_MAX_DAYS_CEILING,
        ),
        range_max_events=_int_in_range(
            "RANGE_MAX_EVENTS",
            text("RANGE_MAX_EVENTS"),
            DEFAULT_RANGE_MAX_EVENTS,
            low=0,
            high=RANGE_MAX_EVENTS_CEILING,
        ),
        reply_to_allowed=_reply_entities(
            text("REPLY_TO_ALLOWED"), queue_name, namespace, child_queue_name
        ),
        max_delivery_count=_int_in_range(
            "MAX_DELIVERY_COUNT",
            text("MAX_DELIVERY_COUNT"),
            DEFAULT_MAX_DELIVERY_COUNT,
            low=0,
            high=2**31 - 1,
        ),
        servicebus_namespace=namespace,
        telemetry_hash_key=text("TELEMETRY_HASH_KEY") or "",
        trace_successes_per_second=_successes_per_second(text("TRACE_SUCCESSES_PER_SECOND")),
    )
    _fits_the_lock_renewal(settings, lock_renewal_seconds(env))
    return settings


def _fits_the_lock_renewal(settings: Settings, renewal: float) -> None:
    """The longest delivery (the retry budget, one more Graph call and the margin) must end
    while the host still renews the message's lock, or the message comes back mid-work."""
    longest = (
        settings.retry_budget_seconds + settings.graph_timeout_seconds + INVOCATION_MARGIN_SECONDS
    )
    if longest <= renewal:
        return
    fits = (
        f"outlasts the {renewal:g} s the host renews a message's lock "
        "(maxAutoLockRenewalDuration)"
    )
    most = renewal - settings.graph_timeout_seconds - INVOCATION_MARGIN_SECONDS
    if most < 0:
        raise SettingsError(
            "GRAPH_TIMEOUT_SECONDS",
            f"{settings.graph_timeout_seconds:g} s for one Graph call, plus "
            f"{INVOCATION_MARGIN_SECONDS:g} s for the token and the settlement, {fits}; set it "
            f"to at most {renewal - INVOCATION_MARGIN_SECONDS:g}",
        )
    raise SettingsError(
        "CANCEL_RETRY_BUDGET_SECONDS",
        f"{settings.retry_budget_seconds:g} s of retrying, plus GRAPH_TIMEOUT_SECONDS "
        f"({settings.graph_timeout_seconds:g} s) and {INVOCATION_MARGIN_SECONDS:g} s for the "
        f"token and the settlement, {fits}; set it to at most {most:g}",
    )


def _child_queue(
    raw: str | None, key: str | None, queue_name: str, namespace: str | None
) -> tuple[str, str]:
    """CHILD_QUEUE_NAME (a queue name other than the cancel queue's) and CHILD_SESSION_KEY,
    which it needs; both empty when children stay on the cancel queue."""
    name = "CHILD_QUEUE_NAME"
    if raw is None:
        return "", ""
    if not ENTITY_NAME.fullmatch(raw):
        raise SettingsError(
            name,
            f"{raw!r} is not a Service Bus queue name (letters, digits, '.', '-', '_', '/'; "
            "starting and ending with a letter or digit; at most 260 characters)",
        )
    if queue_name and raw.casefold() == queue_name.casefold():
        raise SettingsError(
            name, f"must name a session-enabled queue of its own, not the cancel queue {raw!r}"
        )
    if not namespace:
        raise SettingsError(
            name, "children are sent through ServiceBusConnection__fullyQualifiedNamespace: set it"
        )
    if key is None or len(key) < CHILD_SESSION_KEY_MIN_LENGTH:
        raise SettingsError(
            "CHILD_SESSION_KEY",
            f"CHILD_QUEUE_NAME needs a key of at least {CHILD_SESSION_KEY_MIN_LENGTH} characters "
            "for the organizer hash in the children's SessionIds",
        )
    return raw, key


def _reply_entities(
    raw: str | None, queue_name: str, namespace: str | None, child_queue: str
) -> tuple[str, ...]:
    """REPLY_TO_ALLOWED: comma-separated queue or topic names; never the cancel queue nor the
    children queue (a reply there would be taken for a request)."""
    name = "REPLY_TO_ALLOWED"
    entities = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    for entity in entities:
        if not ENTITY_NAME.fullmatch(entity):
            raise SettingsError(
                name,
                f"{entity!r} is not a Service Bus queue or topic name (letters, digits, '.', "
                "'-', '_', '/'; starting and ending with a letter or digit; at most 260 "
                "characters)",
            )
        if queue_name and entity.casefold() == queue_name.casefold():
            raise SettingsError(name, f"must not name the cancel queue {queue_name!r} itself")
        if child_queue and entity.casefold() == child_queue.casefold():
            raise SettingsError(name, f"must not name the children queue {child_queue!r}")
    if entities and not namespace:
        raise SettingsError(
            name, "replies need ServiceBusConnection__fullyQualifiedNamespace to be set too"
        )
    return entities


def _graph_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError("GRAPH_BASE_URL", f"must be an absolute https:// URL, got {value!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError("GRAPH_BASE_URL", "must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            "GRAPH_BASE_URL",
            f"plain http:// is allowed only for loopback hosts (bearer tokens never travel "
            f"unencrypted), got host {parts.hostname!r}",
        )
    return value.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive_float(name: str, raw: str | None, default: float) -> float:
    value = _non_negative_float(name, raw, default)
    if value == 0:
        raise SettingsError(name, "must be greater than 0")
    return value


def _non_negative_float(name: str, raw: str | None, default: float) -> float:
    if raw is None:
        return default
    value = _parsed(name, raw, float, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise SettingsError(name, f"must be a finite number >= 0, got {raw!r}")
    return value


def _successes_per_second(raw: str | None) -> float | None:
    """`all` (None: keep every trace), or a finite number >= 0 of traces a second."""
    name = "TRACE_SUCCESSES_PER_SECOND"
    if raw is None:
        return DEFAULT_TRACE_SUCCESSES_PER_SECOND
    if raw.lower() == "all":
        return None
    value = _parsed(name, raw, float, "`all` or a number of traces a second")
    if not math.isfinite(value) or value < 0:
        raise SettingsError(name, f"must be `all` or a finite number >= 0, got {raw!r}")
    return value


def _int_in_range(name: str, raw: str | None, default: int, *, low: int, high: int) -> int:
    if raw is None:
        return default
    value = _parsed(name, raw, int, "a whole number")
    if not low <= value <= high:
        raise SettingsError(name, f"must be between {low} and {high}, got {value}")
    return value


def _parsed[T](name: str, raw: str, parse: Callable[[str], T], expected: str) -> T:
    """`raw` read with `parse` (`float`, `int`), or a SettingsError saying what was expected."""
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(name, f"must be {expected}, got {raw!r}") from None
