"""The Functions host's settlement service on loopback: the gRPC service the real
`ServiceBusMessageActions` talks to. Messages in the host's format come from `host_message`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from azurefunctions.extensions.bindings.servicebus import ServiceBusMessageActions
from google.protobuf.empty_pb2 import Empty

#: How long the loopback host lets a settlement call in flight finish when it stops.
STOP_GRACE_SECONDS = 5.0


@dataclass
class SettlementService(settlement_pb2_grpc.SettlementServicer):
    """Records settlement RPCs by lock token; tokens in `unknown_locks` fail like a lost lock.

    With `forward`, each settlement is also passed on (action, lock token, reason,
    description) to whatever holds the messages (a queue stand-in); its False fails the call
    like a lost lock."""

    calls: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    unknown_locks: set[str] = field(default_factory=set)
    forward: Callable[[str, str, str | None, str | None], bool] | None = None

    def _settle(self, name: str, request: Any, context: Any, reason=None, description=None):
        lost = request.locktoken in self.unknown_locks or (
            self.forward is not None
            and not self.forward(name, request.locktoken, reason, description)
        )
        if lost:
            context.abort(grpc.StatusCode.NOT_FOUND, f"LockToken {request.locktoken} not found")
        self.calls.append((name, request.locktoken, reason, description))
        return Empty()

    def Complete(self, request, context):
        return self._settle("complete", request, context)

    def Abandon(self, request, context):
        return self._settle("abandon", request, context)

    def Deadletter(self, request, context):
        reason = request.deadletterReason.value if request.HasField("deadletterReason") else None
        description = (
            request.deadletterErrorDescription.value
            if request.HasField("deadletterErrorDescription")
            else None
        )
        return self._settle("deadletter", request, context, reason, description)

    def settled(self, message: Any) -> tuple[str, str | None, str | None] | None:
        """(action, reason, description) recorded for a message, by its lock token."""
        for name, lock, reason, description in self.calls:
            if lock == str(message.lock_token):
                return name, reason, description
        return None


@contextmanager
def settlement_host(
    service: SettlementService | None = None, *, workers: int = 4
) -> Iterator[tuple[SettlementService, ServiceBusMessageActions]]:
    """Serve the settlement service (a new one unless given) on 127.0.0.1 with `workers`
    threads and build the real client against it."""
    service = service if service is not None else SettlementService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    settlement_pb2_grpc.add_SettlementServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    saved_argv = sys.argv
    # The client reads the host's address from the worker's command line, as in Azure.
    sys.argv = [
        saved_argv[0],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--functions-grpc-max-message-length",
        str(4 * 1024 * 1024),
    ]
    try:
        actions = ServiceBusMessageActions()
    finally:
        sys.argv = saved_argv
    try:
        yield service, actions
    finally:
        # An orderly stop, as the host does: the client's channel (which the extension offers no
        # way to close) gets a plain GOAWAY. Stopping without grace cancels all calls, and gRPC
        # core on the client then logs that error GOAWAY on stderr.
        server.stop(grace=STOP_GRACE_SECONDS).wait()


@dataclass
class LoopbackQueue:
    """Stands in for the `ServiceBusSender` the function uses to put a date range's child
    requests on its own queue: the SDK's real `ServiceBusMessageBatch`, messages kept in order
    until `take()` hands them over for delivery."""

    sent: list[Any] = field(default_factory=list)

    def create_message_batch(self) -> Any:
        from azure.servicebus import ServiceBusMessageBatch

        return ServiceBusMessageBatch()

    def send_messages(self, batch: Any) -> None:
        # The batch keeps its messages privately; only this stand-in reads them back.
        self.sent.extend(batch._messages)

    def take(self) -> list[Any]:
        """The messages sent since the last call, oldest first."""
        taken, self.sent = self.sent, []
        return taken
