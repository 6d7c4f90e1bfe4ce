"""Load management: keep the sessions under a grid connection's limit by sending them charging profiles.

`load_group_rebalance` reads the group's running sessions, asks the planner (`ocpp_gateway.load_planner`) for each
one's share and sends a TxProfile where the share changed: reductions first, and only once the chargers have
accepted them the increases, each only if on every phase the sum of what the chargers hold stays under that phase's
limit. A charger that rejects or does not answer keeps counting with what it had. Each session counts on the grid
phases it draws on (see LoadGroup: its EVSE's wiring and phase rotation, the car's needs, per-phase meter values); a
session on fewer than three phases gets its profile with numberPhases. Stations of a group get a TxDefaultProfile at the
group's minimum current when they boot, so a session that starts before the planner runs starts low.

Runs in a task (never in a charger's reply path); one rebalance per group at a time (a cache lock; a request that
finds it taken marks the group dirty and the holder runs once more).
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from cpo.models import EVSE, ChargingStation, LoadGroup, Token
from ocpp_gateway import events
from ocpp_gateway import requests as ocpp_requests
from ocpp_gateway.commands import CommandError, command_send_many
from ocpp_gateway.load_planner import ALL_PHASES, Demand, load_plan, load_raises, load_steps
from ocpp_gateway.models import ChargingProfile, LoadSample, StationVariable, Transaction
from ocpp_gateway.phases import (
    Rotation,
    charger_phases_in_use,
    charger_phases_wired,
    connector_phase_rotation_16,
    grid_phases,
    phase_rotation_compose,
    phase_rotation_parse,
)
from ocpp_gateway.services.command_audit import command_audit_announce

logger = logging.getLogger(__name__)

# Profile ids of the planner's profiles: one TxProfile per EVSE, replaced on every change; one TxDefaultProfile.
PLANNER_TX_PROFILE_ID_BASE = 900_000
PLANNER_DEFAULT_PROFILE_ID = 899_999


def load_group_limits(*, group: LoadGroup, at: datetime | None = None, scheduled: bool = True) -> dict[int, Decimal]:
    """The limit now on each phase (A; 1 = L1): the schedule's entry covering the location's local time (unless not
    `scheduled`), else the group's; a phase without its own limit has `limit_amps`. A single-phase group has L1
    only."""
    limits = {
        phase: group.limit_amps if getattr(group, field) is None else getattr(group, field)
        for phase, field in LoadGroup.PHASE_LIMIT_FIELDS.items()
    }
    local = timezone.localtime(at or timezone.now(), ZoneInfo(group.location.time_zone)).time()
    for entry in group.schedule if scheduled and group.schedule else []:
        start, end = time.fromisoformat(entry["start"]), time.fromisoformat(entry["end"])
        inside = start <= local < end if start <= end else (local >= start or local < end)
        if inside:
            for phase in limits:
                value = entry.get(f"limit_amps_l{phase}", entry.get("limit_amps"))
                if value is not None:
                    limits[phase] = Decimal(str(value))
            break
    return {1: limits[1]} if group.phases == 1 else limits


def load_group_evses(*, group: LoadGroup):
    """The EVSEs under the group's limit: those listed, or every EVSE of its location."""
    listed = group.evses.all()
    return listed if listed.exists() else EVSE.objects.filter(location_id=group.location_id)


def load_groups_of_evse(*, evse_pk: int) -> list[LoadGroup]:
    return list(
        LoadGroup.objects.filter(enabled=True, location__evses__pk=evse_pk)
        .filter(Q(evses__isnull=True) | Q(evses__pk=evse_pk))
        .distinct()
    )


@dataclass
class LoadSession:
    transaction: Transaction
    demand: Demand[int]  # its phases are the grid's phases it draws on
    held_amps: Decimal  # what the charger holds now: our accepted profile, else its default, else its maximum
    grid_currents: dict[int, Decimal]  # Current.Import measured per grid phase (empty: not reported per phase)
    held_number_phases: int | None = None  # numberPhases of the planner's profile the charger accepted last (3 absent)


POWER_TYPE_PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2}  # AC_3_PHASE and DC: 3
WIRING_VARIABLES = ("ConnectorPhaseRotation", "PhaseRotation", "SupplyPhases")


def _wiring(transactions: list[Transaction]) -> dict[int, tuple[Rotation, int | None]]:
    """Per transaction, its connector's phase rotation to the grid and the phases its station says it supplies
    (2.0.1 SupplyPhases), from the configuration the stations reported (services.device_model)."""
    reported: dict[int, dict[tuple[str, int, int, str], str]] = defaultdict(dict)
    for station_pk, component, evse_id, connector_id, variable, value in StationVariable.objects.filter(
        station_id__in={tx.station_id for tx in transactions}, variable__in=WIRING_VARIABLES, attribute_type="Actual"
    ).values_list("station_id", "component", "evse_id", "connector_id", "variable", "value"):
        reported[station_pk][(component, evse_id, connector_id, variable)] = value
    wiring = {}
    for tx in transactions:
        found = reported.get(tx.station_id, {})
        evse_id, connector_id = tx.ocpp_evse_id or 0, tx.connector_id or 1
        if ocpp_requests.is_ocpp16(tx.station.ocpp_version):
            rotation = connector_phase_rotation_16(found.get(("", 0, 0, "ConnectorPhaseRotation"), ""), evse_id)
            supply = None
        else:
            station, evse, connector = (
                phase_rotation_parse(found.get(key, ""))
                for key in (
                    ("ChargingStation", 0, 0, "PhaseRotation"),
                    ("EVSE", evse_id, 0, "PhaseRotation"),
                    ("Connector", evse_id, connector_id, "PhaseRotation"),
                )
            )
            rotation = phase_rotation_compose(station, phase_rotation_compose(evse, connector))
            text = found.get(("Connector", evse_id, connector_id, "SupplyPhases")) or found.get(
                ("EVSE", evse_id, 0, "SupplyPhases"), ""
            )
            supply = int(text) if text.strip().isdigit() and 1 <= int(text) <= 3 else None
        wiring[tx.pk] = (rotation, supply)
    return wiring


def _phases(
    *, group: LoadGroup, tx: Transaction, rotation: Rotation, supply: int | None
) -> tuple[frozenset[int], dict[int, Decimal]]:
    """The grid phases a session draws on, and what was measured on each (see LoadGroup)."""
    connectors = list(tx.evse.connectors.all()) if tx.evse else []
    mine = [c for c in connectors if c.connector_id == str(tx.connector_id)] or connectors
    count = supply or max((POWER_TYPE_PHASES.get(c.power_type, 3) for c in mine), default=3)
    wired = charger_phases_wired(count=count, rotation=rotation)
    currents = (tx.current_l1_last, tx.current_l2_last, tx.current_l3_last)
    in_use = charger_phases_in_use(wired=wired, ev_phases=tx.ev_phases, currents=currents)
    measured = {
        grid: amps
        for n, amps in enumerate(currents, start=1)
        if amps is not None and n in wired and (grid := rotation[n - 1]) is not None
    }
    if group.phases == 1:  # a single-phase connection: whatever the charger, it draws on L1
        return frozenset({1}), ({1: max(measured.values())} if measured else {})
    return grid_phases(rotation=rotation, charger_phases=in_use), measured


def load_group_sessions(*, group: LoadGroup) -> list[LoadSession]:
    """The group's running sessions in start order, each with its demand on the planner and the phases it draws on."""
    transactions = list(
        Transaction.objects.filter(status=Transaction.Status.ACTIVE, evse__in=load_group_evses(group=group))
        .select_related("station", "evse")
        .prefetch_related("evse__connectors")
        .order_by("started_at", "pk")
    )
    accepted = ChargingProfile.objects.filter(status="Accepted", source=ChargingProfile.Source.PLANNER)
    held: dict[int, Decimal] = {}
    held_number_phases: dict[int, int] = {}
    for tx_pk, limit, payload in (
        accepted.filter(transaction__in=transactions)
        .order_by("created_at", "id")
        .values_list("transaction_id", "limit", "profile")
    ):
        held[tx_pk] = limit
        held_number_phases[tx_pk] = _number_phases(payload)
    defaults: dict[int, Decimal] = {}
    for profile in accepted.filter(
        purpose="TxDefaultProfile", station__in={tx.station_id for tx in transactions}
    ).order_by("created_at", "id"):
        defaults[profile.station_id] = profile.limit
    # A partner's or staff's accepted profile caps the session: the planner's profile replaces it on the charger
    # (same purpose and stack level) and must not give more than they asked for.
    caps: dict[int, tuple[str, Decimal]] = {}
    for tx_pk, unit, limit in (
        ChargingProfile.objects.filter(status="Accepted", purpose="TxProfile", transaction__in=transactions)
        .exclude(source=ChargingProfile.Source.PLANNER)
        .order_by("created_at", "id")
        .values_list("transaction_id", "charging_rate_unit", "limit")
    ):
        caps[tx_pk] = (unit, limit)
    priorities = dict(
        Token.objects.filter(uid__in={tx.id_tag for tx in transactions if tx.id_tag}).values_list(
            "uid", "charging_priority"
        )
    )
    wiring = _wiring(transactions)
    sessions = []
    for tx in transactions:
        phases, measured = _phases(group=group, tx=tx, rotation=wiring[tx.pk][0], supply=wiring[tx.pk][1])
        volts = Decimal(group.voltage * len(phases))
        connectors = list(tx.evse.connectors.all()) if tx.evse else []
        max_amps = Decimal(max((c.max_amperage for c in connectors), default=32))
        if tx.pk in caps:
            unit, limit = caps[tx.pk]
            max_amps = min(max_amps, limit if unit == "A" else (limit / volts).quantize(Decimal("0.1")))
        held_amps = held.get(tx.pk, defaults.get(tx.station_id, max_amps))
        on_phases = [measured[phase] for phase in phases if phase in measured]
        if on_phases and len(on_phases) == len(phases):
            drawn: Decimal | None = max(on_phases).quantize(Decimal("0.1"))
        else:
            drawn = (Decimal(tx.power_last) / volts).quantize(Decimal("0.1")) if tx.power_last is not None else None
        if tx.ev_max_amps is not None:  # the car says it takes no more (NotifyEVChargingNeeds)
            max_amps = max(min(max_amps, tx.ev_max_amps), group.min_charging_amps)
        demand = Demand(
            key=tx.pk,
            max_amps=max_amps,
            min_amps=max(group.min_charging_amps, min(tx.ev_min_amps or Decimal(0), max_amps)),
            priority=priorities.get(tx.id_tag, 0) + tx.preference_priority,
            drawn_amps=drawn,
            allocated_amps=held.get(tx.pk),
            phases=phases,
        )
        sessions.append(LoadSession(tx, demand, held_amps, measured, held_number_phases.get(tx.pk)))
    return sessions


def _tx_profile(*, tx: Transaction, amps: Decimal, phases: frozenset[int]) -> ocpp_requests.SetChargingProfile:
    """The session's share; a session on fewer than three phases is told how many (numberPhases, 3 when absent)."""
    number_phases = len(phases) if len(phases) < len(ALL_PHASES) else None
    return ocpp_requests.SetChargingProfile(
        evse_id=tx.ocpp_evse_id or 0,
        transaction_id=tx.transaction_id,
        profile_id=PLANNER_TX_PROFILE_ID_BASE + (tx.ocpp_evse_id or 0),
        schedule=ocpp_requests.ChargingSchedule(
            "A", (ocpp_requests.ChargingSchedulePeriod(0, amps, number_phases=number_phases),)
        ),
        stack_level=settings.LOAD_MANAGEMENT_STACK_LEVEL,
    )


def _send_all(sends: Sequence[tuple[ChargingStation, ocpp_requests.OcppRequest]]) -> list[tuple[dict, str]]:
    """Send every request at once; each one's payload as sent and the answer's status (or why there was none)."""
    calls = [(station.identity, request.for_version(station.ocpp_version)) for station, request in sends]
    answers = command_send_many(calls=calls)
    for (station, _), (_, call), answer in zip(sends, calls, answers, strict=True):
        command_audit_announce(
            station_pk=station.pk,
            action=call.action,
            payload=call.payload,
            answer=None if isinstance(answer, CommandError) else answer,
            error=answer if isinstance(answer, CommandError) else None,
            actor="load planner",
        )
    return [
        (call.payload, answer.reason if isinstance(answer, CommandError) else str(answer.get("status", "")))
        for (_, call), answer in zip(calls, answers, strict=True)
    ]


def _apply(sessions: list[LoadSession], amps: dict[int, Decimal]) -> dict[int, str]:
    """Send the profiles to the charger of each session, all at once; record them; the answers by transaction."""
    sends = [
        (s.transaction.station, _tx_profile(tx=s.transaction, amps=amps[s.transaction.pk], phases=s.demand.phases))
        for s in sessions
    ]
    if not sends:
        return {}
    answers = _send_all(sends)
    ChargingProfile.objects.bulk_create(
        ChargingProfile(
            **_profile_fields(
                s.transaction.station_id, payload, ChargingProfile.Source.PLANNER, status, s.transaction.pk
            )
        )
        for s, (payload, status) in zip(sessions, answers, strict=True)
    )
    return {s.transaction.pk: status for s, (_, status) in zip(sessions, answers, strict=True)}


def charging_profile_record(
    *, station_pk: int, payload: dict, source: str, status: str, transaction_pk: int | None = None
) -> ChargingProfile:
    """Keep a SetChargingProfile sent to a station (its payload, 1.6 or 2.0.1), whoever sent it, with the charger's
    answer (or why there was none)."""
    return ChargingProfile.objects.create(**_profile_fields(station_pk, payload, source, status, transaction_pk))


# ClearChargingProfile's answers as the rows of the profile it cleared say them; any other answer (or none) leaves
# them as they were.
_CLEAR_ANSWERS = {"Accepted": "Cleared", "Unknown": "Unknown to the station"}


def charging_profile_clear_record(*, station_pk: int, profile_id: int, status: str) -> int:
    """A station's answer to ClearChargingProfile of `profile_id`, whoever asked (staff, a partner's DELETE): its
    accepted rows of that id say Cleared, or "Unknown to the station" when it held no such profile, so neither the
    station page nor the planner's caps count them as held. Returns how many rows changed."""
    cleared = _CLEAR_ANSWERS.get(status)
    if cleared is None:
        return 0
    return ChargingProfile.objects.filter(station_id=station_pk, profile_id=profile_id, status="Accepted").update(
        status=cleared
    )


def _profile_parts(payload: dict) -> tuple[dict, dict, list[dict]]:
    """A SetChargingProfile payload's (1.6 or 2.0.1) profile, its (first) schedule and that schedule's periods."""
    profile = payload.get("csChargingProfiles") or payload.get("chargingProfile") or {}
    schedule = profile.get("chargingSchedule") or {}
    if isinstance(schedule, list):  # 2.0.1: a list of schedules
        schedule = schedule[0] if schedule else {}
    return profile, schedule, schedule.get("chargingSchedulePeriod") or []


def _number_phases(payload: dict) -> int:
    """The numberPhases of a SetChargingProfile's first period (1.6 or 2.0.1); 3 when absent, as chargers read it."""
    periods = _profile_parts(payload or {})[2]
    return int((periods[0] if periods else {}).get("numberPhases") or 3)


def _profile_fields(station_pk: int, payload: dict, source: str, status: str, transaction_pk: int | None) -> dict:
    profile, schedule, periods = _profile_parts(payload)
    return {
        "station_id": station_pk,
        "ocpp_evse_id": payload.get("connectorId", payload.get("evseId", 0)),
        "transaction_id": transaction_pk,
        "profile_id": profile.get("chargingProfileId", profile.get("id", 0)),
        "purpose": profile.get("chargingProfilePurpose", ""),
        "stack_level": profile.get("stackLevel", 0),
        "charging_rate_unit": schedule.get("chargingRateUnit", "A"),
        "limit": Decimal(str(periods[0]["limit"])) if periods else Decimal(0),
        "profile": payload,
        "source": source,
        "status": status,
    }


def load_group_plan(*, group: LoadGroup) -> tuple[dict[int, Decimal], list[LoadSession], dict[int, Decimal]]:
    """The group's limit now per phase, its running sessions and the planner's share of each (A per phase)."""
    limits = load_group_limits(group=group)
    sessions = [s for s in load_group_sessions(group=group) if s.transaction.station.online]
    return limits, sessions, load_plan(limit_amps=limits, demands=[s.demand for s in sessions])


def _rebalance_once(group: LoadGroup) -> dict[int, Decimal]:
    limits, sessions, plan = load_group_plan(group=group)
    held = {s.transaction.pk: s.held_amps for s in sessions}
    # A session whose charger already holds its planned share is left alone, unless we never sent it a profile or
    # it now draws on another number of phases than its profile says (a car that asked for, or is measured on, one).
    first_time = {
        s.transaction.pk
        for s in sessions
        if s.demand.allocated_amps is None
        or (s.held_number_phases is not None and s.held_number_phases != min(len(s.demand.phases), 3))
    }
    down, up = load_steps(before=held, after=plan)
    up = sorted(set(up) | {pk for pk in first_time if pk not in down}, key=list(plan).index)
    by_pk = {s.transaction.pk: s for s in sessions}
    answers = _apply([by_pk[pk] for pk in down], plan)
    for pk, status in answers.items():
        if status == "Accepted":
            held[pk] = plan[pk]
    # Raise only within what the chargers are known to hold now, on every phase, in the planner's order.
    phases = {pk: s.demand.phases for pk, s in by_pk.items()}
    granted = load_raises(limit_amps=limits, phases=phases, held=held, plan=plan, up=up)
    for pk in granted:
        held[pk] = plan[pk]  # counted as held while in flight; corrected below when refused
    for pk, status in _apply([by_pk[pk] for pk in granted], plan).items():
        if status != "Accepted":
            held[pk] = by_pk[pk].held_amps
    load_sample_record(group=group, limits=limits, sessions=sessions, held=held)
    return held


def _same_plan(last: tuple, *, limit: Decimal, planned: Decimal, connectors: list[dict]) -> bool:
    limit_then, planned_then, connectors_then = last
    shares = {(c["transaction"], c["planned"]) for c in connectors}
    return (
        limit_then == limit
        and planned_then == planned
        and {(c["transaction"], c["planned"]) for c in connectors_then} == shares
    )


def _float_or_none(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def load_session_drawn_on(session: LoadSession, phase: int) -> Decimal | None:
    """What the car draws on a grid phase: measured there, else its per-phase draw from its power."""
    return session.grid_currents.get(phase, session.demand.drawn_amps)


def load_charted_phase(*, limits: dict[int, Decimal], sessions: Sequence[LoadSession], held: dict[int, Decimal]) -> int:
    """The phase the load chart follows: the one with the lowest limit (the busiest of those), so that what is
    charted never exceeds the charted limit and, on a site with one limit for every phase, the most loaded phase."""
    lowest = min(limits.values())

    def planned_on(phase: int) -> Decimal:
        return sum((held.get(s.transaction.pk, s.held_amps) for s in sessions if phase in s.demand.phases), Decimal(0))

    return max((p for p, limit in limits.items() if limit == lowest), key=lambda p: (planned_on(p), -p))


def load_sample_record(
    *, group: LoadGroup, limits: dict[int, Decimal], sessions: Sequence[LoadSession], held: dict[int, Decimal]
) -> LoadSample | None:
    """Keep the group's state after a planner run for its chart, on the charted phase (`load_charted_phase`): its
    limit, what the chargers hold there (planned) and what the cars draw there, in total and per session (see
    LoadSample). A run that changed nothing the chargers hold within LOAD_HISTORY_MIN_SECONDS of the last sample
    leaves none (the periodic runs would otherwise write one every 30 s per group); None then."""
    phase = load_charted_phase(limits=limits, sessions=sessions, held=held)
    limit = limits[phase]
    sessions = [s for s in sessions if phase in s.demand.phases]
    connectors = [
        {
            "station": s.transaction.station.identity,
            "evse": s.transaction.ocpp_evse_id or 0,
            "transaction": s.transaction.pk,
            "planned": float(held.get(s.transaction.pk, s.held_amps)),
            "drawn": _float_or_none(load_session_drawn_on(s, phase)),
        }
        for s in sessions
    ]
    now = timezone.now()
    planned = sum((held.get(s.transaction.pk, s.held_amps) for s in sessions), start=Decimal(0))
    last = (
        LoadSample.objects.filter(
            load_group=group, taken_at__gt=now - timedelta(seconds=settings.LOAD_HISTORY_MIN_SECONDS)
        )
        .order_by("-taken_at", "-id")
        .values_list("limit_amps", "planned_amps", "connectors")
        .first()
    )
    if last is not None and _same_plan(last, limit=limit, planned=planned, connectors=connectors):
        return None
    sample = LoadSample.objects.create(
        load_group=group,
        taken_at=now,
        limit_amps=limit,
        planned_amps=planned,
        drawn_amps=sum((load_session_drawn_on(s, phase) or Decimal(0) for s in sessions), start=Decimal(0)),
        connectors=connectors,
    )
    events.announce(events.load_sampled, load_group_pk=group.pk)
    return sample


def load_group_rebalance(*, load_group_id: int) -> dict[int, Decimal] | None:
    """Share the group's limit among its running sessions now; returns what each charger holds (A per phase), or
    None when another rebalance of the group is running (it will run once more for this request)."""
    lock, dirty = f"load-group:{load_group_id}:lock", f"load-group:{load_group_id}:dirty"
    if not cache.add(lock, 1, timeout=settings.LOAD_MANAGEMENT_LOCK_SECONDS):
        cache.set(dirty, 1, timeout=settings.LOAD_MANAGEMENT_LOCK_SECONDS)
        return None
    try:
        held: dict[int, Decimal] = {}
        for _ in range(5):
            cache.delete(dirty)
            group = LoadGroup.objects.select_related("location").filter(pk=load_group_id, enabled=True).first()
            if group is None:
                return {}
            held = _rebalance_once(group)
            if not cache.get(dirty):
                break
        return held
    finally:
        cache.delete(lock)


def load_rebalance_for_transaction(*, transaction_pk: int) -> None:
    """A session started or ended: rebalance the groups its EVSE is in."""
    evse_pk = Transaction.objects.filter(pk=transaction_pk).values_list("evse_id", flat=True).first()
    if evse_pk is None:
        return
    for group in load_groups_of_evse(evse_pk=evse_pk):
        load_group_rebalance(load_group_id=group.pk)


def load_groups_rebalance() -> int:
    """Periodic: every enabled group with running sessions (draw changed, a schedule boundary passed)."""
    groups = LoadGroup.objects.filter(enabled=True)
    count = 0
    for group in groups:
        if Transaction.objects.filter(
            status=Transaction.Status.ACTIVE, evse__in=load_group_evses(group=group)
        ).exists():
            load_group_rebalance(load_group_id=group.pk)
            count += 1
    return count


def load_station_default_profile(*, station_pk: int) -> str | None:
    """A station of a managed group came online: its sessions start at the group's minimum current until the
    planner gives them their share (TxDefaultProfile on the whole station, 1.6 connectorId 0 / 2.0.1 evseId 0)."""
    station = ChargingStation.objects.filter(pk=station_pk).first()
    if station is None:
        return None
    groups = {
        group.pk: group
        for evse in EVSE.objects.filter(station=station)
        for group in load_groups_of_evse(evse_pk=evse.pk)
    }
    if not groups:
        return None
    amps = min(group.min_charging_amps for group in groups.values())
    request = ocpp_requests.SetChargingProfile(
        evse_id=0,
        transaction_id=None,
        profile_id=PLANNER_DEFAULT_PROFILE_ID,
        schedule=ocpp_requests.ChargingSchedule("A", (ocpp_requests.ChargingSchedulePeriod(0, amps),)),
        stack_level=settings.LOAD_MANAGEMENT_STACK_LEVEL,
        purpose="TxDefaultProfile",
    )
    [(payload, status)] = _send_all([(station, request)])
    charging_profile_record(
        station_pk=station.pk, payload=payload, source=ChargingProfile.Source.PLANNER, status=status
    )
    return status


def ev_current_range(charging_needs: dict) -> tuple[Decimal | None, Decimal | None]:
    """(min, max) A per phase the car takes, from a 2.0.1 ChargingNeedsType: its acChargingParameters evMinCurrent and
    evMaxCurrent (per phase, as the planner counts). A DC car's currents are on the DC side: not ours to share."""
    ac = charging_needs.get("ac_charging_parameters") or {}

    def amps(name: str) -> Decimal | None:
        value = ac.get(name)
        return Decimal(str(value)) if isinstance(value, int | float) and value >= 0 else None

    return amps("ev_min_current"), amps("ev_max_current")


EV_ENERGY_TRANSFER_PHASES = {"AC_single_phase": 1, "AC_two_phase": 2, "AC_three_phase": 3}


def ev_phases(charging_needs: dict) -> int | None:
    """How many phases the car charges on, from a 2.0.1 ChargingNeedsType's requestedEnergyTransfer (None: DC, or
    not said)."""
    return EV_ENERGY_TRANSFER_PHASES.get(str(charging_needs.get("requested_energy_transfer") or ""))


def transaction_ev_needs_record(
    *,
    station_pk: int,
    ocpp_evse_id: int,
    min_amps: Decimal | None,
    max_amps: Decimal | None,
    departure_time: datetime | None,
    phases: int | None = None,
) -> bool:
    """A 2.0.1 car's charging needs (NotifyEVChargingNeeds): its current range caps what the planner gives its
    session, the phases it asked for say which of the group's phases it draws on, and the group is shared again.
    False when no session runs on that EVSE (nothing to plan)."""
    tx = (
        Transaction.objects.filter(station_id=station_pk, ocpp_evse_id=ocpp_evse_id, status=Transaction.Status.ACTIVE)
        .order_by("-started_at")
        .first()
    )
    if tx is None:
        return False
    Transaction.objects.filter(pk=tx.pk).update(
        ev_min_amps=min_amps, ev_max_amps=max_amps, ev_departure_time=departure_time, ev_phases=phases
    )
    events.announce(events.transaction_load_needs_changed, transaction_pk=tx.pk)
    return True


def transaction_preference_record(*, transaction_pk: int, priority: int, departure_time: datetime | None) -> None:
    """The driver's preference for a session (from a partner's OCPI ChargingPreferences, in the planner's words):
    a higher priority gets current first under the group's limit; the group is shared again."""
    Transaction.objects.filter(pk=transaction_pk).update(preference_priority=priority, ev_departure_time=departure_time)
    events.announce(events.transaction_load_needs_changed, transaction_pk=transaction_pk)
