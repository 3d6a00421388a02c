"""How the function opens its spans, in one place.

The SDK never records an exception on them: the function records the error's type itself,
never its text, which may hold a Graph URL and so a UPN.
"""

from __future__ import annotations

from typing import Any

from cancel_handler.telemetry import names


def open_span(tracer: Any, name: str, kind: Any, attributes: dict[str, Any], **options: Any) -> Any:
    """`tracer.start_as_current_span` with the SDK's exception recording off."""
    return tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False,
        set_status_on_exception=False, **options,
    )  # fmt: skip


def producer_attributes(destination: str, operation: str, count: int | None) -> dict[str, Any]:
    """A send's attributes (semantic conventions, messaging): `count` messages to
    `destination`, as `operation` (`send`, `schedule`)."""
    attributes: dict[str, Any] = {
        names.MESSAGING_SYSTEM: names.MESSAGING_SYSTEM_SERVICEBUS,
        names.MESSAGING_OPERATION_TYPE: "send",
        names.MESSAGING_OPERATION_NAME: operation,
        names.MESSAGING_DESTINATION: destination,
    }
    if count is not None:
        attributes[names.MESSAGING_BATCH_COUNT] = count
    return attributes
