"""The package's arrows point one way: core ← graph, servicebus ← handler ← runtime."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cancel_handler"

#: Which top-level parts of the package each layer may import (besides itself).
ALLOWED = {
    "core": set(),
    "graph": {"core"},
    "servicebus": {"core"},
}


def _imported_parts(path: Path) -> set[str]:
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith("cancel_handler."):
                parts.add(name.split(".")[1])
    return parts


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_is_below_it(layer: str) -> None:
    """A module in core, graph or servicebus never imports a layer above it (or a sibling)."""
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_parts(path) - ALLOWED[layer] - {layer})
        for path in sorted((PACKAGE / layer).rglob("*.py"))
    }
    offenders = {path: parts for path, parts in offenders.items() if parts}
    assert offenders == {}
