"""Entry point of `cancel-handler`: the command group, exit codes and shared wiring.

Exit codes: 0 success; 1 the operation failed (Service Bus or sign-in error, a message not
found, some messages not sent/resubmitted/purged); 2 usage or bad input (unknown option or
reason, missing namespace or queue, invalid request, purge without --yes); 3 `send --wait`: not
every request was answered in time.
"""

from __future__ import annotations

import click

from cancel_handler.cli.context import CliContext
from cancel_handler.cli.dlq import dlq
from cancel_handler.cli.send import send

EPILOG = (
    "Exit codes: 0 ok; 1 operation failed; 2 usage or bad input; 3 send --wait timed out. "
    "Sign-in uses DefaultAzureCredential (az login, environment, managed identity)."
)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cancel-handler")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Send meeting cancel requests and inspect, resubmit or purge dead-lettered ones."""
    ctx.ensure_object(CliContext)


cli.add_command(send)
cli.add_command(dlq)


def main() -> None:
    """Console script `cancel-handler`."""
    cli(obj=CliContext())
