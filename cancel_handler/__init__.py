"""cancel-handler: cancels Outlook meetings from Service Bus requests through Microsoft Graph.

The names below are the integrator's API for sending requests. They are loaded on first use, so
importing the Function App's modules never pulls in the sending code, and the package still
imports in the Function App's deployment package, which leaves `ops/` and `cli/` out
(.funcignore): there only the names from `core` resolve.
"""

# Nothing is imported under a public name: the namespace holds the API and the subpackages only
# (tests/test_public_api.py keeps it so). The imports below are for type checkers and editors.
import typing as _typing

if _typing.TYPE_CHECKING:
    from cancel_handler.core.contract import CancelRequest
    from cancel_handler.core.errors import (
        CancelHandlerError,
        InvalidMessageError,
        InvalidRequestsError,
        TargetError,
    )
    from cancel_handler.ops.replies import (
        ReceivedReply,
        ReplyWait,
        new_session_id,
        wait_for_replies,
        wait_for_replies_async,
    )
    from cancel_handler.ops.requests import OutgoingRequest, prepare_request, read_requests
    from cancel_handler.ops.send import (
        SendSummary,
        send_cancel_request,
        send_cancel_request_async,
        send_cancel_requests,
    )

__all__ = [
    "CancelHandlerError",
    "CancelRequest",
    "InvalidMessageError",
    "InvalidRequestsError",
    "OutgoingRequest",
    "ReceivedReply",
    "ReplyWait",
    "SendSummary",
    "TargetError",
    "new_session_id",
    "prepare_request",
    "read_requests",
    "send_cancel_request",
    "send_cancel_request_async",
    "send_cancel_requests",
    "wait_for_replies",
    "wait_for_replies_async",
]

_HOMES = {
    "CancelHandlerError": "cancel_handler.core.errors",
    "CancelRequest": "cancel_handler.core.contract",
    "InvalidMessageError": "cancel_handler.core.errors",
    "InvalidRequestsError": "cancel_handler.core.errors",
    "OutgoingRequest": "cancel_handler.ops.requests",
    "ReceivedReply": "cancel_handler.ops.replies",
    "ReplyWait": "cancel_handler.ops.replies",
    "new_session_id": "cancel_handler.ops.replies",
    "wait_for_replies": "cancel_handler.ops.replies",
    "wait_for_replies_async": "cancel_handler.ops.replies",
    "SendSummary": "cancel_handler.ops.send",
    "TargetError": "cancel_handler.core.errors",
    "prepare_request": "cancel_handler.ops.requests",
    "read_requests": "cancel_handler.ops.requests",
    "send_cancel_request": "cancel_handler.ops.send",
    "send_cancel_request_async": "cancel_handler.ops.send",
    "send_cancel_requests": "cancel_handler.ops.send",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'cancel_handler' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
