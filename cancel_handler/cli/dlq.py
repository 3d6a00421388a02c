"""`cancel-handler dlq …`: list, show, resubmit and purge dead-lettered cancel requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from cancel_handler.cli.context import (
    RECEIVER,
    SENDER_AND_RECEIVER,
    BadInput,
    CliContext,
    connection_options,
    service_bus_errors,
    target_from,
)
from cancel_handler.cli.output import as_json, details, progress, safe, table
from cancel_handler.ops.deadletters import (
    KNOWN_REASONS,
    DeadLetter,
    Selection,
    parse_time,
    peek_dead_letters,
    peek_one,
)
from cancel_handler.ops.repair import (
    RepairSummary,
    purge_dead_letters,
    resubmit_dead_letters,
    resubmitted_id,
)

DEFAULT_LIST_MAX = 100


class IsoTime(click.ParamType):
    """An ISO 8601 date or date-time (UTC unless it carries an offset)."""

    name = "ISO-8601"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return parse_time(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time", param, ctx)


def filter_options(command: Callable) -> Callable:
    """--reason, --since, --until (shared by list, resubmit and purge)."""
    options = [
        click.option(
            "--reason",
            "reasons",
            multiple=True,
            type=click.Choice(KNOWN_REASONS),
            help="Only this dead-letter reason (repeatable).",
        ),
        click.option("--since", type=IsoTime(), help="Enqueued at or after (ISO 8601, UTC)."),
        click.option("--until", type=IsoTime(), help="Enqueued before (ISO 8601, UTC)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse, before connecting, a --since/--until window no message can be in."""
    if since is not None and until is not None and since >= until:
        raise click.UsageError(
            f"--since {since.isoformat()} is not earlier than --until {until.isoformat()}, so "
            "no message can match (--since is inclusive, --until exclusive)"
        )


@click.group()
def dlq() -> None:
    """Inspect and repair the cancel queue's dead-letter queue (peek never removes anything)."""


@dlq.command("list", epilog="Exit codes: 0 ok; 1 Service Bus error; 2 bad option.")
@filter_options
@click.option(
    "--max",
    "max_",
    type=click.IntRange(min=1),
    default=DEFAULT_LIST_MAX,
    show_default=True,
    help="Show at most this many messages.",
)
@click.option("--json", "as_json_", is_flag=True, help="Print a JSON array instead of a table.")
@connection_options
@click.pass_obj
def list_(
    ctx: CliContext, reasons, since, until, max_, as_json_, namespace, queue, connection_string_env
) -> None:
    """Peek dead-lettered messages in sequence-number order."""
    check_window(since, until)
    selection = Selection(frozenset(reasons), since=since, until=until)
    target = target_from(namespace, queue, connection_string_env)
    with service_bus_errors(target, RECEIVER), ctx.client_factory(target) as client:
        # One more than shown, to know whether more exist.
        letters = list(peek_dead_letters(client, target.queue_name, selection, limit=max_ + 1))
    following = letters[max_] if len(letters) > max_ else None
    letters = letters[:max_]
    if as_json_:
        click.echo(as_json([letter.to_json() for letter in letters]))
    else:
        click.echo(table(letters))
        click.echo(f"{len(letters)} message(s)", err=True)
    if following is not None:
        click.echo(_more_hint(max_, following), err=True)


def _more_hint(shown: int, following: DeadLetter) -> str:
    when = following.enqueued_time
    resume = (
        f", or continue with --since {when.isoformat()} (the next one's enqueued time)"
        if when is not None
        else ""
    )
    return (
        f"more than {shown} dead-lettered messages match; these are the oldest {shown}. "
        f"See more with --max {shown * 10}, narrow with --reason, --since or --until{resume}"
    )


@dlq.command(epilog="Exit codes: 0 ok; 1 not found or Service Bus error; 2 bad option.")
@click.argument("sequence_number", type=click.IntRange(min=0), metavar="SEQ")
@click.option("--json", "as_json_", is_flag=True, help="Print JSON instead of text.")
@connection_options
@click.pass_obj
def show(
    ctx: CliContext, sequence_number, as_json_, namespace, queue, connection_string_env
) -> None:
    """Peek one dead-lettered message in full (with comment, properties and body)."""
    target = target_from(namespace, queue, connection_string_env)
    with service_bus_errors(target, RECEIVER), ctx.client_factory(target) as client:
        letter = peek_one(client, target.queue_name, sequence_number)
    if letter is None:
        raise click.ClickException(
            f"no dead-lettered message with sequence number {sequence_number}"
        )
    click.echo(as_json(letter.to_json(detail=True)) if as_json_ else details(letter))


def _selection_options(command: Callable) -> Callable:
    command = click.option(
        "--all",
        "all_",
        is_flag=True,
        help="Every dead-lettered message (no other selector allowed).",
    )(command)
    command = click.option(
        "--sequence-number",
        "sequence_numbers",
        type=click.IntRange(min=0),
        multiple=True,
        help="This message (repeatable).",
    )(command)
    return filter_options(command)


def _select(
    client, queue_name, *, sequence_numbers, reasons, since, until, all_
) -> list[DeadLetter]:
    selectors = bool(sequence_numbers or reasons or since or until)
    if all_ and selectors:
        raise click.UsageError("--all selects everything: do not combine it with filters")
    if not all_ and not selectors:
        raise click.UsageError(
            "choose messages: --sequence-number, --reason, --since/--until or --all"
        )
    selection = Selection(frozenset(reasons), frozenset(sequence_numbers), since, until)
    return list(peek_dead_letters(client, queue_name, selection))


def _report(verb: str, summary: RepairSummary) -> None:
    for seq, why in summary.failed:
        click.echo(f"failed {seq}: {safe(why)}", err=True)
    for seq, why in summary.not_removed:
        click.echo(
            f"resubmitted {seq} but the dead-lettered original is still there "
            f"({safe(why)}); purge it with --sequence-number {seq}",
            err=True,
        )
    for seq in summary.skipped:
        click.echo(
            f"skipped {seq}: not received (gone, locked elsewhere, or after a failure)", err=True
        )
    click.echo(
        f"{verb} {len(summary.done)}, failed {len(summary.failed)}, "
        f"not removed {len(summary.not_removed)}, skipped {len(summary.skipped)}"
    )
    if not summary.ok:
        raise click.ClickException(f"not every selected message was {verb}")


@dlq.command(epilog="Exit codes: 0 all resubmitted; 1 some failed or were skipped; 2 bad option.")
@_selection_options
@click.option("--dry-run", is_flag=True, help="Show what would be resubmitted; change nothing.")
@connection_options
@click.pass_obj
def resubmit(ctx: CliContext, dry_run: bool, **options: Any) -> None:
    """Send selected dead-lettered messages back to the queue, then remove them from the
    dead-letter queue (only after the send succeeded). Copies get a new MessageId and keep the
    first one in `originalMessageId`; `resubmitCount` counts the resubmissions."""

    def show_only(letters: list[DeadLetter]) -> None:
        for letter in letters:
            new_id = resubmitted_id(letter.message_id, letter.sequence_number)
            click.echo(
                f"would resubmit {letter.sequence_number} ({safe(letter.reason)}) "
                f"as {new_id} (original {safe(letter.message_id)})"
            )
        click.echo(f"dry run: {len(letters)} message(s) selected; nothing changed", err=True)

    words = ("resubmitting", "resubmitted")
    show = show_only if dry_run else None
    _repair(ctx, SENDER_AND_RECEIVER, resubmit_dead_letters, words, show, **options)


@dlq.command(
    epilog="Exit codes: 0 all purged; 1 some failed or were skipped; 2 bad option or "
    "--yes missing (nothing purged)."
)
@_selection_options
@click.option("--yes", is_flag=True, help="Really delete; without it, only list what would go.")
@connection_options
@click.pass_obj
def purge(ctx: CliContext, yes: bool, **options: Any) -> None:
    """Delete selected dead-lettered messages for good (needs --yes)."""

    def show_only(letters: list[DeadLetter]) -> None:
        for letter in letters:
            click.echo(
                f"would purge {letter.sequence_number} ({safe(letter.reason)}) "
                f"{safe(letter.message_id)}"
            )
        raise BadInput(f"{len(letters)} message(s) selected; add --yes to purge them")

    words = ("purging", "purged")
    _repair(ctx, RECEIVER, purge_dead_letters, words, None if yes else show_only, **options)


def _repair(
    ctx: CliContext,
    access: Any,
    repair: Callable[..., RepairSummary],
    words: tuple[str, str],
    show_only: Callable[[list[DeadLetter]], None] | None,
    *,
    namespace: str | None,
    queue: str | None,
    connection_string_env: str | None,
    **selection: Any,
) -> None:
    """Select the dead-lettered messages the options name, then `repair` them with a progress
    bar and report (`words`: what the repair is called while it runs, and when done); or, with
    `show_only`, only show them."""
    check_window(selection["since"], selection["until"])
    target = target_from(namespace, queue, connection_string_env)
    with service_bus_errors(target, access), ctx.client_factory(target) as client:
        letters = _select(client, target.queue_name, **selection)
        if show_only is not None:
            show_only(letters)
            return
        doing, done = words
        with progress(len(letters), doing) as bar:
            summary = repair(
                client,
                target.queue_name,
                [x.sequence_number for x in letters],
                on_progress=bar.update,
            )
    _report(done, summary)
