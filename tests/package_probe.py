"""Runs the Function App from a built deployment package the way the platform does, and reports.

tests/test_deploy_package.py starts it as `python -I -S package_probe.py SITE_PACKAGES...` with the
package as the working directory. `-I -S` keep the repository, PYTHON* variables and the editable
install's `.pth` hook off `sys.path`, so the package directory (the platform's wwwroot) and the
given site-packages (what the remote build installs) are all it can import from.

Standard input: one cancel request in the host's byte layout, hex-encoded. Standard output: one
JSON report: the functions indexed, the settlement of that request, where every module of the
package was loaded from, and whether the local tools could be found at all.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from types import SimpleNamespace
from typing import Any

PACKAGE = os.getcwd()
#: The local tools .funcignore leaves out: the packaged app must not find them.
TOOLS = (
    "cancel_handler.cli",
    "cancel_handler.ops",
    "cancel_handler.devtools",
    "cancel_handler.demo",
)


class RecordingActions:
    """Stands in for ServiceBusMessageActions: records each settlement."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def complete(self, message: Any) -> None:
        self.calls.append(["complete"])

    def abandon(self, message: Any) -> None:
        self.calls.append(["abandon"])

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self.calls.append(["deadletter", deadletter_reason, deadletter_error_description])


def delivered(content: bytes) -> Any:
    """The message the function receives for `content`, decoded by the binding extension as the
    worker has it decode the host's model binding data."""
    from azurefunctions.extensions.base import Datum
    from azurefunctions.extensions.bindings.servicebus import (
        ServiceBusConverter,
        ServiceBusReceivedMessage,
    )

    binding_data = SimpleNamespace(
        content=content,
        version="1.0",
        source="AzureServiceBusReceivedMessage",
        content_type="application/octet-stream",
    )
    datum = Datum(value=binding_data, type="model_binding_data")
    return ServiceBusConverter.decode(
        datum, trigger_metadata=None, pytype=ServiceBusReceivedMessage
    )


def main() -> None:
    sys.path[:0] = [PACKAGE]
    sys.path.extend(sys.argv[1:])
    content = bytes.fromhex(sys.stdin.read())

    import function_app

    functions = function_app.app.get_functions()
    # Built on the first message: its deferred imports (Graph client, token, limiter) load now.
    _ = function_app.processor.handler
    actions = RecordingActions()
    [function] = functions
    asyncio.run(function.get_user_function()(delivered(content), actions))

    loaded = {
        name: getattr(module, "__file__", None)
        for name, module in sorted(sys.modules.items())
        if name == "function_app" or name.partition(".")[0] == "cancel_handler"
    }
    report = {
        "sys_path": sys.path,
        "functions": [
            {
                "name": fn.get_function_name(),
                "bindings": json.loads(fn.get_function_json())["bindings"],
            }
            for fn in functions
        ],
        "settlements": actions.calls,
        "loaded": loaded,
        "tools_found": [name for name in TOOLS if importlib.util.find_spec(name) is not None],
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
