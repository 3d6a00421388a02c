"""Exceptions of cancel-handler.

CancelHandlerError
├── SettingsError         an app setting is missing or invalid (raised at start-up)
├── TargetError           a tool lacks the Service Bus namespace, queue or credential to use
├── InvalidMessageError   a message breaks the contract (the message is dead-lettered)
├── InvalidRequestsError  requests to send break the contract (nothing is sent); lists every line
├── TransientError        the attempt failed but may succeed later (retried, then given back)
│   ├── GraphTransportError   no HTTP answer from Graph (timeout, refused, reset)
│   └── TokenError            no access token from the managed identity
└── SettlementError       the host refused a settlement call (the invocation fails)
"""

from __future__ import annotations


class CancelHandlerError(Exception):
    """Base class of every error this package raises on purpose."""


class SettingsError(CancelHandlerError):
    """Raised when an app setting is missing or invalid; names the setting."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"app setting {setting}: {problem}")
        self.setting = setting


class TargetError(CancelHandlerError):
    """Raised when the namespace, queue or credential for sending or reading is missing or
    contradictory; `setting` names the option or environment variable to set, `problem` says
    what to do."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class InvalidMessageError(CancelHandlerError):
    """Raised when a message body breaks the message contract; names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class InvalidRequestsError(CancelHandlerError):
    """Raised when one or more requests to send break the contract; `problems` holds
    `(line number, problem)` pairs in line order. Nothing was sent."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        count = len(problems)
        super().__init__(f"{count} invalid request line(s); nothing was sent")
        self.problems = problems


class TransientError(CancelHandlerError):
    """Raised when an attempt failed in a way a later attempt may not."""

    #: True when the request may have reached Graph, so the cancel may have happened.
    outcome_unknown: bool = False


class GraphTransportError(TransientError):
    """Raised when Graph gave no HTTP answer (timeout, refused or reset connection)."""

    def __init__(self, kind: str, *, outcome_unknown: bool) -> None:
        super().__init__(f"no answer from Graph: {kind}")
        self.kind = kind
        self.outcome_unknown = outcome_unknown


class TokenError(TransientError):
    """Raised when the managed identity endpoint gave no usable access token."""


class SettlementError(CancelHandlerError):
    """Raised when complete/dead-letter/abandon failed; the host will redeliver the message."""

    def __init__(self, action: str, cause: BaseException) -> None:
        super().__init__(f"settlement {action!r} failed: {type(cause).__name__}")
        self.action = action
