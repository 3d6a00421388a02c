"""`cancel-handler send`: validate cancel requests with the function's contract, then send them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import click

from cancel_handler.cli.context import (
    EXIT_FAILED,
    EXIT_TIMEOUT,
    RECEIVER,
    SENDER,
    BadInput,
    CliContext,
    connection_options,
    explain,
    service_bus_errors,
    target_from,
)
from cancel_handler.cli.output import progress, safe
from cancel_handler.core.contract import DEFAULT_RANGE_MAX_DAYS
from cancel_handler.core.errors import InvalidMessageError, InvalidRequestsError
from cancel_handler.ops.replies import ReceivedReply, ReplyWait, new_session_id, wait_for_replies
from cancel_handler.ops.requests import (
    OutgoingRequest,
    check_reply,
    prepare_request,
    read_requests,
)
from cancel_handler.ops.send import send_cancel_requests

#: Bad lines printed before the rest are only counted.
MAX_PROBLEMS_SHOWN = 100
#: How Python hands over command-line bytes that are not UTF-8 (PEP 383 surrogate escapes).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@click.command(
    epilog="Each JSON Lines record is a request body (userPrincipalName; eventId, iCalUId, or "
    "startDateTime with endDateTime and optional preview; comment) and may add requestId (the "
    "MessageId) and correlationId; other keys are not sent. Blank lines are skipped. "
    "stdout gets one JSON line per request sent; the summary goes to stderr. "
    "With --reply-to ENTITY --wait SECONDS the replies are read from your own session of that "
    "session-enabled queue and printed as JSON lines too (a fanned-out date range is answered "
    "when each of its child requests is). "
    "Exit codes: 0 all sent (with --wait: all cancelled, already cancelled or previewed); 1 a "
    "send failed (later requests not sent) or, with --wait, any request was dead-lettered; 2 "
    "bad input, nothing sent; 3 with --wait: not every request was answered in time."
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
@click.option(
    "--request-id", "message_id", help="MessageId for a single request (default: a new UUID)."
)
@click.option("--correlation-id", help="CorrelationId for a single request (default: MessageId).")
@click.option(
    "--reply-to",
    metavar="ENTITY",
    help="Ask for a reply on this session-enabled queue (it must be in the function's "
    "REPLY_TO_ALLOWED, and is never the cancel queue).",
)
@click.option(
    "--reply-session-id",
    metavar="ID",
    help="Session id for the replies, at most 128 characters (default: a new UUID, so "
    "concurrent senders never take each other's replies).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --reply-to: wait up to SECONDS for every request's reply; the exit code says "
    "how they ended.",
)
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
    message_id: str | None,
    correlation_id: str | None,
    reply_to: str | None,
    reply_session_id: str | None,
    wait_seconds: float | None,
    dry_run: bool,
    namespace: str | None,
    queue: str | None,
    connection_string_env: str | None,
) -> None:
    """Send cancel requests: one from --upn with --event-id, --ical-uid or --from/--to, or
    many from --file."""
    if (wait_seconds is not None or reply_session_id) and not reply_to:
        raise click.UsageError("--wait and --reply-session-id need --reply-to")
    session_id = (reply_session_id or new_session_id()) if reply_to else None
    if reply_to:
        _check_reply(reply_to, session_id, queue)
    meeting = MeetingTarget(event_id, ical_uid, from_, to, preview)
    requests = _requests(upn, meeting, comment, file_, message_id, correlation_id, max_days)
    if not requests:
        click.echo("nothing to send: the file holds no requests (only blank lines)", err=True)
        return
    if reply_to:
        requests = [outgoing.with_reply(reply_to, session_id) for outgoing in requests]
    if dry_run:
        for outgoing in requests:
            click.echo(json.dumps(outgoing.describe(), ensure_ascii=False))
        click.echo(f"dry run: {len(requests)} valid request(s); nothing sent", err=True)
        return
    target = target_from(namespace, queue, connection_string_env)
    from cancel_handler.telemetry.local import sender_tracer_provider

    tracer_provider = sender_tracer_provider()
    with (
        service_bus_errors(target, SENDER),
        ctx.client_factory(target) as client,
        progress(len(requests), "sending", threshold=100) as bar,
    ):

        def sent(members: list[OutgoingRequest]) -> None:
            for outgoing in members:
                click.echo(json.dumps(outgoing.describe(), ensure_ascii=False))
            bar.update(len(members))

        summary = send_cancel_requests(
            client, target.queue_name, requests, on_sent=sent, tracer_provider=tracer_provider
        )
    tracer_provider.shutdown()  # exports the producer spans when OTLP is configured
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
    if wait_seconds is None or reply_to is None:
        return
    with service_bus_errors(target, RECEIVER), ctx.client_factory(target) as client:
        waited = wait_for_replies(
            client,
            reply_to,
            session_id,
            [outgoing.message_id for outgoing in summary.sent],
            wait_seconds,
            on_reply=_print_reply,
            clock=ctx.clock,
        )
    _finish(waited, wait_seconds)


#: The send options that set a reply address, by the field they set.
_REPLY_OPTIONS = {"replyTo": "--reply-to", "replyToSessionId": "--reply-session-id"}


def _check_reply(reply_to: str, session_id: str | None, queue: str | None) -> None:
    """Refuse, before reading any request, a reply address the send would fail on or the
    function would never answer (then --wait could only time out)."""
    try:
        check_reply(reply_to, session_id, cancel_queue=(queue or "").strip() or None)
    except InvalidMessageError as exc:
        option = _REPLY_OPTIONS[exc.field]
        raise BadInput(f"{option} {exc.problem}; nothing was sent") from None


def _print_reply(reply: ReceivedReply) -> None:
    click.echo(json.dumps({"reply": reply.describe()}, ensure_ascii=False))


def _finish(waited: ReplyWait, wait_seconds: float) -> None:
    """Summarise the replies on stderr and exit 0 (all succeeded), 1 (any dead-lettered:
    known failures come first) or 3 (some unanswered in time)."""
    done = len(waited.replies) - len(waited.dead_lettered)
    click.echo(
        f"replies: {done} succeeded (cancelled, already cancelled, fanned out or previewed), "
        f"{len(waited.dead_lettered)} dead-lettered, {len(waited.missing)} unanswered after "
        f"{wait_seconds:g}s",
        err=True,
    )
    for reply in waited.dead_lettered:
        click.echo(
            f"dead-lettered {safe(reply.request_message_id)}: {safe(reply.reason)}: "
            f"{safe(reply.description)}",
            err=True,
        )
    for message_id in waited.missing:
        click.echo(f"no reply yet for {safe(message_id)} (outcome unknown)", err=True)
    if waited.dead_lettered:
        click.get_current_context().exit(EXIT_FAILED)
    if waited.timed_out:
        click.get_current_context().exit(EXIT_TIMEOUT)


@dataclass(frozen=True)
class MeetingTarget:
    """The options naming what a single request cancels."""

    event_id: str | None
    ical_uid: str | None
    start: str | None
    end: str | None
    preview: bool | None

    def given(self) -> bool:
        """True when any target option was given."""
        return any(value is not None for value in vars(self).values())


def _requests(
    upn, meeting: MeetingTarget, comment, file_, message_id, correlation_id, max_days: int
) -> list[OutgoingRequest]:
    if file_ is not None:
        if upn or meeting.given() or comment or message_id or correlation_id:
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
    if not upn or not meeting.given():
        raise click.UsageError(
            "give --upn and one of --event-id, --ical-uid or --from/--to; or --file"
        )
    options = {"--upn": upn, "--event-id": meeting.event_id, "--ical-uid": meeting.ical_uid}
    options |= {"--from": meeting.start, "--to": meeting.end, "--comment": comment}
    options |= {"--request-id": message_id, "--correlation-id": correlation_id}
    for option, value in options.items():
        if value is not None and _NOT_UTF8.search(value):
            raise BadInput(
                f"{option} is not valid UTF-8 text (check the encoding of the terminal or script "
                "that passed it); nothing was sent"
            )
    try:
        return [
            prepare_request(
                upn,
                meeting.event_id,
                comment,
                ical_uid=meeting.ical_uid,
                start_date_time=meeting.start,
                end_date_time=meeting.end,
                preview=meeting.preview,
                message_id=message_id,
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
