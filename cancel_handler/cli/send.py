"""`cancel-handler send`: validate cancel requests with the function's contract, then send them."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click

from cancel_handler.cli.context import (
    BadInput,
    CliContext,
    connection_options,
    service_bus_errors,
    target_from,
)
from cancel_handler.cli.output import progress
from cancel_handler.core.contract import DEFAULT_RANGE_MAX_DAYS
from cancel_handler.core.errors import InvalidMessageError, InvalidRequestsError
from cancel_handler.ops.requests import OutgoingRequest, prepare_request, read_requests
from cancel_handler.ops.send import send_cancel_requests

#: Bad lines printed before the rest are only counted.
MAX_PROBLEMS_SHOWN = 100


@click.command(
    epilog="Each JSON Lines record is a request body (userPrincipalName; eventId, iCalUId, or "
    "startDateTime with endDateTime and optional preview; comment) and may add requestId (the "
    "MessageId) and correlationId; other keys are not sent. Blank lines are skipped. "
    "stdout gets one JSON line per request sent; the summary goes to stderr. "
    "Exit codes: 0 all sent; 1 a send failed (later requests not sent); 2 bad input, "
    "nothing sent."
)
@click.option("--upn", help="The organizer's user principal name or Entra object id.")
@click.option("--event-id", help="The Graph (REST) id of the event in the organizer's mailbox.")
@click.option("--ical-uid", help="The event's iCalendar UID (found in the organizer's mailbox).")
@click.option(
    "--from",
    "from_",
    metavar="DATETIME",
    help="Start of a date range: RFC 3339 with an offset, e.g. 2026-07-01T00:00:00+02:00.",
)
@click.option("--to", "to", metavar="DATETIME", help="End of the date range (with --from).")
@click.option(
    "--preview", is_flag=True, default=None, help="Date range only: list, cancel nothing."
)
@click.option(
    "--max-days",
    type=int,
    default=DEFAULT_RANGE_MAX_DAYS,
    envvar="RANGE_MAX_DAYS",
    show_default=True,
    show_envvar=True,
    help="The function's RANGE_MAX_DAYS: longer ranges are refused before sending.",
)
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
    ical_uid: str | None,
    from_: str | None,
    to: str | None,
    preview: bool | None,
    max_days: int,
    comment: str | None,
    file_,
    request_id: str | None,
    correlation_id: str | None,
    dry_run: bool,
    namespace: str | None,
    queue: str | None,
    connection_string_env: str | None,
) -> None:
    """Send cancel requests: one from --upn with --event-id, --ical-uid or --from/--to, or
    many from --file."""
    target = Target(event_id, ical_uid, from_, to, preview)
    requests = _requests(upn, target, comment, file_, request_id, correlation_id, max_days)
    if dry_run:
        for outgoing in requests:
            click.echo(json.dumps(outgoing.describe(), ensure_ascii=False))
        click.echo(f"dry run: {len(requests)} valid request(s); nothing sent", err=True)
        return
    target = target_from(namespace, queue, connection_string_env)
    with (
        service_bus_errors(),
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
            f"sending stopped at {where}: {summary.error}; requests from there on were not sent"
        )


@dataclass(frozen=True)
class Target:
    """The target options of a single request."""

    event_id: str | None
    ical_uid: str | None
    start: str | None
    end: str | None
    preview: bool | None

    def given(self) -> bool:
        """True when any target option was given."""
        return any(value is not None for value in vars(self).values())


def _requests(
    upn, target: Target, comment, file_, request_id, correlation_id, max_days: int
) -> list[OutgoingRequest]:
    if file_ is not None:
        if upn or target.given() or comment or request_id or correlation_id:
            raise click.UsageError(
                "--file takes the requests and their ids from the file; do not combine it with "
                "--upn, --event-id, --ical-uid, --from, --to, --preview, --comment, "
                "--request-id or --correlation-id"
            )
        try:
            return read_requests(file_, max_range_days=max_days)
        except InvalidRequestsError as exc:
            for line, problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
                click.echo(f"line {line}: {problem}", err=True)
            hidden = len(exc.problems) - MAX_PROBLEMS_SHOWN
            if hidden > 0:
                click.echo(f"... and {hidden} more invalid line(s)", err=True)
            raise BadInput(str(exc)) from None
    if not upn or not target.given():
        raise click.UsageError(
            "give --upn and one of --event-id, --ical-uid or --from/--to; or --file"
        )
    try:
        return [
            prepare_request(
                upn,
                target.event_id,
                comment,
                ical_uid=target.ical_uid,
                start_date_time=target.start,
                end_date_time=target.end,
                preview=target.preview,
                message_id=request_id,
                correlation_id=correlation_id,
                max_range_days=max_days,
            )
        ]
    except InvalidMessageError as exc:
        raise BadInput(f"invalid request: {_option_names(str(exc))}; nothing was sent") from None


def _option_names(problem: str) -> str:
    """The contract's field names in a problem, followed by the options that set them."""
    for field, option in (("startDateTime", "--from"), ("endDateTime", "--to")):
        if problem.startswith(f"{field}:"):
            return f"{field} ({option}){problem[len(field):]}"
    return problem
