"""One library worker for the session, started the way the Functions host starts it: app settings
in the environment, the host's gRPC address on the command line, then WorkerInitRequest.

Around it run the loopback services the function talks to: the managed-identity endpoint and
the Graph simulator (cancel_handler.devtools), and the host's settlement service on gRPC.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from azurefunctions.extensions.bindings.protos import settlement_pb2_grpc
from azurefunctions.extensions.bindings.servicebus import ServiceBusMessageActions

from cancel_handler.devtools.functions_host import SettlementService
from cancel_handler.devtools.graph_simulator import GraphSimulator
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority
from tests.helpers import AMBIENT_SETTINGS
from tests_worker.worker_driver import WorkerDriver, compile_protos

APP_DIRECTORY = Path(__file__).resolve().parent.parent
QUEUE = "cancel-requests"
#: The session-enabled children queue (CHILD_QUEUE_NAME), so that the worker indexes the
#: session trigger too.
CHILD_QUEUE = "cancel-requests-children"


@dataclass
class Platform:
    """The worker and everything around it for the session."""

    driver: WorkerDriver
    init_response: Any
    metadata_response: Any
    load_responses: list[Any]
    graph: GraphSimulator
    identity: IdentityEndpoint
    settlement: SettlementService


def _settlement_server(service: SettlementService) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    settlement_pb2_grpc.add_SettlementServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _host_command_line(port: int) -> list[str]:
    """The arguments the host starts the worker with (those workers/proxy_worker/start_worker.py
    in Azure/azure-functions-python-worker parses): the host's own gRPC address. The binding
    extension's ServiceBusMessageActions reads --host, --port and
    --functions-grpc-max-message-length from the same command line (grpc_utils.parse_grpc_args)
    and calls the settlement service the host serves there."""
    worker_id = request_id = "00000000-0000-0000-0000-000000000001"
    return [
        sys.argv[0],
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workerId", worker_id,
        "--requestId", request_id,
        "--grpcMaxMessageLength", "2147483647",
        "--functions-uri", f"http://127.0.0.1:{port}/",
        "--functions-worker-id", worker_id,
        "--functions-request-id", request_id,
        "--functions-grpc-max-message-length", "2147483647",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """Loopback identity, Graph and settlement services; app settings; an initialised worker."""
    protos = compile_protos(tmp_path_factory.mktemp("protos"))
    authority = TokenAuthority()
    settlement = SettlementService()
    server, port = _settlement_server(settlement)
    with (
        IdentityEndpoint(authority) as identity,
        GraphSimulator(authority) as graph,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name in AMBIENT_SETTINGS:
            patch.delenv(name, raising=False)
        for name, value in identity.environment.items():
            patch.setenv(name, value)
        patch.setenv("GRAPH_BASE_URL", graph.graph_base_url)
        patch.setenv("CANCEL_QUEUE_NAME", QUEUE)
        patch.setenv("CHILD_QUEUE_NAME", CHILD_QUEUE)
        patch.setenv("CHILD_SESSION_KEY", "worker-test-session-key")
        # Named, never contacted: these tests send nothing to Service Bus.
        patch.setenv("ServiceBusConnection__fullyQualifiedNamespace", "sb.example.invalid")
        patch.setattr(sys, "argv", _host_command_line(port))
        driver = WorkerDriver(protos, APP_DIRECTORY)
        try:
            init_response = driver.init()
            metadata_response = driver.metadata()
            # The host loads every function the worker indexed before invoking any.
            load_responses = [
                driver.load(function) for function in metadata_response.function_metadata_results
            ]
            yield Platform(
                driver,
                init_response,
                metadata_response,
                load_responses,
                graph,
                identity,
                settlement,
            )
        finally:
            app = sys.modules.get("function_app")
            if app is not None:  # the function's HTTP client lives on the worker's loop
                driver.loop.run_until_complete(app.processor.aclose())
            driver.close()
            server.stop(grace=None)
            # The settlement client is a process-wide singleton bound to this server's port.
            ServiceBusMessageActions._instance = None
