"""One parameter list for functions that take the same arguments: the sync and the async variant
of a call, or two operations on the same selection. The list is declared once, on the function
that receives the arguments; each public function passes its arguments on to it and shows its
parameters."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def parameters_of[**P, R](
    model: Callable[P, Any],
) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Decorate a function that passes `*args, **kwargs` straight on to `model`, so that it shows
    `model`'s parameters (to `inspect`, `help()` and type checkers) and keeps its own name,
    docstring and return annotation. `model` checks the arguments when it is called."""
    parameters = list(inspect.signature(model).parameters.values())

    def adopt(function: Callable[..., R]) -> Callable[P, R]:
        signature = inspect.signature(function).replace(parameters=parameters)
        function.__signature__ = signature  # type: ignore[attr-defined]
        return function

    return adopt
