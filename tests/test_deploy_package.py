"""What the Functions build packages, built the way `azd deploy` builds it, then run.

`azd deploy` (1.18.0 and later) zips the service's `project` folder from azure.yaml as it is on
disk. For a Function App it leaves out whatever `.funcignore` matches, read with .gitignore rules,
and on top of that the ignore file itself, every `local.settings.json` and every `.azure` folder
(`createDeployableZip` in Azure/azure-dev, cli/azd/pkg/project/project_utils.go). Here the
committed files stand for the folder (what a fresh clone holds; files that are neither committed
nor matched would ship too, see tests/test_funcignore.py for the local artefacts) and git itself
judges `.funcignore`. The package is then copied to a directory of its own and the Function App
runs from it, with nothing of the repository on the import path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from cancel_handler.devtools.host_message import host_message_content
from tests.test_infra_settings import azure_yaml_services

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).with_name("package_probe.py")
AZURE_YAML = (ROOT / "azure.yaml").read_text()
[SERVICE] = azure_yaml_services(AZURE_YAML).values()
#: The folder azd packages for the Function App.
PROJECT = (ROOT / SERVICE["project"]).resolve()

#: The top level of the package: the entry point, the host's settings, the requirements the remote
#: build installs, and the function's code.
TOP_LEVEL = {"cancel_handler/", "function_app.py", "host.json", "requirements.txt"}

#: Local tools and development files: none of them may be in the package.
NOT_SHIPPED = (
    "cancel_handler/cli/",
    "cancel_handler/ops/",
    "cancel_handler/devtools/",
    "cancel_handler/demo.py",
    "bench/",
    "tests/",
    "tests_worker/",
    "mutation/",
    "infra/",
    "docs/",
    "pyproject.toml",
    "README.md",
    ".funcignore",
)


def _git(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    """git's standard output for `args`, run in `cwd`."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is needed to list the repository and read .funcignore")
    # Git's own variables would point it at another repository.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    done = subprocess.run(  # noqa: S603
        [git, *args], cwd=cwd, input=stdin, capture_output=True, env=env, check=False)
    # check-ignore answers 1 when nothing matched; anything else is an error.
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")
    return done.stdout


def _azd_always_leaves_out(path: str) -> bool:
    """azd's exclusions for a Function App beyond the ignore file (project_utils.go)."""
    *folders, name = path.split("/")
    return name in {".funcignore", "local.settings.json"} or ".azure" in folders


def build_package(root: Path, scratch: Path) -> list[str]:
    """The files `azd deploy` puts in the Function App's zip for the service at `root`.

    git judges `.funcignore` in an empty scratch repository (so that only `.funcignore` applies,
    not the repository's .gitignore) with `core.excludesFile`, whose patterns git matches from the
    top of the work tree as azd matches `.funcignore`'s from the service folder; a file below an
    excluded folder is excluded, as azd does not descend into it."""
    tracked = _git("ls-files", "-z", cwd=root).decode().split("\0")
    tracked = [path for path in tracked if path]
    _git("init", "-q", str(scratch), cwd=root)
    ignored = _git(
        "-c", f"core.excludesFile={root / '.funcignore'}",
        "check-ignore", "--no-index", "--stdin", "-z",
        cwd=scratch, stdin="\0".join(tracked).encode(),
    ).decode().split("\0")
    return sorted(set(tracked) - set(ignored) - {p for p in tracked if _azd_always_leaves_out(p)})


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The package's files, copied into a directory of their own (the platform's wwwroot)."""
    files = build_package(PROJECT, tmp_path_factory.mktemp("scratch-repository"))
    wwwroot = tmp_path_factory.mktemp("wwwroot")
    for path in files:
        (wwwroot / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT / path, wwwroot / path)
    return wwwroot, files


@pytest.fixture(scope="module")
def run(package: tuple[Path, list[str]]) -> dict:
    """The probe's report of the Function App run from the package: indexed, handler built and
    one invalid request processed (it needs no Graph, and loads the contract's schema)."""
    wwwroot, _ = package
    content = host_message_content(
        b'{"userPrincipalName": "adele.vance@contoso.com"}',
        lock_token=uuid.UUID(int=1),
        message_id="package-probe",
        delivery_count=1,
        sequence_number=1,
        enqueued_time=datetime.now(UTC),
    )
    paths = sysconfig.get_paths()
    site_packages = dict.fromkeys([paths["purelib"], paths["platlib"]])  # the remote build's
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-I", "-S", str(PROBE), *site_packages],
        cwd=wwwroot, input=content.hex(), capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "TZ": "UTC"}, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _module_name(path: str) -> str | None:
    """`cancel_handler/core/__init__.py` → `cancel_handler.core`; None for a data file."""
    pure = PurePosixPath(path)
    if pure.suffix != ".py":
        return None
    parts = pure.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_package_holds_the_function_and_nothing_else_at_the_top(package) -> None:
    """The top level is the entry point, host.json, requirements.txt and cancel_handler/."""
    _, files = package
    top = {path.split("/")[0] + ("/" if "/" in path else "") for path in files}
    assert top == TOP_LEVEL, files


@pytest.mark.parametrize("excluded", NOT_SHIPPED)
def test_local_tools_and_development_files_are_not_in_the_package(package, excluded) -> None:
    """No file of the command line, sending API, demo, stand-ins, benches, tests or docs ships."""
    _, files = package
    assert [path for path in files if path == excluded or path.startswith(excluded)] == []


def test_function_is_indexed_from_the_package(run) -> None:
    """Imported from the package alone, function_app indexes its one Service Bus trigger."""
    [function] = run["functions"]
    assert function["name"] == "cancel_meeting"
    assert [binding["type"] for binding in function["bindings"]] == ["serviceBusTrigger"]


def test_package_runs_a_request_to_its_settlement(run) -> None:
    """The packaged function validates a request against the packaged schema and settles it."""
    [[action, reason, description]] = run["settlements"]
    assert (action, reason) == ("deadletter", "InvalidMessage")
    assert "eventId" in description


def test_every_module_comes_from_the_package(package, run) -> None:
    """Nothing is imported from the repository: the package is all the function had."""
    wwwroot, _ = package
    assert str(ROOT) not in run["sys_path"]
    outside = {name: file for name, file in run["loaded"].items()
               if not Path(file).resolve().is_relative_to(wwwroot.resolve())}
    assert outside == {}


def test_package_holds_only_modules_the_function_loads(package, run) -> None:
    """Every Python module in the package is loaded by the function (indexing, its first message)
    and every module it loads is in the package: the package is exactly the runtime. The probe
    runs with telemetry off; the modules only telemetry loads are named here."""
    _, files = package
    packaged = {name for name in map(_module_name, files) if name}
    assert packaged == set(run["loaded"]) | TELEMETRY_ON_MODULES
    assert TELEMETRY_ON_MODULES.isdisjoint(run["loaded"])


#: Loaded only when an OpenTelemetry SDK provider is installed (PYTHON_APPLICATIONINSIGHTS_
#: ENABLE_TELEMETRY in Azure); tests/test_telemetry.py runs them.
TELEMETRY_ON_MODULES = {
    "cancel_handler.telemetry.graph",
    "cancel_handler.telemetry.held",
    "cancel_handler.telemetry.pipeline",
    "cancel_handler.telemetry.propagation",
    "cancel_handler.telemetry.sampling",
    "cancel_handler.telemetry.spans",
}


def test_local_tools_cannot_be_found_by_the_packaged_app(run) -> None:
    """cancel_handler without cli/, ops/, devtools/ and demo.py still imports; they are absent."""
    assert run["tools_found"] == []


def test_azure_yaml_refuses_an_azd_that_ignores_funcignore() -> None:
    """azd before 1.18.0 zipped the whole folder, .funcignore unread (Azure/azure-dev#5383):
    azure.yaml's requiredVersions makes such an azd refuse the project."""
    floor = r'^requiredVersions:\n(?:  #.*\n)*  azd: ">= (\d+)\.(\d+)\.(\d+)"$'
    found = re.search(floor, AZURE_YAML, re.MULTILINE)
    assert found, "azure.yaml: requiredVersions.azd"
    assert tuple(map(int, found.groups())) >= (1, 18, 0)


def test_test_suites_and_tool_requirements_stay_out_of_the_package() -> None:
    """Every test suite directory and every requirements file other than the runtime's
    requirements.txt is listed in .funcignore, so none of them is deployed or installed."""
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    test_suites = {f"{p.name}/" for p in ROOT.glob("tests*") if p.is_dir()}
    tool_requirements = {p.name for p in ROOT.glob("requirements*.txt")} - {"requirements.txt"}
    assert test_suites == {"tests/", "tests_worker/"}
    assert test_suites | tool_requirements <= ignored
