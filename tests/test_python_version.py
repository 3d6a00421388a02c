"""The Function App's Python version is one decision: the Bicep runtime, the requirements the
platform installs and the environment `make worker-test` runs Microsoft's worker in agree."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parent.parent


def _bicep_python() -> str:
    bicep = (ROOT / "infra" / "app" / "function.bicep").read_text()
    [version] = re.findall(r"^param pythonVersion string = '([0-9.]+)'$", bicep, re.MULTILINE)
    return version


def _makefile_python() -> str:
    makefile = (ROOT / "Makefile").read_text()
    [version] = re.findall(r"^APP_PYTHON_VERSION := ([0-9.]+)$", makefile, re.MULTILINE)
    return version


def _requirements_for(python_version: str) -> dict[str, str]:
    """{name: exact version} of requirements.txt as pip installs it on `python_version`."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        environment = {"python_version": python_version, "python_full_version": python_version}
        if requirement.marker is None or requirement.marker.evaluate(environment):
            [specifier] = requirement.specifier
            assert specifier.operator == "==", f"{line}: pin exactly"
            assert requirement.name not in pins, f"{requirement.name} pinned twice"
            pins[requirement.name] = specifier.version
    return pins


def test_worker_contract_test_runs_on_the_deployed_python() -> None:
    """make worker-test builds its environment from the Python version Bicep deploys."""
    assert _makefile_python() == _bicep_python()


def test_requirements_pin_microsofts_worker_on_the_deployed_python() -> None:
    """On the deployed Python the platform installs azure-functions 2.x (the line for 3.13+)
    and exactly the azure-functions-runtime the worker-contract test runs, at or above 1.1.0
    (the first with the settlement client)."""
    pins = _requirements_for(_bicep_python())
    assert pins["azure-functions"].startswith("2.")
    runtime = tuple(int(part) for part in pins["azure-functions-runtime"].split("."))
    assert runtime >= (1, 1, 0)


def test_tools_python_keeps_an_installable_azure_functions() -> None:
    """The 3.11 tools (make test, make demo, the CLI) get azure-functions 1.x, which installs
    there, and no library worker (it needs 3.13)."""
    pins = _requirements_for("3.11")
    assert pins["azure-functions"].startswith("1.")
    assert "azure-functions-runtime" not in pins
