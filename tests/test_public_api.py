"""The package's public namespace is its API, in the manner of httpx's own check: every name in
`cancel_handler.__all__` can be imported, and nothing else public lives there (its subpackages
aside), so no helper the package uses itself can pass for API."""

from __future__ import annotations

import types

import pytest

import cancel_handler


def _public_names() -> set[str]:
    """Public names `dir()` shows on the package, its subpackages and modules left out."""
    return {
        name
        for name in dir(cancel_handler)
        if not name.startswith("_") and not _is_submodule(name)
    }


def _is_submodule(name: str) -> bool:
    value = vars(cancel_handler).get(name)
    return isinstance(value, types.ModuleType) and value.__name__ == f"cancel_handler.{name}"


@pytest.mark.parametrize("name", cancel_handler.__all__)
def test_every_name_in_all_can_be_imported(name: str) -> None:
    """`from cancel_handler import <name>` works for each advertised name and gives the object
    defined in the package."""
    namespace: dict[str, object] = {}
    exec(f"from cancel_handler import {name}", namespace)  # noqa: S102 - a fixed import line
    value = namespace[name]
    assert getattr(value, "__module__", "").startswith("cancel_handler.")


def test_nothing_public_lies_outside_all() -> None:
    """What `dir(cancel_handler)` shows as public is exactly `__all__`: no typing helper or
    importer the package uses itself, and each name listed once, in order."""
    assert _public_names() == set(cancel_handler.__all__)
    assert cancel_handler.__all__ == sorted(set(cancel_handler.__all__))


def test_an_unknown_name_is_an_attribute_error() -> None:
    """A name the package does not have raises AttributeError, as for any module."""
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = cancel_handler.no_such_name
