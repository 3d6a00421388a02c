"""Terminal output: tables, JSON, progress bars, summaries. Sender-controlled text is made safe
for the terminal (no control characters, no escape sequences)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from cancel_handler.core.redaction import printable
from cancel_handler.ops.deadletters import DeadLetter

#: Columns of `dlq list`: header, width (None: the rest of the line).
LIST_COLUMNS = (
    ("SEQ", 8),
    ("ENQUEUED (UTC)", 19),
    ("DLV", 3),
    ("REASON", 24),
    ("MESSAGE ID", 36),
    ("UPN", 30),
    ("TARGET", 24),
    ("DESCRIPTION", None),
)
DESCRIPTION_WIDTH = 60


def safe(value: object, width: int | None = None) -> str:
    """:func:`printable` text for the terminal, cut to `width` with '…'; None is '-'."""
    if value is None:
        return "-"
    text = printable(value)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def table(letters: Sequence[DeadLetter]) -> str:
    """`dlq list` as a fixed-width table."""
    rows = [[name for name, _ in LIST_COLUMNS]]
    for letter in letters:
        when = letter.enqueued_time.strftime("%Y-%m-%d %H:%M:%S") if letter.enqueued_time else None
        values = (
            letter.sequence_number,
            when,
            letter.delivery_count,
            letter.reason,
            letter.message_id,
            letter.user_principal_name,
            letter.target,
            letter.description,
        )
        widths = [w or DESCRIPTION_WIDTH for _, w in LIST_COLUMNS]
        rows.append([safe(v, w) for v, w in zip(values, widths, strict=True)])
    lines = []
    for row in rows:
        cells = [c.ljust(w) if w else c for c, (_, w) in zip(row, LIST_COLUMNS, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def details(letter: DeadLetter) -> str:
    """`dlq show` as `name: value` lines, everything in full."""
    data = letter.to_json(detail=True)
    properties = data.pop("applicationProperties")
    body = data.pop("body")
    lines = [f"{name}: {safe(value)}" for name, value in data.items()]
    lines.append("applicationProperties:")
    lines.extend(f"  {safe(k)}: {safe(v)}" for k, v in properties.items())
    lines.append(f"body: {safe(body)}")
    return "\n".join(lines)


def as_json(value: Any) -> str:
    """Indented JSON; non-ASCII kept, control characters escaped by the encoder, and lone
    surrogates (from bodies that are not valid Unicode) kept as `\\udXXX` escapes, since they
    cannot be written as UTF-8."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@contextmanager
def progress(total: int, label: str, *, threshold: int = 50) -> Iterator[Any]:
    """A progress bar on stderr for `total` items (a no-op below `threshold`)."""
    if total < threshold:
        yield _NoBar()
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


class _NoBar:
    def update(self, n_steps: int) -> None:
        """Ignore progress."""
