"""How a grid connection's current is shared by the sessions charging under it: a pure function, no database.

The rules, in order:
1. Higher `priority` first (fleet tokens, say); among equals, whoever started first.
2. A session either gets at least its `min_amps` (IEC 61851: cars stop below about 6 A) or is paused at 0 A;
   never a share it cannot charge with.
3. What is left is shared equally ("water filling") inside each priority tier, highest tier first, up to each
   session's cap: the connector's maximum, or for a car that draws clearly less than it was given (a slow
   on-board charger, a full battery), what it draws plus a margin, so the rest goes to cars that can use it.

Amounts are per phase, rounded down to 0.1 A (OCPP's limit resolution), so the sum never exceeds the limit.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Generic, TypeVar

STEP = Decimal("0.1")
# A car counts as slow when it draws this much less than its allocation; it keeps this much above its draw.
UNDERUSE_AMPS = Decimal("2")
HEADROOM_AMPS = Decimal("1")

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Demand(Generic[K]):
    """One charging session under the limit."""

    key: K
    max_amps: Decimal
    min_amps: Decimal = Decimal("6")
    priority: int = 0
    drawn_amps: Decimal | None = None
    allocated_amps: Decimal | None = None

    @property
    def cap(self) -> Decimal:
        """The most this session can use: its connector's maximum, or its measured draw plus headroom."""
        if self.drawn_amps is not None and self.allocated_amps is not None:
            if self.drawn_amps < self.allocated_amps - UNDERUSE_AMPS:
                return max(min(self.drawn_amps + HEADROOM_AMPS, self.max_amps), self.min_amps)
        return self.max_amps


def _floor(value: Decimal) -> Decimal:
    return value.quantize(STEP, rounding=ROUND_DOWN)


def _fill(capacity: Decimal, members: Sequence[Demand[K]], given: dict[K, Decimal]) -> Decimal:
    """Raise `members` equally from what they were given up to their caps; returns the capacity left."""
    open_ = sorted((d for d in members if given[d.key] < d.cap), key=lambda d: d.cap - given[d.key])
    while open_ and capacity >= STEP * len(open_):
        share = _floor(capacity / len(open_))
        smallest = open_[0]
        raise_by = min(share, smallest.cap - given[smallest.key])
        for demand in open_:
            given[demand.key] += raise_by
        capacity -= raise_by * len(open_)
        open_ = [d for d in open_ if given[d.key] < d.cap]
    return capacity


def load_plan(*, limit_amps: Decimal, demands: Iterable[Demand[K]]) -> dict[K, Decimal]:
    """Each session's current (A per phase) under `limit_amps`; the order of `demands` is their start order."""
    ordered = sorted(enumerate(demands), key=lambda pair: (-pair[1].priority, pair[0]))
    given: dict[K, Decimal] = {}
    capacity = max(Decimal(limit_amps), Decimal(0))
    admitted: list[Demand[K]] = []
    for _, demand in ordered:
        floor = min(demand.min_amps, demand.cap)
        if capacity >= floor:
            given[demand.key] = floor
            capacity -= floor
            admitted.append(demand)
        else:
            given[demand.key] = Decimal(0)
    for priority in sorted({d.priority for d in admitted}, reverse=True):
        capacity = _fill(capacity, [d for d in admitted if d.priority == priority], given)
    return {key: _floor(amps) for key, amps in given.items()}


def load_steps(*, before: dict[K, Decimal], after: dict[K, Decimal]) -> tuple[list[K], list[K]]:
    """Which allocations go down and which go up: the first must be confirmed before the second are sent, so the
    sum stays under the limit while profiles travel (a charger may take seconds to apply one)."""
    down = [key for key, amps in after.items() if key in before and amps < before[key]]
    up = [key for key, amps in after.items() if key not in before or amps > before[key]]
    return down, up
