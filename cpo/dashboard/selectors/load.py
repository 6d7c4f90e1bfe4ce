"""Load management as staff see it: each group's limit now, per phase, and per running session the share the planner
gave (what the charger accepted last) against what the car draws."""

from dataclasses import dataclass
from decimal import Decimal

from cpo.models import LoadGroup
from ocpp_gateway.models import ChargingProfile, Transaction
from ocpp_gateway.services.load_management import load_group_limits, load_group_sessions


@dataclass
class LoadRow:
    transaction: Transaction
    planned_amps: Decimal | None
    planned_status: str
    drawn_amps: Decimal | None
    phases: frozenset[int]
    limit: Decimal  # the lowest limit of its phases: the most it could ever be given

    @property
    def phase_names(self) -> str:
        return " ".join(f"L{phase}" for phase in sorted(self.phases))


@dataclass
class PhaseRow:
    """One phase of the grid connection: its limit now, what the chargers accepted on it and what is drawn on it."""

    phase: int
    limit: Decimal
    planned: Decimal
    drawn: Decimal
    sessions: int

    @property
    def name(self) -> str:
        return f"L{self.phase}"


def limits_text(limits: dict[int, Decimal]) -> str:
    """'40.0 A per phase', or each phase's own: 'L1 32.0 A · L2 40.0 A · L3 40.0 A'."""
    if len(set(limits.values())) == 1 and len(limits) > 1:
        return f"{next(iter(limits.values()))} A per phase"
    if len(limits) == 1:
        return f"{limits[1]} A (single phase)"
    return " · ".join(f"L{phase} {amps} A" for phase, amps in sorted(limits.items()))


def load_group_list():
    return LoadGroup.objects.select_related("location").order_by("location_id", "name")


def load_group_rows(*, group: LoadGroup) -> tuple[dict[int, Decimal], list[LoadRow], list[PhaseRow]]:
    """The limit now per phase, the running sessions under it in start order, and each phase's totals: drawn is
    the per-phase Current.Import the chargers measured, else a session's draw (from its power) on each of its
    phases."""
    limits = load_group_limits(group=group)
    sessions = load_group_sessions(group=group)
    latest: dict[int, tuple[Decimal, str]] = {}
    for tx_pk, limit, status in (
        ChargingProfile.objects.filter(
            transaction__in=[s.transaction for s in sessions], source=ChargingProfile.Source.PLANNER
        )
        .order_by("created_at", "id")
        .values_list("transaction_id", "limit", "status")
    ):
        latest[tx_pk] = (limit, status)
    totals = {phase: PhaseRow(phase, limit, Decimal("0.0"), Decimal("0.0"), 0) for phase, limit in limits.items()}
    rows = []
    for s in sessions:
        tx = s.transaction
        planned, status = latest.get(tx.pk, (None, ""))
        drawn = s.demand.drawn_amps
        rows.append(
            LoadRow(tx, planned, status, drawn, s.demand.phases, min(limits.get(p, limits[1]) for p in s.demand.phases))
        )
        for phase in s.demand.phases & totals.keys():
            row = totals[phase]
            row.sessions += 1
            if status == "Accepted" and planned is not None:
                row.planned += planned
            row.drawn += s.grid_currents.get(phase, drawn or Decimal(0)) if s.grid_currents else drawn or Decimal(0)
    for row in totals.values():
        row.drawn = row.drawn.quantize(Decimal("0.1"))
    return limits, rows, list(totals.values())
