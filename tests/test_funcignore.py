"""`.funcignore` keeps local artefacts out of the deployment package.

azd and Core Tools read `.funcignore` with .gitignore rules, so git itself judges it here: the
file becomes the ignore file of a scratch repository holding a typical working tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Must never reach Azure: stale package copies, environments, caches, tests and tooling.
LOCAL_ARTEFACTS = (
    "build/lib/cancel_handler/runtime.py",
    "dist/cancel_handler-0.1.0-py3-none-any.whl",
    "cancel_handler.egg-info/PKG-INFO",
    "mutants/cancel_handler/runtime.py",
    ".venv/bin/python",
    ".venv-checkov/bin/python",
    ".venv-bench/bin/python",
    ".venv-worker/bin/python",
    "cancel-handler_env/bin/python",
    "cancel-handler_env/pyvenv.cfg",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/CACHEDIR.TAG",
    ".mypy_cache/3.11/x.json",
    ".hypothesis/examples/x",
    ".coverage",
    "htmlcov/index.html",
    "cancel_handler/__pycache__/runtime.cpython-311.pyc",
    "tests/test_x.py",
    "bench/run.py",
    "bench/results/run.json",
    "docs/deploy.md",
    "infra/main.bicep",
    ".ci/test.sh",
    ".azure/prod/.env",
    ".git/HEAD",
    "local.settings.json",
    "Makefile",
    "azure.yaml",
    "requirements-dev.txt",
    "requirements-checkov.txt",
)

#: What the Functions host and the remote build need.
DEPLOYED = (
    "function_app.py",
    "host.json",
    "requirements.txt",
    "cancel_handler/__init__.py",
    "cancel_handler/runtime.py",
    "cancel_handler/schema/cancel-request.v1.schema.json",
)


@pytest.fixture(scope="module")
def ignored(tmp_path_factory) -> set[str]:
    """The sample paths git reports as ignored under the repository's .funcignore."""
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is needed to read .funcignore with .gitignore rules")
    tree = tmp_path_factory.mktemp("package")
    subprocess.run([git, "init", "-q", str(tree)], check=True)  # noqa: S603
    shutil.copy(ROOT / ".funcignore", tree / ".gitignore")
    for relative in LOCAL_ARTEFACTS + DEPLOYED:
        path = tree / relative
        if relative == ".git/HEAD":
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    done = subprocess.run(  # noqa: S603
        [git, "-C", str(tree), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(LOCAL_ARTEFACTS + DEPLOYED), capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr  # 1: nothing ignored; anything else: an error
    return set(done.stdout.split())


@pytest.mark.parametrize("path", LOCAL_ARTEFACTS)
def test_local_artefact_is_not_deployed(ignored, path):
    """Each local artefact (build output, environment, cache, test or tool file) is excluded."""
    assert path in ignored


@pytest.mark.parametrize("path", DEPLOYED)
def test_function_files_are_deployed(ignored, path):
    """The files the host and the remote build need stay in the package."""
    assert path not in ignored
