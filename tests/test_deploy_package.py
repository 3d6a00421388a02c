"""What the Functions build packages: the repository root minus .funcignore."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_test_suites_and_tool_requirements_stay_out_of_the_package() -> None:
    """Every test suite directory and every requirements file other than the runtime's
    requirements.txt is listed in .funcignore, so none of them is deployed or installed."""
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    test_suites = {f"{p.name}/" for p in ROOT.glob("tests*") if p.is_dir()}
    tool_requirements = {p.name for p in ROOT.glob("requirements*.txt")} - {"requirements.txt"}
    assert test_suites == {"tests/", "tests_worker/"}
    assert test_suites | tool_requirements <= ignored
