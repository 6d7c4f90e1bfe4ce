"""Load management as staff see it: each group's limit now, per phase, and per running session the share the planner
gave (what the charger accepted last) against what the car draws."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from cpo.models import LoadGroup
from ocpp_gateway.models import ChargingProfile, LoadSample, Transaction
from ocpp_gateway.services.load_management import load_group_limits, load_group_sessions, load_session_drawn_on

# The chart's periods (hours back from now), as the page's selector offers them.
LOAD_PERIODS = {"1h": 1, "6h": 6, "24h": 24, "3d": 72}
LOAD_PERIOD_DEFAULT = "6h"
# At most this many samples drawn per chart (about one a minute while sessions run: three days are ~4,300).
CHART_POINTS = 1500
# Per-connector lines on the second chart.
CHART_CONNECTORS = 16


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
            row.drawn += load_session_drawn_on(s, phase) or Decimal(0)
    for row in totals.values():
        row.drawn = row.drawn.quantize(Decimal("0.1"))
    return limits, rows, list(totals.values())


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def load_limit_steps(*, group: LoadGroup, since: datetime, until: datetime) -> list[tuple[int, float]]:
    """The limit over [since, until] as steps (on the charted phase: the lowest limit, see
    `load_charted_phase`): its value at `since` and at every time-of-day boundary of the schedule inside the period
    (in the location's time zone), and once more at `until` to end the last step."""
    zone = ZoneInfo(group.location.time_zone)
    moments = {since, until}
    day = since.astimezone(zone).date() - timedelta(days=1)
    while day <= until.astimezone(zone).date():
        for entry in group.schedule or []:
            for key in ("start", "end"):
                moment = datetime.combine(day, time.fromisoformat(entry[key]), zone)
                if since < moment < until:
                    moments.add(moment)
        day += timedelta(days=1)
    return [(_ms(m), float(min(load_group_limits(group=group, at=m).values()))) for m in sorted(moments)]


def load_group_history(*, group: LoadGroup, hours: int, now: datetime | None = None) -> dict:
    """What the load page's charts draw, in milliseconds since the epoch and A per phase: the limit as steps, the
    planned (held by the chargers) and measured totals of every sample in the period, and the same per connector
    (`"CP-1 #2"`: a gap where no session ran on it)."""
    until = now or timezone.now()
    since = until - timedelta(hours=hours)
    in_period = LoadSample.objects.filter(load_group=group, taken_at__gte=since, taken_at__lte=until)
    pks = list(in_period.order_by("taken_at", "id").values_list("pk", flat=True))
    if len(pks) > CHART_POINTS:  # every n-th, keeping the latest; only those are read whole
        pks = pks[::-1][:: -(-len(pks) // CHART_POINTS)][::-1]
    samples = list(
        LoadSample.objects.filter(pk__in=pks)
        .order_by("taken_at", "id")
        .values_list("taken_at", "planned_amps", "drawn_amps", "connectors")
    )
    labels: list[str] = []
    for *_, connectors in samples:
        for c in connectors:
            label = f"{c['station']} #{c['evse']}"
            if label not in labels:
                labels.append(label)
    labels = sorted(labels)[:CHART_CONNECTORS]
    per_connector: dict[str, dict[str, list]] = {label: {"planned": [], "drawn": []} for label in labels}
    for taken_at, _, _, connectors in samples:
        now_on = {f"{c['station']} #{c['evse']}": c for c in connectors}
        for label in labels:
            c = now_on.get(label)
            per_connector[label]["planned"].append([_ms(taken_at), c["planned"] if c else None])
            per_connector[label]["drawn"].append([_ms(taken_at), c["drawn"] if c else None])
    return {
        "start_ms": _ms(since),
        "end_ms": _ms(until),
        "limit": load_limit_steps(group=group, since=since, until=until),
        "planned": [[_ms(t), float(planned)] for t, planned, _, _ in samples],
        "drawn": [[_ms(t), float(drawn)] for t, _, drawn, _ in samples],
        "connectors": [{"label": label, **per_connector[label]} for label in labels],
        "samples": len(samples),
    }
