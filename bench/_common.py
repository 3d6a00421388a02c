"""Shared pieces of the benchmarks: the simulator process, messages, settlement double, machine."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PYTHON = ROOT / ".venv" / "bin" / "python"
PEER_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def host_json_concurrency() -> int:
    """`extensions.serviceBus.maxConcurrentCalls` from host.json: the function's concurrency."""
    host = json.loads((ROOT / "host.json").read_text("utf-8"))
    return int(host["extensions"]["serviceBus"]["maxConcurrentCalls"])


class SimProcess:
    """`python -m cancel_handler.devtools` in its own process, driven over stdin/stdout."""

    def __init__(self, **options: Any) -> None:
        argv = [str(PRODUCT_PYTHON), "-m", "cancel_handler.devtools", "--auto-events"]
        if options.get("latency"):
            argv += ["--latency", str(options["latency"])]
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.info = self._read()
        self.graph_base_url: str = self.info["graph_base_url"]
        self.identity_environment: dict[str, str] = self.info["identity_environment"]

    @property
    def pid(self) -> int:
        """The simulator process's id."""
        return self._proc.pid

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process exited")
        return json.loads(line)

    def command(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return its answer."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the simulator (end of input) and wait for it."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_client(python: Path, args: dict[str, Any], env: dict[str, str] | None = None) -> dict:
    """Run `bench/client.py` in a fresh process with `args` (JSON) and return its JSON result."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [str(python), str(ROOT / "bench" / "client.py"), json.dumps(args)],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"client failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def received_message(body: bytes, *, delivery_count: int = 1) -> Any:
    """A `ServiceBusReceivedMessage` as the function receives it: the host's bytes decoded by the
    binding extension (imported here, not at the top: the peer's environment has no
    azure-servicebus)."""
    from cancel_handler.devtools.host_message import host_delivered_message

    return host_delivered_message(body, delivery_count=delivery_count)


def cancel_body(upn: str, event_id: str) -> bytes:
    """A valid request body with a comment, as an HR system would send it."""
    return json.dumps(
        {"userPrincipalName": upn, "eventId": event_id, "comment": "Cancelled by HR offboarding."}
    ).encode()


@dataclass
class CountingActions:
    """`ServiceBusMessageActions`' settlement signatures; counts what was settled how."""

    counts: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _count(self, action: str, reason: str | None = None) -> None:
        with self._lock:
            self.counts[action] = self.counts.get(action, 0) + 1
            if reason:
                self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def complete(self, message: Any) -> None:
        self._count("complete")

    def abandon(self, message: Any) -> None:
        self._count("abandon")

    def deadletter(
        self,
        message: Any,
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        self._count("deadletter", deadletter_reason)


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of repeated measurements."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def machine() -> dict[str, str]:
    """The machine the figures come from."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
    }
