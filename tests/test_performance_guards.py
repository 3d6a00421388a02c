"""Guards for what the benchmarks in bench/ showed matters: cheap start-up and no per-call
import probes on the hot path."""

from __future__ import annotations

import importlib.util
import subprocess
import sys


def test_sniffio_is_installed_so_httpcore_does_not_probe_on_every_call() -> None:
    """httpcore asks sniffio which event loop runs on every lock it creates; when sniffio is
    missing each request pays failed imports that scan sys.path."""
    assert importlib.util.find_spec("sniffio") is not None
    import asyncio

    from httpcore._synchronization import current_async_library

    assert asyncio.run(_library(current_async_library)) == "asyncio"


async def _library(probe) -> str:
    return probe()


def test_indexing_the_function_does_not_import_the_http_or_identity_stack() -> None:
    """Importing function_app (what the worker does at start-up) leaves httpx and azure.identity
    for the first message."""
    code = (
        "import sys, function_app; "
        "print(sorted(m for m in ('httpx', 'httpcore', 'azure.identity') if m in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_settlement_line_is_not_built_when_its_level_is_off(caplog, monkeypatch) -> None:
    """With INFO off, a completion logs nothing and builds nothing; WARNING lines still come."""
    import logging

    from cancel_handler.core.decision import Action, Reason, Settlement
    from cancel_handler.core.outcome import Outcome
    from cancel_handler.servicebus import settle
    from cancel_handler.servicebus.delivery import Delivery
    from cancel_handler.servicebus.settle import log_settlement

    def unreadable(value: object) -> str:
        raise AssertionError("the line was built although INFO is off")

    monkeypatch.setattr(settle, "log_safe", unreadable)
    caplog.set_level(logging.WARNING, logger="cancel_handler.settlement")
    log_settlement(Delivery(b"{}"), Outcome(Settlement(Action.COMPLETE, Reason.CANCELLED)))
    assert caplog.records == []
    given_back = Outcome(Settlement(Action.ABANDON, Reason.TRANSIENT_FAILURE, "503"))
    monkeypatch.undo()
    log_settlement(Delivery(b"{}"), given_back)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
