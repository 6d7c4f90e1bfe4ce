"""How a grid connection's current is shared by the sessions charging under it: a pure function, no database.

The rules, in order:
1. Higher `priority` first (fleet tokens, say); among equals, whoever started first.
2. A session either gets at least its `min_amps` (IEC 61851: cars stop below about 6 A) or is paused at 0 A;
   never a share it cannot charge with.
3. What is left is shared equally ("water filling") inside each priority tier, highest tier first, up to each
   session's cap: the connector's maximum, or for a car that draws clearly less than it was given (a slow
   on-board charger, a full battery), what it draws plus a margin, so the rest goes to cars that can use it.

A grid connection's limit is per phase (L1, L2, L3: other loads may sit on one of them), and each session draws on
the phases it is wired to: all three, or one (a single-phase charger or car), or two. Every phase's limit holds the
sum of what the sessions on that phase are given; the shares are max-min fair across phases ("progressive
filling": everyone rises together; when a phase is full, the sessions on it stop rising, the others go on).

Amounts are per phase, rounded down to 0.1 A (OCPP's limit resolution), so the sum never exceeds the limit.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Generic, TypeVar

STEP = Decimal("0.1")
# A car counts as slow when it draws this much less than its allocation; it keeps this much above its draw.
UNDERUSE_AMPS = Decimal("2")
HEADROOM_AMPS = Decimal("1")

K = TypeVar("K", bound=Hashable)

PHASES = (1, 2, 3)  # L1, L2, L3
ALL_PHASES = frozenset(PHASES)
# A limit per phase; a phase absent from the mapping is not limited (a single-phase site has only L1).
PhaseLimits = Mapping[int, Decimal]


def phase_limits(limit_amps: Decimal | PhaseLimits) -> dict[int, Decimal]:
    """One limit for every phase, or a limit per phase, as a mapping phase -> A (never below 0)."""
    if isinstance(limit_amps, Mapping):
        return {phase: max(Decimal(amps), Decimal(0)) for phase, amps in limit_amps.items()}
    return dict.fromkeys(PHASES, max(Decimal(limit_amps), Decimal(0)))


@dataclass(frozen=True)
class Demand(Generic[K]):
    """One charging session under the limit, drawing on `phases` (1 = L1 ... 3 = L3 of the grid connection)."""

    key: K
    max_amps: Decimal
    min_amps: Decimal = Decimal("6")
    priority: int = 0
    drawn_amps: Decimal | None = None
    allocated_amps: Decimal | None = None
    phases: frozenset[int] = ALL_PHASES

    @property
    def cap(self) -> Decimal:
        """The most this session can use: its connector's maximum, or its measured draw plus headroom."""
        if self.drawn_amps is not None and self.allocated_amps is not None:
            if self.drawn_amps < self.allocated_amps - UNDERUSE_AMPS:
                return max(min(self.drawn_amps + HEADROOM_AMPS, self.max_amps), self.min_amps)
        return self.max_amps


def _floor(value: Decimal) -> Decimal:
    return value.quantize(STEP, rounding=ROUND_DOWN)


def _fill(capacity: dict[int, Decimal], members: Sequence[Demand[K]], given: dict[K, Decimal]) -> None:
    """Raise `members` equally from what they were given up to their caps, taking from `capacity` (per phase) on
    each member's phases; a phase that cannot give each of its rising members another step stops them all."""
    open_ = [d for d in members if given[d.key] < d.cap]
    while open_:
        counts = _counts(open_, capacity)
        full = {phase for phase, count in counts.items() if capacity[phase] < STEP * count}
        open_ = [d for d in open_ if not (d.phases & full)]
        if not open_:
            return
        counts = _counts(open_, capacity)
        shares = [_floor(capacity[phase] / count) for phase, count in counts.items()]
        raise_by = min([*shares, *(d.cap - given[d.key] for d in open_)])
        for demand in open_:
            given[demand.key] += raise_by
            for phase in demand.phases & capacity.keys():
                capacity[phase] -= raise_by
        open_ = [d for d in open_ if given[d.key] < d.cap]


def _counts(members: Sequence[Demand[K]], capacity: Mapping[int, Decimal]) -> dict[int, int]:
    """How many of `members` draw on each limited phase."""
    counts: dict[int, int] = {}
    for demand in members:
        for phase in demand.phases & capacity.keys():
            counts[phase] = counts.get(phase, 0) + 1
    return counts


def load_plan(*, limit_amps: Decimal | PhaseLimits, demands: Iterable[Demand[K]]) -> dict[K, Decimal]:
    """Each session's current (A per phase, on each of its phases) under `limit_amps`: one limit for every phase or
    a limit per phase. The order of `demands` is their start order."""
    ordered = sorted(enumerate(demands), key=lambda pair: (-pair[1].priority, pair[0]))
    given: dict[K, Decimal] = {}
    capacity = phase_limits(limit_amps)
    admitted: list[Demand[K]] = []
    for _, demand in ordered:
        floor = min(demand.min_amps, demand.cap)
        phases = demand.phases & capacity.keys()
        if all(capacity[phase] >= floor for phase in phases):
            given[demand.key] = floor
            for phase in phases:
                capacity[phase] -= floor
            admitted.append(demand)
        else:
            given[demand.key] = Decimal(0)
    for priority in sorted({d.priority for d in admitted}, reverse=True):
        _fill(capacity, [d for d in admitted if d.priority == priority], given)
    return {key: _floor(amps) for key, amps in given.items()}


def phase_totals(*, amps: Mapping[K, Decimal], phases: Mapping[K, frozenset[int]]) -> dict[int, Decimal]:
    """What the sessions hold (or draw) summed per phase: each session's A counts on each of its phases."""
    totals = dict.fromkeys(PHASES, Decimal(0))
    for key, value in amps.items():
        for phase in phases[key]:
            totals[phase] = totals.get(phase, Decimal(0)) + value
    return totals


def within_limits(*, totals: Mapping[int, Decimal], limit_amps: Decimal | PhaseLimits) -> bool:
    limits = phase_limits(limit_amps)
    return all(totals.get(phase, Decimal(0)) <= limit for phase, limit in limits.items())


def load_steps(*, before: dict[K, Decimal], after: dict[K, Decimal]) -> tuple[list[K], list[K]]:
    """Which allocations go down and which go up: the first must be confirmed before the second are sent, so the
    sum stays under the limit while profiles travel (a charger may take seconds to apply one)."""
    down = [key for key, amps in after.items() if key in before and amps < before[key]]
    up = [key for key, amps in after.items() if key not in before or amps > before[key]]
    return down, up


def load_raises(
    *,
    limit_amps: Decimal | PhaseLimits,
    phases: Mapping[K, frozenset[int]],
    held: Mapping[K, Decimal],
    plan: Mapping[K, Decimal],
    up: Sequence[K],
) -> list[K]:
    """Which of the increases `up` (in the planner's order) may be sent now: each only if, on every one of its
    phases, what the others hold plus its new share stays under that phase's limit (counting the ones granted
    before it as already raised). What the chargers `held` includes reductions they accepted, and not those they
    refused or never answered; a session whose share does not go up is always granted."""
    limits = phase_limits(limit_amps)
    now = dict(held)
    totals = phase_totals(amps=now, phases=phases)
    granted = []
    for key in up:
        before = now.get(key, Decimal(0))
        rise = plan[key] - before
        if rise <= 0 or all(
            totals.get(phase, Decimal(0)) + rise <= limits[phase] for phase in phases[key] if phase in limits
        ):
            granted.append(key)
            now[key] = plan[key]
            for phase in phases[key]:
                totals[phase] = totals.get(phase, Decimal(0)) + rise
    return granted
