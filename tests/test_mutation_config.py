"""The mutation-testing lists still describe the code, checked on every `make test`.

`make mutate` takes the better part of an hour, so a hand-made mutant whose code moved, or an
equivalent mutant whose line is gone, would otherwise only show at the end of that run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mutation.outside import load_mutants
from mutation.report import load_equivalents

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("mutant", load_mutants(), ids=lambda m: f"{m.file}:{m.after[:40]}")
def test_each_hand_made_mutant_applies_exactly_once(mutant) -> None:
    """Its `before` text occurs once in its file and its tests exist."""
    assert (ROOT / mutant.file).read_text("utf-8").count(mutant.before) == 1
    assert mutant.after != mutant.before
    for test in mutant.tests:
        assert (ROOT / test.split("::")[0]).is_file(), test


@pytest.mark.parametrize("entry", load_equivalents(), ids=lambda e: f"{e.module}.{e.function}")
def test_each_equivalent_mutant_names_code_that_exists(entry) -> None:
    """Every line the mutant changes is still in its module's function, and a reason is given."""
    source = (ROOT / (entry.module.replace(".", "/") + ".py")).read_text("utf-8")
    stripped = {line.strip() for line in source.splitlines()}
    for line in entry.before.split(" / "):
        assert line in stripped, line
    assert f"def {entry.function.rsplit('.', 1)[-1]}(" in source
    assert entry.why.strip()
