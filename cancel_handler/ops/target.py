"""Which Service Bus namespace and queue to talk to, and how to authenticate.

Identity (Entra ID, `DefaultAzureCredential`) is the default. A connection string is accepted only
when the caller passes it explicitly; the command-line tool reads it from a named environment
variable so that the secret never appears in shell history or in the process list.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cancel_handler.core.entities import entity_name_problem
from cancel_handler.core.errors import TargetError
from cancel_handler.core.redaction import looks_like_connection_string

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusClient

#: Environment variables holding the namespace, first one set wins. The second is the Function
#: App's own setting, so a shell with the app settings loaded needs nothing more.
NAMESPACE_ENV = ("SERVICEBUS_NAMESPACE", "ServiceBusConnection__fullyQualifiedNamespace")
#: Environment variable holding the queue name (the Function App's own setting).
QUEUE_ENV = "CANCEL_QUEUE_NAME"
#: Appended to a bare namespace name (`contoso-sb` → `contoso-sb.servicebus.windows.net`).
DEFAULT_NAMESPACE_SUFFIX = ".servicebus.windows.net"

_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*$")
#: What to do with a connection string given where a name belongs.
_USE_CONNECTION_STRING_ENV = (
    "to sign in with a connection string, put it in an environment variable and pass "
    "--connection-string-env VAR"
)


@dataclass(frozen=True)
class ServiceBusTarget:
    """A queue in a namespace, reached with an identity or (explicitly) a connection string."""

    queue_name: str
    fully_qualified_namespace: str | None = None
    connection_string: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.queue_name:
            raise TargetError("queue", f"no queue name: pass --queue or set {QUEUE_ENV}")
        problem = queue_name_problem(self.queue_name)
        if problem:
            raise TargetError("queue", problem)
        if not self.fully_qualified_namespace and not self.connection_string:
            raise TargetError(
                "namespace",
                "no Service Bus namespace: pass --namespace or set " + " or ".join(NAMESPACE_ENV),
            )

    def client(self, credential: Any = None) -> ServiceBusClient:
        """A new `ServiceBusClient` (the caller closes it); `DefaultAzureCredential` unless a
        credential is given or the target holds a connection string."""
        from azure.servicebus import ServiceBusClient

        if self.connection_string:
            return ServiceBusClient.from_connection_string(self.connection_string)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        assert self.fully_qualified_namespace is not None
        return ServiceBusClient(self.fully_qualified_namespace, credential)

    @asynccontextmanager
    async def async_client(self, credential: Any = None) -> AsyncIterator[Any]:
        """An open `azure.servicebus.aio.ServiceBusClient`, closed on leaving; with the
        connection string, the async `credential` given, or else `azure.identity.aio`'s
        `DefaultAzureCredential` (closed with the client), which needs `aiohttp`."""
        from azure.servicebus.aio import ServiceBusClient

        if self.connection_string:
            async with ServiceBusClient.from_connection_string(self.connection_string) as own:
                yield own
            return
        own_credential = credential is None
        if own_credential:
            credential = _default_async_credential()
        assert self.fully_qualified_namespace is not None
        try:
            async with ServiceBusClient(self.fully_qualified_namespace, credential) as own:
                yield own
        finally:
            if own_credential:
                await credential.close()


def _default_async_credential() -> Any:
    try:
        import aiohttp  # noqa: F401 - azure-core's async transport for azure.identity.aio
    except ImportError:
        raise TargetError(
            "credential",
            "pass credential= (an async token credential), or install aiohttp to use "
            "azure.identity.aio.DefaultAzureCredential, or pass connection_string=",
        ) from None
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


#: Builds the client for a target; tests pass one returning a test double.
ClientFactory = Callable[[ServiceBusTarget], "ServiceBusClient"]


def default_client_factory(target: ServiceBusTarget) -> ServiceBusClient:
    """The production factory: a real client with `DefaultAzureCredential`."""
    return target.client()


def queue_name_problem(name: str) -> str | None:
    """Why `name` cannot be the cancel queue's name, or None; never repeats the name."""
    if looks_like_connection_string(name):
        return (
            "the value given looks like a connection string and is not shown; --queue (or "
            f"{QUEUE_ENV}) takes the queue's name, e.g. cancel-requests; "
            f"{_USE_CONNECTION_STRING_ENV}"
        )
    problem = entity_name_problem(name)
    return f"the value given is not a Service Bus queue name: {problem}" if problem else None


def normalize_namespace(value: str) -> str:
    """`contoso-sb`, `contoso-sb.servicebus.windows.net` or `sb://…/` → the host name. A bad
    value is never repeated in the error: it may be a key or connection string."""
    if looks_like_connection_string(value):
        raise TargetError(
            "namespace",
            "the value given looks like a connection string and is not shown; --namespace (or "
            f"{NAMESPACE_ENV[0]}) takes the namespace name or host, e.g. contoso-sb; "
            f"{_USE_CONNECTION_STRING_ENV}",
        )
    host = value.strip()
    for prefix in ("sb://", "https://", "amqps://"):
        if host.lower().startswith(prefix):
            host = host[len(prefix) :]
    host = host.rstrip("/")
    if host and "." not in host:
        host += DEFAULT_NAMESPACE_SUFFIX
    if not _HOST.match(host):
        raise TargetError(
            "namespace",
            "the value given is not a namespace name or host (expected e.g. contoso-sb or "
            f"contoso-sb{DEFAULT_NAMESPACE_SUFFIX}); it is not shown, as it may be a key",
        )
    return host


def resolve_target(
    *,
    queue_name: str | None,
    namespace: str | None,
    connection_string_env: str | None,
    environ: dict[str, str] | Any,
) -> ServiceBusTarget:
    """Build the target from explicit values (already merged with their environment variables
    by the caller) and, for a connection string, the named environment variable."""
    if connection_string_env:
        secret = (environ.get(connection_string_env) or "").strip()
        if not secret:
            raise TargetError(
                "connection string",
                f"environment variable {connection_string_env} is not set or empty",
            )
        host = connection_string_host(secret, connection_string_env)
        return ServiceBusTarget((queue_name or "").strip(), host, secret)
    host = normalize_namespace(namespace) if namespace and namespace.strip() else None
    return ServiceBusTarget((queue_name or "").strip(), host)


def connection_string_host(secret: str, variable: str) -> str:
    """The namespace host of a Service Bus connection string, checked with the SDK's own parser;
    :class:`TargetError` (which never repeats the value) when the SDK could not use it."""
    from azure.servicebus import parse_connection_string

    expected = (
        "expected Endpoint=sb://<namespace>.servicebus.windows.net/;SharedAccessKeyName=<name>;"
        "SharedAccessKey=<key>"
    )
    try:
        host = parse_connection_string(secret).fully_qualified_namespace
    except (ValueError, TypeError, AttributeError) as exc:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise TargetError(
            "connection string",
            f"environment variable {variable} does not hold a usable Service Bus connection "
            f"string ({reason}; {expected})",
        ) from None
    if not host or not _HOST.match(host):
        raise TargetError(
            "connection string",
            f"environment variable {variable}: the Endpoint is not a namespace host ({expected})",
        )
    return host
