"""A random source pinned to one value, to put jitter at a known point of its range."""

from __future__ import annotations

import random


class FixedRandom(random.Random):
    """A random source whose `random()` always returns `value`."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value
