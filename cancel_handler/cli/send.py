"""`cancel-handler send`: validate cancel requests with the function's contract, then send them."""

from __future__ import annotations

import json
import re

import click

from cancel_handler.cli.context import (
    SENDER,
    BadInput,
    CliContext,
    connection_options,
    explain,
    service_bus_errors,
    target_from,
)
from cancel_handler.cli.output import progress
from cancel_handler.core.errors import InvalidMessageError, InvalidRequestsError
from cancel_handler.ops.requests import OutgoingRequest, prepare_request, read_requests
from cancel_handler.ops.send import send_cancel_requests

#: Bad lines printed before the rest are only counted.
MAX_PROBLEMS_SHOWN = 100
#: How Python hands over command-line bytes that are not UTF-8 (PEP 383 surrogate escapes).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@click.command(
    epilog="Each JSON Lines record is a request body (userPrincipalName, eventId, comment) and "
    "may add requestId (the MessageId) and correlationId; other keys are not sent. Blank lines "
    "are skipped. stdout gets one JSON line per request sent; the summary goes to stderr. "
    "Exit codes: 0 all sent; 1 a send failed (later requests not sent); 2 bad input, "
    "nothing sent."
)
@click.option("--upn", help="The organizer's user principal name or Entra object id.")
@click.option("--event-id", help="The Graph (REST) id of the event in the organizer's mailbox.")
@click.option("--comment", help="Text sent to the attendees with the cancellation.")
@click.option(
    "--file",
    "file_",
    type=click.File("rb"),
    help="JSON Lines file of requests ('-' for stdin); all are validated before any is sent.",
)
@click.option("--request-id", help="MessageId for a single request (default: a new UUID).")
@click.option("--correlation-id", help="CorrelationId for a single request (default: MessageId).")
@click.option("--dry-run", is_flag=True, help="Validate and print; send nothing, connect nowhere.")
@connection_options
@click.pass_obj
def send(
    ctx: CliContext,
    upn: str | None,
    event_id: str | None,
    comment: str | None,
    file_,
    request_id: str | None,
    correlation_id: str | None,
    dry_run: bool,
    namespace: str | None,
    queue: str | None,
    connection_string_env: str | None,
) -> None:
    """Send cancel requests: one from --upn/--event-id, or many from --file."""
    requests = _requests(upn, event_id, comment, file_, request_id, correlation_id)
    if not requests:
        click.echo("nothing to send: the file holds no requests (only blank lines)", err=True)
        return
    if dry_run:
        for outgoing in requests:
            click.echo(json.dumps(outgoing.describe(), ensure_ascii=False))
        click.echo(f"dry run: {len(requests)} valid request(s); nothing sent", err=True)
        return
    target = target_from(namespace, queue, connection_string_env)
    with (
        service_bus_errors(target, SENDER),
        ctx.client_factory(target) as client,
        progress(len(requests), "sending", threshold=100) as bar,
    ):

        def sent(members: list[OutgoingRequest]) -> None:
            for outgoing in members:
                click.echo(json.dumps(outgoing.describe(), ensure_ascii=False))
            bar.update(len(members))

        summary = send_cancel_requests(client, target.queue_name, requests, on_sent=sent)
    click.echo(
        f"sent {len(summary.sent)} request(s) in {summary.batches} batch(es); "
        f"not sent {len(summary.unsent)}",
        err=True,
    )
    if summary.error is not None:
        first = summary.unsent[0]
        where = f"line {first.line}" if first.line is not None else first.message_id
        raise click.ClickException(
            f"sending stopped at {where}: {explain(summary.error, target, SENDER)}; requests "
            "from there on were not sent"
        )


def _requests(upn, event_id, comment, file_, request_id, correlation_id) -> list[OutgoingRequest]:
    if file_ is not None:
        if upn or event_id or comment or request_id or correlation_id:
            raise click.UsageError(
                "--file takes the requests and their ids from the file; do not combine it with "
                "--upn, --event-id, --comment, --request-id or --correlation-id"
            )
        try:
            return read_requests(file_)
        except InvalidRequestsError as exc:
            for line, problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
                click.echo(f"line {line}: {problem}", err=True)
            hidden = len(exc.problems) - MAX_PROBLEMS_SHOWN
            if hidden > 0:
                click.echo(f"... and {hidden} more invalid line(s)", err=True)
            raise BadInput(str(exc)) from None
    if not upn or not event_id:
        raise click.UsageError("give --upn and --event-id, or --file")
    options = {"--upn": upn, "--event-id": event_id, "--comment": comment}
    options |= {"--request-id": request_id, "--correlation-id": correlation_id}
    for option, value in options.items():
        if value is not None and _NOT_UTF8.search(value):
            raise BadInput(
                f"{option} is not valid UTF-8 text (check the encoding of the terminal or script "
                "that passed it); nothing was sent"
            )
    try:
        return [
            prepare_request(
                upn, event_id, comment, message_id=request_id, correlation_id=correlation_id
            )
        ]
    except InvalidMessageError as exc:
        raise BadInput(f"invalid request: {exc}; nothing was sent") from None
