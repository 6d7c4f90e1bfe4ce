"""Smart charging on the station page: the profiles sent to the station (by partners, staff and the load planner)
and, per EVSE, the last composite schedule the station reported, ready for its step chart."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet

from cpo.models import ChargingStation
from ocpp_gateway.models import ChargingProfile, CompositeSchedule, Transaction


@dataclass
class CompositeScheduleBlock:
    """One EVSE (0: the station's grid connection) with its latest composite schedule, if asked for."""

    ocpp_evse_id: int
    label: str
    latest: CompositeSchedule | None
    chart: dict | None  # {"unit", "start_ms", "end_ms", "points": [[ms, limit], ...]} for an accepted answer

    @property
    def state(self) -> str:
        """ok (a schedule to draw), refused (Rejected, no answer, offline...), or empty (never asked)."""
        if self.latest is None:
            return "empty"
        return "ok" if self.latest.status == "Accepted" else "refused"

    @property
    def chart_id(self) -> str:
        return f"schedule-data-{self.ocpp_evse_id}"

    @property
    def state_text(self) -> str:
        """What the station's answer means, in staff's words."""
        if self.latest is None:
            return "Not asked yet."
        status = self.latest.status
        if status == "Accepted":
            return "Accepted" if self.chart else "Accepted, but without a schedule to draw"
        if status == "Rejected":
            return "Rejected by the station (no schedule for it, or it declines to tell)"
        reason, _, detail = status.partition(":")
        words = {
            "timeout": "No answer from the station in time",
            "offline": "Not asked: the station is offline",
            "unavailable": "Not asked: the platform could not reach the station's gateway",
            "call_error": "The station answered with an error",
        }.get(reason)
        return f"{words}{f' ({detail.strip()})' if detail else ''}" if words else status


def composite_schedule_chart(schedule: CompositeSchedule) -> dict | None:
    """The limit over time of an accepted schedule as steps: one point at each period's start and one at the end
    (the schedule's own duration, else the one asked for) holding the last limit."""
    if schedule.status != "Accepted" or schedule.schedule_start is None or not schedule.periods:
        return None
    answer = schedule.answer or {}
    body = answer.get("chargingSchedule") or answer.get("schedule") or {}
    duration = body.get("duration") if isinstance(body, dict) else None
    start = schedule.schedule_start
    end = start + timedelta(seconds=int(duration or schedule.duration))
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    points = [[start_ms + p["start_period"] * 1000, p["limit"]] for p in schedule.periods]
    points.append([max(end_ms, points[-1][0]), schedule.periods[-1]["limit"]])
    return {"unit": schedule.charging_rate_unit or "A", "start_ms": start_ms, "end_ms": end_ms, "points": points}


def station_composite_schedules(*, station: ChargingStation) -> list[CompositeScheduleBlock]:
    """The grid connection (0) and each EVSE, with what the station last answered for it."""
    latest: dict[int, CompositeSchedule] = {}
    for schedule in CompositeSchedule.objects.filter(station=station).order_by("-created_at", "-id")[:200]:
        latest.setdefault(schedule.ocpp_evse_id, schedule)
    targets = [(0, "Whole station (grid connection)")] + [
        (evse.ocpp_evse_id, f"Connector {evse.ocpp_evse_id} · {evse.evse_id or evse.uid}")
        for evse in station.evses.order_by("ocpp_evse_id")
    ]
    blocks = []
    for ocpp_evse_id, label in targets:
        last = latest.get(ocpp_evse_id)
        chart = composite_schedule_chart(last) if last is not None else None
        blocks.append(CompositeScheduleBlock(ocpp_evse_id, label, last, chart))
    return blocks


def station_charging_profiles(*, station: ChargingStation, limit: int = 30) -> QuerySet[ChargingProfile]:
    """The profiles sent to the station, newest first, whoever sent them."""
    return (
        ChargingProfile.objects.filter(station=station)
        .select_related("transaction")
        .order_by("-created_at", "-id")[:limit]
    )


def station_charging_profiles_held(*, station: ChargingStation, scan: int = 200) -> list[ChargingProfile]:
    """The profiles the station should hold by our records, newest first, one per profile id (its latest accepted
    row): accepted, not cleared or replaced since, and not a TxProfile of a session that has ended (the station drops
    those itself). Read from the station's latest `scan` profiles."""
    rows = (
        ChargingProfile.objects.filter(station=station, status="Accepted")
        .exclude(Q(purpose="TxProfile") & ~Q(transaction__status=Transaction.Status.ACTIVE))
        .order_by("-created_at", "-id")[:scan]
    )
    held: dict[int, ChargingProfile] = {}
    for row in rows:
        held.setdefault(row.profile_id, row)
    return list(held.values())
