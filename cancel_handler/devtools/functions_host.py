"""The Functions host's side of a Service Bus invocation, on loopback: messages encoded the way
the host hands them to the worker (lock token + AMQP bytes) and decoded by the binding
extension itself, and a gRPC settlement service the real `ServiceBusMessageActions` talks to."""

from __future__ import annotations

import json
import sys
import types
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import uamqp
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from azurefunctions.extensions.bindings.servicebus import (
    ServiceBusConverter,
    ServiceBusMessageActions,
)
from google.protobuf.empty_pb2 import Empty
from uamqp.message import MessageHeader, MessageProperties


def host_delivered_message(
    body: dict | bytes,
    *,
    delivery_count: int = 1,
    message_id: str | None = None,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    reply_to_session_id: str | None = None,
) -> Any:
    """An `azure.servicebus.ServiceBusReceivedMessage` produced by the extension's own
    ServiceBusConverter from host-format bytes, as in a real invocation."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    header = MessageHeader()
    header.delivery_count = delivery_count
    amqp = uamqp.Message(
        body=raw,
        header=header,
        properties=MessageProperties(
            message_id=message_id or str(uuid.uuid4()),
            correlation_id=correlation_id,
            content_type="application/json",
            reply_to=reply_to,
            reply_to_group_id=reply_to_session_id,
        ),
    )
    content = uuid.uuid4().bytes_le + b"x-opt-lock-token" + amqp.encode_message()
    data = types.SimpleNamespace(
        type="model_binding_data",
        value=types.SimpleNamespace(
            version="1.0",
            source="AzureServiceBusReceivedMessage",
            content_type="application/octet-stream",
            content=content,
        ),
    )
    return ServiceBusConverter.decode(data, trigger_metadata=None, pytype=None)


@dataclass
class SettlementService(settlement_pb2_grpc.SettlementServicer):
    """Records settlement RPCs by lock token; tokens in `unknown_locks` fail like a lost lock."""

    calls: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    unknown_locks: set[str] = field(default_factory=set)

    def _settle(self, name: str, request: Any, context: Any, reason=None, description=None):
        if request.locktoken in self.unknown_locks:
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
def settlement_host() -> Iterator[tuple[SettlementService, ServiceBusMessageActions]]:
    """Serve the settlement service on 127.0.0.1 and build the real client against it."""
    service = SettlementService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
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
        server.stop(grace=None)
