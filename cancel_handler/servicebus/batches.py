"""Pack messages into as few Service Bus batches as their size allows, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def fill_batches[T](
    items: Iterable[T], to_message: Callable[[T], Any], create: Callable[[], Any]
) -> Iterator[tuple[Any, list[T]]]:
    """Yield `(batch, items in it)`: each batch from `create()` (the sender's
    `create_message_batch`) filled until the next message no longer fits. A message too large
    for an empty batch raises the SDK's `MessageSizeExceededError`."""
    from azure.servicebus.exceptions import MessageSizeExceededError

    batch, members = create(), []
    for item in items:
        message = to_message(item)
        try:
            batch.add_message(message)
        except MessageSizeExceededError:
            if not members:
                raise
            yield batch, members
            batch, members = create(), []
            batch.add_message(message)
        members.append(item)
    if members:
        yield batch, members
