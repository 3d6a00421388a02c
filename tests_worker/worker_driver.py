"""Drives Microsoft's library worker (azure-functions-runtime) the way the Functions host and its
proxy worker do: FunctionRpc protobuf messages in, responses out, all on one event loop.

The proxy worker (workers/proxy_worker/dispatcher.py in Azure/azure-functions-python-worker)
wraps each StreamingMessage from the host in a request object with `name`, `request` and
`properties` (the protobuf module and the host's address on WorkerInitRequest) and awaits the
library worker's handler for it; this class does the same, minus the gRPC stream.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from cancel_handler.devtools.host_message import ModelBindingData

PROTO = Path(__file__).with_name("function_rpc.proto")


def compile_protos(out_dir: Path) -> ModuleType:
    """Compile function_rpc.proto with grpcio-tools into `out_dir` and import it."""
    from grpc_tools import protoc

    include = resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        ["protoc", f"-I{PROTO.parent}", f"-I{include}", f"--python_out={out_dir}", PROTO.name]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {status})")
    spec = importlib.util.spec_from_file_location(
        "function_rpc_pb2", out_dir / "function_rpc_pb2.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class WorkerRequest:
    """What the proxy worker passes to each library-worker handler."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


class WorkerDriver:
    """One library worker process's life: init (which indexes), metadata, load, invocations."""

    def __init__(self, protos: ModuleType, app_directory: Path) -> None:
        import azure_functions_runtime

        self.protos = protos
        self.app_directory = app_directory
        self.worker = azure_functions_runtime
        self.loop = asyncio.new_event_loop()
        # The worker imports function_app.py from the app directory, which is on sys.path in
        # Azure (/home/site/wwwroot) as here.
        if str(app_directory) not in sys.path:
            sys.path.insert(0, str(app_directory))

    def _send(self, name: str, handler: Any, properties: dict | None = None, **content: Any) -> Any:
        message = self.protos.StreamingMessage(request_id=str(uuid.uuid4()), **content)
        return self.loop.run_until_complete(handler(WorkerRequest(name, message, properties)))

    def init(self) -> Any:
        """WorkerInitRequest: the library worker loads its bindings and indexes function_app.py."""
        self.worker.start_threadpool_executor()
        return self._send(
            "WorkerInitRequest",
            self.worker.worker_init_request,
            {"protos": self.protos, "host": "127.0.0.1"},
            worker_init_request=self.protos.WorkerInitRequest(
                host_version="4.0.0", function_app_directory=str(self.app_directory)
            ),
        )

    def metadata(self) -> Any:
        """FunctionsMetadataRequest: the functions the worker indexed."""
        return self._send(
            "WorkerMetadataRequest",
            self.worker.functions_metadata_request,
            functions_metadata_request=self.protos.FunctionsMetadataRequest(
                function_app_directory=str(self.app_directory)
            ),
        )

    def load(self, metadata: Any) -> Any:
        """FunctionLoadRequest for one indexed function, as the host sends it back."""
        return self._send(
            "FunctionLoadRequest",
            self.worker.function_load_request,
            function_load_request=self.protos.FunctionLoadRequest(
                function_id=metadata.function_id, metadata=metadata
            ),
        )

    def invoke(self, function_id: str, parameter: str, data: ModelBindingData) -> Any:
        """InvocationRequest with model binding data (an SDK-type trigger's input) for
        `parameter`; like the host, no trigger metadata the SDK-type converter would read."""
        protos = self.protos
        binding_data = protos.ModelBindingData(
            version=data.version,
            source=data.source,
            content_type=data.content_type,
            content=data.content,
        )
        return self._send(
            "FunctionInvocationRequest",
            self.worker.invocation_request,
            invocation_request=protos.InvocationRequest(
                invocation_id=str(uuid.uuid4()),
                function_id=function_id,
                input_data=[
                    protos.ParameterBinding(
                        name=parameter, data=protos.TypedData(model_binding_data=binding_data)
                    )
                ],
            ),
        )

    def close(self) -> None:
        """Stop the worker's thread pool and the event loop."""
        self.worker.stop_threadpool_executor()
        self.loop.close()
