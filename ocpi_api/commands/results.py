"""The charger's answer as an OCPI result, and its delivery to the partner's `response_url`.

`command_answer_record` turns the charger's CALLRESULT (or why there is none) into the CommandResult /
ChargingProfileResult body we owe the partner; `command_result_deliver` POSTs it with our credentials token, one
attempt at a time: the Celery task (ocpi_api.commands.tasks) retries with backoff, DELIVERY_ATTEMPTS in all (OCPI asks
for no more).
"""

import json
import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from cpo.models import EvseStatus
from cpo.task_dispatch import task_dispatch
from ocpi_api.client import ocpi_request
from ocpi_api.envelope import PartnerApiError, ocpi_datetime
from ocpi_api.models import Command, CommandState, CommandType, Partner
from ocpp_gateway.commands import CommandError
from ocpp_gateway.models import ChargingProfile, Reservation
from ocpp_gateway.selectors import load_managed_station_pks
from ocpp_gateway.services.command_audit import command_audit_announce
from ocpp_gateway.services.load_management import charging_profile_clear_record, charging_profile_record
from ocpp_gateway.services.reservations import reservation_answer_record, reservation_end
from ocpp_gateway.tasks import load_rebalance_for_transaction_task

logger = logging.getLogger(__name__)

CHARGING_PROFILE_COMMANDS = (
    CommandType.SET_CHARGING_PROFILE,
    CommandType.GET_ACTIVE_CHARGING_PROFILE,
    CommandType.CLEAR_CHARGING_PROFILE,
)
DELIVERY_ATTEMPTS = 3


class Result:
    """CommandResultType and ChargingProfileResultType values."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"
    UNKNOWN = "UNKNOWN"


def display_text(text: str) -> list[dict]:
    return [{"language": "en", "text": text[:512]}] if text else []


def _ocpi_datetime(value: str | datetime) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ocpi_datetime(value)


_STATUS_RESULTS = {
    CommandType.START_SESSION: {"Accepted": Result.ACCEPTED},
    CommandType.STOP_SESSION: {"Accepted": Result.ACCEPTED},
    CommandType.UNLOCK_CONNECTOR: {
        "Unlocked": Result.ACCEPTED,
        "UnlockFailed": Result.FAILED,
        "NotSupported": Result.NOT_SUPPORTED,
        "OngoingAuthorizedTransaction": Result.REJECTED,
        "UnknownConnector": Result.REJECTED,
    },
    CommandType.RESERVE_NOW: {
        "Accepted": Result.ACCEPTED,
        "Occupied": Result.EVSE_OCCUPIED,
        "Faulted": Result.EVSE_INOPERATIVE,
        "Unavailable": Result.EVSE_INOPERATIVE,
        "Rejected": Result.REJECTED,
    },
    CommandType.CANCEL_RESERVATION: {"Accepted": Result.ACCEPTED, "Rejected": Result.UNKNOWN_RESERVATION},
    CommandType.SET_CHARGING_PROFILE: {"Accepted": Result.ACCEPTED},
    CommandType.GET_ACTIVE_CHARGING_PROFILE: {"Accepted": Result.ACCEPTED},
    CommandType.CLEAR_CHARGING_PROFILE: {"Accepted": Result.ACCEPTED, "Unknown": Result.UNKNOWN},
}
_OCCUPIED = {EvseStatus.CHARGING, EvseStatus.RESERVED, EvseStatus.BLOCKED}
_INOPERATIVE = {EvseStatus.INOPERATIVE, EvseStatus.OUTOFORDER}


def active_charging_profile_from_ocpp(answer: dict) -> dict | None:
    """A GetCompositeSchedule answer (1.6 `chargingSchedule`, 2.0.1 `schedule`) as an OCPI ActiveChargingProfile."""
    schedule = answer.get("chargingSchedule") or answer.get("schedule")
    if not isinstance(schedule, dict):
        return None
    start = answer.get("scheduleStart") or schedule.get("scheduleStart") or schedule.get("startSchedule")
    profile = {
        "charging_rate_unit": schedule.get("chargingRateUnit", "W"),
        "charging_profile_period": [
            {"start_period": p.get("startPeriod", 0), "limit": p.get("limit", 0)}
            for p in schedule.get("chargingSchedulePeriod") or []
        ],
    }
    if start:
        profile["start_date_time"] = _ocpi_datetime(start)
    if schedule.get("duration") is not None:
        profile["duration"] = schedule["duration"]
    if schedule.get("minChargingRate") is not None:
        profile["min_charging_rate"] = schedule["minChargingRate"]
    return {
        "start_date_time": _ocpi_datetime(start) if start else ocpi_datetime(timezone.now()),
        "charging_profile": profile,
    }


def result_of_answer(cmd: Command, answer: dict) -> tuple[str, str, dict | None]:
    """(result, message, ActiveChargingProfile) for the charger's CALLRESULT."""
    status = str(answer.get("status", ""))
    result = _STATUS_RESULTS[cmd.command].get(status)
    if result is None:
        result = Result.UNKNOWN if cmd.command == CommandType.CLEAR_CHARGING_PROFILE else Result.REJECTED
        if cmd.command == CommandType.START_SESSION and cmd.evse is not None:
            cmd.evse.refresh_from_db(fields=["status"])
            if cmd.evse.status in _OCCUPIED:
                result = Result.EVSE_OCCUPIED
            elif cmd.evse.status in _INOPERATIVE:
                result = Result.EVSE_INOPERATIVE
    profile = None
    if cmd.command == CommandType.GET_ACTIVE_CHARGING_PROFILE and result == Result.ACCEPTED:
        profile = active_charging_profile_from_ocpp(answer)
        if profile is None:
            result = Result.UNKNOWN
    info = answer.get("statusInfo") or {}
    message = f"The charge point answered {status}" + (f" ({info.get('reasonCode')})" if info.get("reasonCode") else "")
    return result, message, profile


def result_of_error(cmd: Command, error: CommandError) -> tuple[str, str]:
    if cmd.command in CHARGING_PROFILE_COMMANDS:  # ChargingProfileResultType has no TIMEOUT / FAILED
        return Result.REJECTED, str(error)
    if error.reason == CommandError.TIMEOUT:
        return Result.TIMEOUT, "The charge point did not answer in time"
    if error.reason == CommandError.CALL_ERROR and error.error_code in ("NotImplemented", "NotSupported"):
        return Result.NOT_SUPPORTED, f"The charge point does not support this ({error.error_code})"
    if error.reason in (CommandError.OFFLINE, CommandError.NOT_FOUND):
        return Result.FAILED, "The charge point is offline"
    return Result.FAILED, f"The command failed: {error}"[:255]


@transaction.atomic
def command_answer_record(*, command_pk: int, answer: dict | None = None, error: CommandError | None = None) -> None:
    """Keep the charger's answer (or why there is none) and the result body we owe the partner."""
    cmd = Command.objects.select_related("evse").get(pk=command_pk)
    answer = _json_safe(answer) if answer is not None else None
    profile = None
    if error is not None:
        result, message = result_of_error(cmd, error)
        cmd.ocpp_error = f"{error.reason}: {error}"[:255]
    else:
        result, message, profile = result_of_answer(cmd, answer or {})
        cmd.ocpp_response = answer
    if cmd.command in CHARGING_PROFILE_COMMANDS:
        body = {"result": result}
        if cmd.command == CommandType.GET_ACTIVE_CHARGING_PROFILE and profile is not None:
            body["profile"] = profile
    else:
        body = {"result": result}
        if result != Result.ACCEPTED and message:
            body["message"] = display_text(message)
    cmd.result, cmd.result_body = result, body
    cmd.state, cmd.answered_at = CommandState.ANSWERED, timezone.now()
    cmd.save()
    if cmd.ocpp_action:  # it went to the charger (or was meant to): the audit log says which partner asked
        partner = Partner.objects.filter(pk=cmd.partner_id).values_list("name", "country_code", "party_id").first()
        name, country, party = partner or ("?", "", "")
        command_audit_announce(
            station_pk=cmd.station_id,
            action=cmd.ocpp_action,
            payload=cmd.ocpp_request or {},
            answer=answer,
            error=error,
            actor=f"OCPI {cmd.command} from {country}*{party} {name}",
        )
    if cmd.command == CommandType.SET_CHARGING_PROFILE and cmd.ocpp_request:
        status = str((answer or {}).get("status", "")) if error is None else error.reason
        charging_profile_record(
            station_pk=cmd.station_id,
            payload=cmd.ocpp_request,
            source=ChargingProfile.Source.PARTNER,
            status=status,
            transaction_pk=cmd.transaction_id,
        )
        if status == "Accepted" and cmd.transaction_id and cmd.station_id in load_managed_station_pks():
            # Under a site limit, the planner's profile takes the partner's place, capped by what it asked for.
            task_dispatch(load_rebalance_for_transaction_task, cmd.transaction_id)
    if cmd.command == CommandType.CLEAR_CHARGING_PROFILE and cmd.ocpp_request and error is None:
        request = cmd.ocpp_request  # 1.6 {"id": ...}, 2.0.1 {"chargingProfileId": ...}
        charging_profile_clear_record(
            station_pk=cmd.station_id,
            profile_id=request.get("id", request.get("chargingProfileId")),
            status=str((answer or {}).get("status", "")),
        )
    _reservation_answer(cmd=cmd, answer=answer, error=error)


def _reservation_answer(*, cmd: Command, answer: dict | None, error: CommandError | None) -> None:
    """What the charger's answer means for the reservation (ocpp_gateway.services.reservations)."""
    if cmd.ocpp_reservation_id is None or not Reservation.objects.filter(pk=cmd.ocpp_reservation_id).exists():
        return
    status = str((answer or {}).get("status", "")) if error is None else f"{error.reason}"
    if cmd.command == CommandType.RESERVE_NOW:
        reservation_answer_record(reservation_pk=cmd.ocpp_reservation_id, status=status)
    elif cmd.command == CommandType.CANCEL_RESERVATION and status == "Accepted":
        reservation_end(reservation_pk=cmd.ocpp_reservation_id, status=Reservation.Status.CANCELLED)


def reservation_cancellation_record(*, reservation_pk: int) -> int | None:
    """mod_commands "Reservation canceled by the CPO": a partner's reservation that ended CANCELLED without the
    partner's own CANCEL_RESERVATION (staff cancelled it, or the charger removed it) owes the partner a CommandResult
    CANCELED_RESERVATION at the response_url of its RESERVE_NOW. Kept as a CANCEL_RESERVATION command row, ANSWERED,
    whose pk is returned for delivery; None when there is nothing to tell (not a partner's, not cancelled, cancelled
    by the partner, or already told)."""
    if not Reservation.objects.filter(pk=reservation_pk, status=Reservation.Status.CANCELLED).exists():
        return None
    commands = Command.objects.filter(ocpp_reservation_id=reservation_pk)
    reserve = (
        commands.filter(command=CommandType.RESERVE_NOW)
        .exclude(state=CommandState.REFUSED)
        .order_by("-created_at", "-id")
        .first()
    )
    done = (Result.ACCEPTED, Result.CANCELED_RESERVATION)
    if reserve is None or commands.filter(command=CommandType.CANCEL_RESERVATION, result__in=done).exists():
        return None
    cmd = Command.objects.create(
        partner_id=reserve.partner_id,
        command=CommandType.CANCEL_RESERVATION,
        request={"reservation_id": reserve.reservation_id},
        response_url=reserve.response_url,
        response="",
        response_message="Cancelled by the CPO (staff or the charge point)",
        state=CommandState.ANSWERED,
        station_id=reserve.station_id,
        evse_id=reserve.evse_id,
        reservation_id=reserve.reservation_id,
        ocpp_reservation_id=reservation_pk,
        result=Result.CANCELED_RESERVATION,
        result_body={"result": Result.CANCELED_RESERVATION},
        answered_at=timezone.now(),
    )
    return cmd.pk


def _json_safe(value):
    """The ocpp library gives numbers as Decimal; JSON columns and bodies want plain numbers."""

    def number(obj):
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() and "." not in str(obj) else float(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.loads(json.dumps(value, default=number))


class ResultNotDelivered(Exception):
    """The partner's response_url did not take the result; the delivery task tries again later."""


def command_result_deliver(*, command_pk: int, last_attempt: bool = True) -> bool:
    """POST the result to the partner's response_url with our token: one attempt. True when it is delivered (now or
    before). A failure is kept on the command and raises ResultNotDelivered, unless this was the last attempt: then
    the command is UNDELIVERED and the answer False."""
    cmd = Command.objects.select_related("partner").get(pk=command_pk)
    if cmd.state not in (CommandState.ANSWERED, CommandState.UNDELIVERED):
        return cmd.state == CommandState.DELIVERED
    partner = cmd.partner
    cmd.delivery_attempts += 1
    try:
        answer = ocpi_request(
            "POST",
            cmd.response_url,
            token=partner.outgoing_token,
            encode_token=partner.encode_outgoing_token,
            json=cmd.result_body,
            to_party=(partner.country_code, partner.party_id),
            partner_networks=partner.allowed_networks,
        )
        if 200 <= answer.http_status < 300:
            cmd.state, cmd.delivered_at, cmd.delivery_error = CommandState.DELIVERED, timezone.now(), ""
            cmd.save(update_fields=["state", "delivered_at", "delivery_error", "delivery_attempts"])
            return True
        error = f"HTTP {answer.http_status}, OCPI {answer.status_code} {answer.status_message}"
    except PartnerApiError as exc:
        error = str(exc)
    logger.warning("command %s: result not delivered to %s: %s", cmd.pk, cmd.response_url, error)
    cmd.delivery_error = error[:255]
    if last_attempt:
        cmd.state = CommandState.UNDELIVERED
    cmd.save(update_fields=["state", "delivery_error", "delivery_attempts"])
    if not last_attempt:
        raise ResultNotDelivered(error)
    return False
