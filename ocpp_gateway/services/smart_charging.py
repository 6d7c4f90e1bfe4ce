"""Smart charging as staff read it: the composite schedule a station says it will follow (1.6 Smart Charging
profile, 2.0.1 K08 GetCompositeSchedule). The profiles we send are recorded by load management
(`services/load_management.py`, `charging_profile_record`), whoever sent them.

`composite_schedule_request` waits for the charger: call it from a view or a task, never from a handler."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cpo.models import ChargingStation
from ocpp_gateway.models import CompositeSchedule
from ocpp_gateway.requests import GetCompositeSchedule
from ocpp_gateway.services.command_audit import command_send_audited

CHARGING_RATE_UNITS = ("A", "W")


def composite_schedule_request(
    *, station_pk: int, ocpp_evse_id: int, duration: int, charging_rate_unit: str = "", actor: str
) -> CompositeSchedule:
    """Ask the station for the schedule it will follow on an EVSE (0: its grid connection) for the next `duration`
    seconds; the request is audited under `actor` and the answer kept (an Accepted one with its schedule; Rejected,
    no answer or offline as its status), so the page always has a state to show."""
    station = ChargingStation.objects.get(pk=station_pk)
    request = GetCompositeSchedule(evse_id=ocpp_evse_id, duration=duration, charging_rate_unit=charging_rate_unit)
    answered = command_send_audited(station=station, request=request, actor=actor)
    fields: dict = {}
    if answered.ok and answered.status == "Accepted":
        fields = composite_schedule_from_answer(answered.answer or {}, asked_at=timezone.now())
    return CompositeSchedule.objects.create(
        station=station,
        ocpp_evse_id=ocpp_evse_id,
        duration=duration,
        requested_unit=charging_rate_unit,
        requested_by=actor[:150],
        status=answered.status[:60],
        answer=answered.answer,
        **fields,
    )


def composite_schedule_from_answer(answer: dict, *, asked_at: datetime) -> dict:
    """The schedule of an accepted GetCompositeSchedule answer (camelCase, as the command service returns it):
    1.6 `scheduleStart` + `chargingSchedule` (its own `startSchedule` when the first is missing), 2.0.1 `schedule`
    (CompositeScheduleType with `scheduleStart`). A start the charger leaves out is when we asked."""
    schedule = answer.get("chargingSchedule") or answer.get("schedule") or {}
    if not isinstance(schedule, dict):
        schedule = {}
    start_text = answer.get("scheduleStart") or schedule.get("scheduleStart") or schedule.get("startSchedule")
    start = parse_datetime(start_text) if isinstance(start_text, str) else None
    if start is not None and timezone.is_naive(start):
        start = start.replace(tzinfo=UTC)
    periods = [
        {"start_period": int(p.get("startPeriod", 0)), "limit": float(p.get("limit", 0))}
        for p in schedule.get("chargingSchedulePeriod") or []
        if isinstance(p, dict)
    ]
    periods.sort(key=lambda p: p["start_period"])
    unit = str(schedule.get("chargingRateUnit", ""))[:1]
    return {"schedule_start": start or asked_at, "charging_rate_unit": unit, "periods": periods}
