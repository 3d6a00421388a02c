"""Mutants mutmut cannot make: module-level constants and the bodies of decorated functions.

mutmut 3 changes code inside plain functions and methods only, yet the limits users rely on are
module constants (Service Bus's 4096, the 10 attempts, the token refresh margin) and a few
behaviours sit in properties or `@asynccontextmanager` bodies. `mutation/outside.toml` lists such
changes by hand; this runs the listed fast tests against each, in a copy of the project, and
fails when any survives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS_FILE = ROOT / "mutation" / "outside.toml"
RESULTS_FILE = ROOT / "mutants" / "outside.json"
COPIED = ("cancel_handler", "tests", "function_app.py", "host.json", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    """Replace `before` (exactly once in `file`) with `after`; `tests` must then fail."""

    file: str
    before: str
    after: str
    tests: list[str]

    @property
    def module(self) -> str:
        return self.file.removesuffix(".py").replace("/", ".")


def load_mutants(path: Path = MUTANTS_FILE) -> list[Mutant]:
    """The hand-made mutants listed in `path`."""
    return [Mutant(**entry) for entry in tomllib.loads(path.read_text("utf-8"))["mutant"]]


def killed(mutant: Mutant, workdir: Path) -> bool:
    """Apply `mutant` in `workdir`, run its tests, restore the file; True when a test failed."""
    target = workdir / mutant.file
    original = target.read_text("utf-8")
    if original.count(mutant.before) != 1:
        raise SystemExit(f"{mutant.file}: {mutant.before!r} must occur exactly once")
    target.write_text(original.replace(mutant.before, mutant.after), "utf-8")
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and test paths
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
            cwd=workdir,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            capture_output=True,
            check=False,
        )
    finally:
        target.write_text(original, "utf-8")
    if result.returncode not in (0, 1):
        raise SystemExit(f"pytest could not run {mutant.tests}:\n{result.stdout.decode()}")
    return result.returncode == 1


def main(argv: list[str] | None = None) -> int:
    """Run every listed mutant; print one line each and a count per module; 1 if any survived."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="only the mutants of these source files")
    args = parser.parse_args(argv)
    mutants = [m for m in load_mutants() if not args.files or m.file in args.files]
    survivors: list[Mutant] = []
    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="mutate-outside-") as tmp:
        workdir = Path(tmp)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                skip = shutil.ignore_patterns("__pycache__")
                shutil.copytree(source, workdir / name, ignore=skip)
            else:
                shutil.copy2(source, workdir / name)
        for mutant in mutants:
            dead = killed(mutant, workdir)
            counts.setdefault(mutant.file, [0, 0])[0 if dead else 1] += 1
            verdict = "killed  " if dead else "SURVIVED"
            print(f"{verdict} {mutant.file}: {mutant.before!r} → {mutant.after!r}")
            if not dead:
                survivors.append(mutant)
    print("\n| module | hand-made mutants | killed |\n|---|---:|---:|")
    for file, (dead, alive) in counts.items():
        print(f"| `{file}` | {dead + alive} | {dead} |")
    if not args.files:  # the report shows complete runs only
        RESULTS_FILE.parent.mkdir(exist_ok=True)
        RESULTS_FILE.write_text(json.dumps(counts, indent=1), "utf-8")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
