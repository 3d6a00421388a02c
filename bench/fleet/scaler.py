"""How many instances the fleet runs: a fixed number, or Flex Consumption's target-based rule.

Target-based scaling (https://learn.microsoft.com/azure/azure-functions/functions-target-based-scaling):
desired instances = event source length ÷ target executions per instance; "up to four instances
at a time" are added; the target for a Service Bus trigger with single dispatch is host.json
`maxConcurrentCalls` (16), with sessions `maxConcurrentSessions` (8); the app's scale limit
(Flex Consumption `maximumInstanceCount`, 40 in infra/main.bicep) still applies.

The event source length is taken as the queue's active message count (available and locked;
scheduled messages excluded). Unknown, and so parameters of :class:`FlexScaler`: how often the
scale controller decides (`interval`), how long a new instance takes before it receives
(`start_delay`), and scale-in (not modelled: a burst's instances stay until the run ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Instances added at most per scaling decision.
MAX_STEP = 4


def desired_instances(length: int, target_per_instance: int, maximum: int) -> int:
    """Flex's target: ceil(length ÷ target), at least 0, at most `maximum`."""
    if length <= 0:
        return 0
    return min(maximum, math.ceil(length / target_per_instance))


def next_count(current: int, length: int, target_per_instance: int, maximum: int) -> int:
    """The instance count after one scale-out decision from `current` (never fewer)."""
    wanted = desired_instances(length, target_per_instance, maximum)
    return max(current, min(wanted, current + MAX_STEP))


@dataclass(frozen=True)
class FlexScaler:
    """Flex Consumption's rule, with the unknown timings as parameters (seconds, unscaled)."""

    target_per_instance: int = 16
    maximum: int = 40
    initial: int = 1
    interval: float = 2.0
    start_delay: float = 3.0

    @property
    def label(self) -> str:
        """How the report names it."""
        return f"flex(max {self.maximum})"


@dataclass(frozen=True)
class FixedScaler:
    """`count` instances, all receiving from the start."""

    count: int

    @property
    def label(self) -> str:
        """How the report names it."""
        return str(self.count)
