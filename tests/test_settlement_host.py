"""The loopback settlement host stops in order: nothing of gRPC reaches the user's stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Five hosts in a row, each settling one message and stopping while the extension's client still
# holds its channel; a pause lets the client read whatever the stopped host sent.
STOP_FIVE_HOSTS = """
import time
from cancel_handler.devtools.functions_host import settlement_host
from cancel_handler.devtools.host_message import host_delivered_message

for _ in range(5):
    message = host_delivered_message(b"{}")
    with settlement_host() as (service, actions):
        actions.complete(message)
    time.sleep(0.2)
    assert service.settled(message) == ("complete", None, None)
print("settled 5")
"""


def test_stopping_the_host_leaves_the_clients_channel_quiet() -> None:
    """A stopped host sends the live client channel no error GOAWAY, so gRPC core at its default
    verbosity prints nothing (it used to print `Got goaway … Cancelling all calls`)."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", STOP_FIVE_HOSTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "settled 5\n", "")
