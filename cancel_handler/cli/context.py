"""What every command shares: the client factory (tests inject a double), connection options,
and the mapping of failures to exit codes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

from cancel_handler.core.errors import TargetError
from cancel_handler.core.redaction import first_line
from cancel_handler.ops.target import (
    NAMESPACE_ENV,
    QUEUE_ENV,
    ClientFactory,
    ServiceBusTarget,
    default_client_factory,
    resolve_target,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: `send --wait`: not every request was answered in time (the outcome is unknown, not failed).
EXIT_TIMEOUT = 3



class BadInput(click.ClickException):
    """Bad input that is not a command-line syntax error (exit code 2, no usage text)."""

    exit_code = EXIT_USAGE


@dataclass
class CliContext:
    """Dependencies of the commands, built once in `main()`."""

    client_factory: ClientFactory = field(default=default_client_factory)
    #: Monotonic seconds for deadlines (`send --wait`).
    clock: Callable[[], float] = field(default=time.monotonic)


def connection_options[F: Callable[..., Any]](command: F) -> F:
    """Add --namespace, --queue and --connection-string-env to a command."""
    options = [
        click.option(
            "--namespace",
            envvar=list(NAMESPACE_ENV),
            show_envvar=True,
            help="Service Bus namespace: a name (contoso-sb) or host "
            "(contoso-sb.servicebus.windows.net).",
        ),
        click.option(
            "--queue", envvar=QUEUE_ENV, show_envvar=True, help="The cancel queue's name."
        ),
        click.option(
            "--connection-string-env",
            metavar="VAR",
            help="Authenticate with the connection string held in environment variable VAR "
            "instead of Entra ID (the secret never appears on the command line).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def target_from(namespace: str | None, queue: str | None, conn_env: str | None) -> ServiceBusTarget:
    """Resolve the options into a target, or stop with exit code 2 and what to set."""
    try:
        return resolve_target(
            queue_name=queue,
            namespace=namespace,
            connection_string_env=conn_env,
            environ=os.environ,
        )
    except TargetError as exc:
        raise click.UsageError(str(exc)) from None


#: The role each kind of command needs on the queue (Azure built-in roles).
SENDER = "Azure Service Bus Data Sender"
RECEIVER = "Azure Service Bus Data Receiver"
SENDER_AND_RECEIVER = f"{RECEIVER} and {SENDER}"


@contextmanager
def service_bus_errors(target: ServiceBusTarget, role: str) -> Iterator[None]:
    """Turn SDK and sign-in failures into a one-line error and exit code 1; `role` is what the
    command needs on the queue."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as exc:
        raise click.ClickException(explain(exc, target, role)) from exc


def explain(exc: BaseException, target: ServiceBusTarget, role: str) -> str:
    """One line for a Service Bus or sign-in failure: what happened, where, and what to check."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.servicebus.exceptions import (
        ServiceBusAuthenticationError,
        ServiceBusAuthorizationError,
        ServiceBusCommunicationError,
        ServiceBusConnectionError,
    )

    namespace = target.fully_qualified_namespace or "(unknown namespace)"
    first = (first_line(exc) or type(exc).__name__).rstrip(".")
    if isinstance(exc, ClientAuthenticationError):
        return (
            f"sign-in failed: {first} (run `az login`, or check the identity in AZURE_* "
            "variables)"
        )
    if isinstance(exc, ServiceBusConnectionError | ServiceBusCommunicationError | OSError):
        return (
            f"cannot reach Service Bus namespace {namespace}: {first}. Check the namespace "
            "name, that DNS resolves it and no firewall, proxy or network rule blocks this "
            f"machine (AMQP, TCP port 5671), and that the signed-in identity has {role} on "
            f"queue {target.queue_name}"
        )
    if isinstance(exc, ServiceBusAuthorizationError | ServiceBusAuthenticationError) or (
        "unauthorized" in first.lower()
    ):
        return (
            f"Service Bus namespace {namespace} refused access: {first} (the signed-in "
            f"identity needs {role} on queue {target.queue_name})"
        )
    return f"Service Bus namespace {namespace}: {first}"
