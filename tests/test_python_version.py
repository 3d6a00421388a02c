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


def test_make_builds_its_environment_from_the_deployed_python() -> None:
    """make builds .venv (tests, demo, CLI, Microsoft's worker) from the Python Bicep deploys."""
    assert _makefile_python() == _bicep_python()


def test_requirements_pin_microsofts_worker_on_the_deployed_python() -> None:
    """On the deployed Python the platform installs azure-functions 2.x (the line for 3.13+)
    and exactly the azure-functions-runtime the worker-contract test runs, at or above 1.1.0
    (the first with the settlement client)."""
    pins = _requirements_for(_bicep_python())
    assert pins["azure-functions"].startswith("2.")
    runtime = tuple(int(part) for part in pins["azure-functions-runtime"].split("."))
    assert runtime >= (1, 1, 0)


def test_one_python_one_set_of_pins() -> None:
    """No requirement depends on the Python version: the tools, the tests and the Function App
    run the same pins on the same Python."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-r"):
                assert Requirement(line).marker is None, f"{name}: {line}"


def test_the_development_python_is_the_deployed_one() -> None:
    """pyproject's requires-python and ruff's target name the Python Bicep deploys."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    version = _bicep_python()
    assert f'requires-python = ">={version}"' in pyproject
    assert f'target-version = "py{version.replace(".", "")}"' in pyproject
