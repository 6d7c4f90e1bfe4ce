"""Commands and charging profile requests from partners (mod_commands.asciidoc, mod_charging_profiles.asciidoc).

1. `command_receive` checks the request (the view has validated its shape) and answers at once: a CommandResponse /
   ChargingProfileResponse with `result` and `timeout`. Only an ACCEPTED request is kept PENDING and dispatched after
   commit; every other answer is kept as REFUSED, for staff.
2. `command_dispatch` runs it without holding the partner's request: on a Celery worker, or, when tasks run eagerly
   (the embedded mode: one daphne, in-memory channel layer), as an asyncio task on the daphne process's event loop,
   which is the loop that holds the chargers' sockets (a plain thread serves WSGI servers and the shell).
3. `command_prepare` -> the gateway's command service (`command_send[_async]`) -> `command_answer_record` turns the
   charger's answer (or its absence) into a CommandResult / ChargingProfileResult, and `command_result_deliver`
   POSTs it to the partner's `response_url` with our credentials token (a few attempts; OCPI asks for no more).

OCPP 1.6 and 2.0.1 (and 2.1) are chosen by the station's `ocpp_version`. Reservation ids sent to chargers are ours
(`ocpp_reservation_id`), never the partner's, so partners cannot replace or cancel each other's reservations.
"""

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from asgiref.sync import SyncToAsync, sync_to_async
from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from cpo.models import EVSE, ChargingStation, Connector, EvseStatus, Location
from ocpi_api.authorization import AuthMethod
from ocpi_api.client import ocpi_request
from ocpi_api.envelope import InvalidParameters, PartnerApiError, StatusCode, ocpi_datetime
from ocpi_api.models import Command, CommandState, CommandType, Partner, Role
from ocpp_gateway.authorization import AuthorizationRequest, AuthorizationResult, AuthorizationStatus
from ocpp_gateway.commands import CHANNEL_MARGIN_SECONDS, CommandError, command_send, command_send_async
from ocpp_gateway.commands import check_station_reachable

logger = logging.getLogger(__name__)

CHARGING_PROFILE_COMMANDS = (
    CommandType.SET_CHARGING_PROFILE, CommandType.GET_ACTIVE_CHARGING_PROFILE, CommandType.CLEAR_CHARGING_PROFILE,
)
OCPP_16_ID_TAG_LENGTH = 20
# Stack level of the TxProfiles partners set (one per transaction; a new PUT replaces the previous one).
CHARGING_PROFILE_STACK_LEVEL = 1
DELIVERY_ATTEMPTS = 3


class Response:
    """CommandResponseType and ChargingProfileResponseType values."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    TOO_OFTEN = "TOO_OFTEN"


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


def command_timeout_seconds() -> int:
    """The `timeout` of our CommandResponse: the charger's answer time, the channel layer, and our POST."""
    return math.ceil(settings.OCPP_CALL_TIMEOUT + CHANNEL_MARGIN_SECONDS + settings.OCPI_HTTP_TIMEOUT)


def display_text(text: str) -> list[dict]:
    return [{"language": "en", "text": text[:512]}] if text else []


@dataclass(frozen=True)
class CommandAnswer:
    """What the view answers: the response object and the envelope's HTTP and OCPI status."""

    result: str
    message: str = ""
    http_status: int = 200
    status_code: int = StatusCode.SUCCESS
    command_pk: int | None = None
    charging_profile: bool = False

    def as_ocpi(self) -> dict:
        data = {"result": self.result, "timeout": command_timeout_seconds()}
        if self.message and not self.charging_profile:  # ChargingProfileResponse has no message
            data["message"] = display_text(self.message)
        return data


class CommandRefused(Exception):
    def __init__(self, result: str, message: str, *, http_status: int = 200, status_code: int = StatusCode.SUCCESS):
        super().__init__(message)
        self.result, self.message, self.http_status, self.status_code = result, message, http_status, status_code


def _unknown(what: str) -> CommandRefused:
    """mod_commands "UNLOCK_CONNECTOR Unknown Location": status 2003 with a REJECTED CommandResponse."""
    return CommandRefused(Response.REJECTED, f"Unknown {what}", http_status=404, status_code=StatusCode.UNKNOWN_LOCATION)


# --- Targets: locations, EVSEs, sessions --------------------------------------------------------------------------

@dataclass
class Target:
    station: ChargingStation | None = None
    evse: EVSE | None = None
    connector_id: str = ""
    transaction: object = None
    session_id: str = ""
    extra: dict = field(default_factory=dict)


def check_location_target(*, location_id: str, evse_uid: str = "", connector_id: str = "") -> Target:
    """The station (and EVSE, connector) a command is for; 2003 when any of them is unknown."""
    location = Location.objects.filter(id__iexact=location_id).first()
    if location is None:
        raise _unknown(f"location {location_id!r}")
    if evse_uid:
        evse = EVSE.objects.select_related("station").filter(location=location, uid__iexact=evse_uid).first()
        if evse is None:
            raise _unknown(f"EVSE {evse_uid!r} at location {location_id!r}")
        if connector_id and not Connector.objects.filter(evse=evse, connector_id__iexact=connector_id).exists():
            raise _unknown(f"connector {connector_id!r} of EVSE {evse_uid!r}")
        if evse.station is None:
            raise CommandRefused(Response.NOT_SUPPORTED, f"EVSE {evse_uid!r} has no charge point we control")
        return Target(station=evse.station, evse=evse, connector_id=connector_id)
    stations = list(ChargingStation.objects.filter(location=location)[:2])
    if len(stations) != 1:
        raise CommandRefused(Response.NOT_SUPPORTED, "This location has several charge points: give evse_uid")
    return Target(station=stations[0])


def session_get(*, session_id: str):
    """The OCPI Session (billing.Session, one per gateway Transaction) with its transaction, or None.
    The one place that maps session_id to a transaction."""
    from billing.models import Session

    return Session.objects.select_related("transaction__station", "transaction__evse").filter(id=session_id).first()


def check_session_target(*, partner: Partner, session_id: str, for_charging_profile: bool = False) -> Target:
    """UNKNOWN_SESSION when we don't know it; REJECTED when it is not of this partner's customers (a smart charging
    service provider, role SCSP, may act on any session) or is no longer active."""
    session = session_get(session_id=session_id)
    if session is None:
        raise CommandRefused(Response.UNKNOWN_SESSION, f"Unknown session {session_id!r}")
    owner = (session.emsp_country_code.upper(), session.emsp_party_id.upper())
    is_scsp = for_charging_profile and (
        partner.role == Role.SCSP or any(r.get("role") == Role.SCSP for r in partner.roles or [])
    )
    if owner not in partner.party_ids() and not is_scsp:
        raise CommandRefused(Response.REJECTED, "This session is not of one of your customers")
    tx = session.transaction
    if tx.status != tx.Status.ACTIVE:
        raise CommandRefused(Response.REJECTED, "This session has ended")
    return Target(station=tx.station, evse=tx.evse, transaction=tx, session_id=session.id)


def check_station_online(target: Target) -> None:
    if target.station is not None and not target.station.online:
        raise CommandRefused(Response.REJECTED, "The charge point is offline")


def check_own_token(*, partner: Partner, token: dict) -> None:
    """mod_commands: an eMSP SHALL only use Tokens it owns in START_SESSION / RESERVE_NOW."""
    if (token["country_code"].upper(), token["party_id"].upper()) not in partner.party_ids():
        raise CommandRefused(Response.REJECTED, "The token is not one of yours")


# --- response_url ------------------------------------------------------------------------------------------------

def partner_hosts(partner: Partner) -> set[str]:
    """The hosts of the partner's registered URLs: its versions URL and the endpoints of the agreed version."""
    urls = [partner.versions_url] + [e.get("url") for e in partner.endpoints or [] if isinstance(e, dict)]
    hosts = set()
    for url in urls:
        if isinstance(url, str) and url:
            try:
                host = urlsplit(url).hostname
            except ValueError:
                continue
            if host:
                hosts.add(host.lower())
    return hosts


def check_response_url(*, partner: Partner, url: str) -> None:
    """We POST results to `response_url` with our token, so it must be http(s) and, unless
    settings.OCPI_RESPONSE_URL_ANY_HOST, on a host of the partner's own registered URLs (versions URL, endpoints).
    The port is not compared. Raises InvalidParameters (2001) otherwise."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        raise InvalidParameters(f"response_url {url!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidParameters(f"response_url must be an http or https URL, not {url!r}")
    if settings.OCPI_RESPONSE_URL_ANY_HOST:
        return
    allowed = partner_hosts(partner)
    if host not in allowed:
        where = ", ".join(sorted(allowed)) or "none registered"
        raise InvalidParameters(
            f"response_url host {host!r} is not one of your registered hosts ({where}); "
            "use your own platform's host (versions URL or module endpoints)"
        )


# --- Receiving ----------------------------------------------------------------------------------------------------

def _target_for(*, partner: Partner, command: str, data: dict) -> Target:
    if command == CommandType.START_SESSION:
        check_own_token(partner=partner, token=data["token"])
        return check_location_target(
            location_id=data["location_id"], evse_uid=data.get("evse_uid") or "",
            connector_id=data.get("connector_id") or "",
        )
    if command == CommandType.RESERVE_NOW:
        check_own_token(partner=partner, token=data["token"])
        return check_location_target(location_id=data["location_id"], evse_uid=data.get("evse_uid") or "")
    if command == CommandType.UNLOCK_CONNECTOR:
        return check_location_target(
            location_id=data["location_id"], evse_uid=data["evse_uid"], connector_id=data["connector_id"]
        )
    if command == CommandType.STOP_SESSION:
        return check_session_target(partner=partner, session_id=data["session_id"])
    if command == CommandType.CANCEL_RESERVATION:
        reservation = _reservation_get(partner=partner, reservation_id=data["reservation_id"])
        if reservation is None:
            raise CommandRefused(Response.REJECTED, f"Unknown reservation {data['reservation_id']!r}")
        return Target(station=reservation.station, evse=reservation.evse,
                      extra={"ocpp_reservation_id": reservation.ocpp_reservation_id})
    return check_session_target(partner=partner, session_id=data["session_id"], for_charging_profile=True)


def _reservation_get(*, partner: Partner, reservation_id: str, location_id: str | None = None) -> Command | None:
    reservations = Command.objects.select_related("station", "evse").filter(
        partner=partner, command=CommandType.RESERVE_NOW, reservation_id__iexact=reservation_id,
        ocpp_reservation_id__isnull=False,
    ).exclude(state=CommandState.REFUSED)
    if location_id is not None:
        reservations = reservations.filter(request__location_id=location_id)
    return reservations.order_by("-created_at", "-id").first()


def command_receive(*, partner: Partner, command: str, data: dict, request: dict) -> CommandAnswer:
    """Check a command (already validated in shape), keep it, and answer at once. `data` is the validated request,
    `request` what the partner sent (kept as is). A response_url we would not POST to is InvalidParameters (2001)
    and nothing is kept."""
    charging_profile = command in CHARGING_PROFILE_COMMANDS
    response_url = data["response_url"]
    check_response_url(partner=partner, url=response_url)
    try:
        target = _target_for(partner=partner, command=command, data=data)
        check_station_online(target)
    except CommandRefused as refusal:
        cmd = Command.objects.create(
            partner=partner, command=command, request=request, response_url=response_url, response=refusal.result,
            response_message=refusal.message[:255], state=CommandState.REFUSED,
            session_id=str(data.get("session_id") or "")[:36],
        )
        return CommandAnswer(
            result=refusal.result, message=refusal.message, http_status=refusal.http_status,
            status_code=refusal.status_code, command_pk=cmd.pk, charging_profile=charging_profile,
        )
    token = data.get("token")
    with transaction.atomic():
        cmd = Command.objects.create(
            partner=partner, command=command, request=request, response_url=response_url,
            response=Response.ACCEPTED, state=CommandState.PENDING, station=target.station, evse=target.evse,
            connector_id=target.connector_id, transaction=target.transaction, session_id=target.session_id,
            reservation_id=str(data.get("reservation_id") or ""), token=request.get("token") if token else None,
            authorization_reference=data.get("authorization_reference") or "",
            ocpp_reservation_id=target.extra.get("ocpp_reservation_id"),
        )
        if token:
            cmd.id_tag = _id_tag_for(cmd=cmd, uid=token["uid"])
        if command == CommandType.RESERVE_NOW:
            earlier = _reservation_get(partner=partner, reservation_id=cmd.reservation_id,
                                       location_id=data["location_id"])
            cmd.ocpp_reservation_id = earlier.ocpp_reservation_id if earlier else cmd.pk  # same id: replaces it
        cmd.save(update_fields=["id_tag", "ocpp_reservation_id"])
        transaction.on_commit(lambda: command_dispatch(command_pk=cmd.pk))
    return CommandAnswer(result=Response.ACCEPTED, command_pk=cmd.pk, charging_profile=charging_profile)


def _id_tag_for(*, cmd: Command, uid: str) -> str:
    """The idTag the charger gets for the command's token: its uid, or for an OCPP 1.6 charger a uid longer than
    1.6's 20 characters a stand-in the command authorizer maps back to the token."""
    if cmd.station and cmd.station.ocpp_version in ("", "1.6") and len(uid) > OCPP_16_ID_TAG_LENGTH:
        return f"OCPI{cmd.pk:016d}"[-OCPP_16_ID_TAG_LENGTH:]
    return uid


# --- The OCPP call for a command ---------------------------------------------------------------------------------

def _is_16(station: ChargingStation) -> bool:
    return station.ocpp_version in ("", "1.6")


def _ocpp_datetime(value: str | datetime) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ocpi_datetime(value)


def _id_token_201(*, id_tag: str, token: dict) -> dict:
    return {"idToken": id_tag, "type": "ISO14443" if token.get("type") == "RFID" else "Central"}


def _limit(value) -> float:
    return float(round(Decimal(str(value)), 1))


def charging_schedule_to_ocpp(profile: dict) -> dict:
    """An OCPI ChargingProfile as an OCPP ChargingSchedule (1.6 and 2.0.1 share these names)."""
    schedule = {
        "chargingRateUnit": profile["charging_rate_unit"],
        "chargingSchedulePeriod": [
            {"startPeriod": int(p["start_period"]), "limit": _limit(p["limit"])}
            for p in profile["charging_profile_period"]
        ],
    }
    if profile.get("duration") is not None:
        schedule["duration"] = int(profile["duration"])
    if profile.get("start_date_time"):
        schedule["startSchedule"] = _ocpp_datetime(profile["start_date_time"])
    if profile.get("min_charging_rate") is not None:
        schedule["minChargingRate"] = _limit(profile["min_charging_rate"])
    return schedule


def ocpp_call_for(cmd: Command) -> tuple[str, dict]:
    """The OCPP action and payload (camelCase) for a command, for its station's OCPP version."""
    station, evse, request = cmd.station, cmd.evse, cmd.request
    v16 = _is_16(station)
    token = cmd.token or {}
    tx = cmd.transaction
    if cmd.command == CommandType.START_SESSION:
        if v16:
            payload = {"idTag": cmd.id_tag}
            if evse is not None:
                payload["connectorId"] = evse.ocpp_evse_id
            return "RemoteStartTransaction", payload
        payload = {"idToken": _id_token_201(id_tag=cmd.id_tag, token=token), "remoteStartId": cmd.pk}
        if evse is not None:
            payload["evseId"] = evse.ocpp_evse_id
        if token.get("group_id"):
            payload["groupIdToken"] = {"idToken": token["group_id"], "type": "Central"}
        return "RequestStartTransaction", payload
    if cmd.command == CommandType.STOP_SESSION:
        if v16:
            return "RemoteStopTransaction", {"transactionId": int(tx.transaction_id)}
        return "RequestStopTransaction", {"transactionId": tx.transaction_id}
    if cmd.command == CommandType.UNLOCK_CONNECTOR:
        if v16:
            return "UnlockConnector", {"connectorId": evse.ocpp_evse_id}
        connector = int(cmd.connector_id) if cmd.connector_id.isdigit() else 1
        return "UnlockConnector", {"evseId": evse.ocpp_evse_id, "connectorId": connector}
    if cmd.command == CommandType.RESERVE_NOW:
        if v16:
            payload = {
                "connectorId": evse.ocpp_evse_id if evse else 0, "expiryDate": _ocpp_datetime(request["expiry_date"]),
                "idTag": cmd.id_tag, "reservationId": cmd.ocpp_reservation_id,
            }
            if token.get("group_id") and len(token["group_id"]) <= OCPP_16_ID_TAG_LENGTH:
                payload["parentIdTag"] = token["group_id"]
            return "ReserveNow", payload
        payload = {
            "id": cmd.ocpp_reservation_id, "expiryDateTime": _ocpp_datetime(request["expiry_date"]),
            "idToken": _id_token_201(id_tag=cmd.id_tag, token=token),
        }
        if evse is not None:
            payload["evseId"] = evse.ocpp_evse_id
        if token.get("group_id"):
            payload["groupIdToken"] = {"idToken": token["group_id"], "type": "Central"}
        return "ReserveNow", payload
    if cmd.command == CommandType.CANCEL_RESERVATION:
        return "CancelReservation", {"reservationId": cmd.ocpp_reservation_id}
    evse_id = evse.ocpp_evse_id if evse else (tx.ocpp_evse_id or 0)
    profile_id = tx.pk  # one partner profile per transaction: a new PUT replaces it, DELETE clears it
    if cmd.command == CommandType.SET_CHARGING_PROFILE:
        profile = request["charging_profile"]
        schedule = charging_schedule_to_ocpp(profile)
        ocpp_profile = {
            "stackLevel": CHARGING_PROFILE_STACK_LEVEL, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute" if profile.get("start_date_time") else "Relative",
        }
        if v16:
            ocpp_profile.update(chargingProfileId=profile_id, transactionId=int(tx.transaction_id),
                                chargingSchedule=schedule)
            return "SetChargingProfile", {"connectorId": evse_id, "csChargingProfiles": ocpp_profile}
        ocpp_profile.update(id=profile_id, transactionId=tx.transaction_id,
                            chargingSchedule=[{"id": profile_id, **schedule}])
        return "SetChargingProfile", {"evseId": evse_id, "chargingProfile": ocpp_profile}
    if cmd.command == CommandType.GET_ACTIVE_CHARGING_PROFILE:
        duration = int(request["duration"])
        if v16:
            return "GetCompositeSchedule", {"connectorId": evse_id, "duration": duration}
        return "GetCompositeSchedule", {"evseId": evse_id, "duration": duration}
    if v16:
        return "ClearChargingProfile", {"id": profile_id}
    return "ClearChargingProfile", {"chargingProfileId": profile_id}


# --- The charger's answer as an OCPI result -----------------------------------------------------------------------

_STATUS_RESULTS = {
    CommandType.START_SESSION: {"Accepted": Result.ACCEPTED},
    CommandType.STOP_SESSION: {"Accepted": Result.ACCEPTED},
    CommandType.UNLOCK_CONNECTOR: {
        "Unlocked": Result.ACCEPTED, "UnlockFailed": Result.FAILED, "NotSupported": Result.NOT_SUPPORTED,
        "OngoingAuthorizedTransaction": Result.REJECTED, "UnknownConnector": Result.REJECTED,
    },
    CommandType.RESERVE_NOW: {
        "Accepted": Result.ACCEPTED, "Occupied": Result.EVSE_OCCUPIED, "Faulted": Result.EVSE_INOPERATIVE,
        "Unavailable": Result.EVSE_INOPERATIVE, "Rejected": Result.REJECTED,
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
        profile["start_date_time"] = _ocpp_datetime(start)
    if schedule.get("duration") is not None:
        profile["duration"] = schedule["duration"]
    if schedule.get("minChargingRate") is not None:
        profile["min_charging_rate"] = schedule["minChargingRate"]
    return {"start_date_time": _ocpp_datetime(start) if start else ocpi_datetime(timezone.now()),
            "charging_profile": profile}


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


# --- Running a command ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PreparedCall:
    command_pk: int
    identity: str
    action: str
    payload: dict


def command_prepare(*, command_pk: int) -> PreparedCall | None:
    """Claim a PENDING command (exactly once, whichever worker gets there first) and build its OCPP call. None when
    there is nothing to send: already claimed, or the charger is unreachable (the result is then recorded)."""
    if not Command.objects.filter(pk=command_pk, state=CommandState.PENDING).update(state=CommandState.SENT):
        return None
    cmd = Command.objects.select_related("station", "evse", "transaction").get(pk=command_pk)
    action, payload = ocpp_call_for(cmd)
    Command.objects.filter(pk=command_pk).update(ocpp_action=action, ocpp_request=payload)
    try:
        check_station_reachable(identity=cmd.station.identity)
    except CommandError as exc:
        command_answer_record(command_pk=command_pk, error=exc)
        return None
    return PreparedCall(command_pk=command_pk, identity=cmd.station.identity, action=action, payload=payload)


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


def _json_safe(value):
    """The ocpp library gives numbers as Decimal; JSON columns and bodies want plain numbers."""
    def number(obj):
        if isinstance(obj, Decimal):
            return int(obj) if obj == obj.to_integral_value() and "." not in str(obj) else float(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.loads(json.dumps(value, default=number))


def command_result_deliver(*, command_pk: int) -> bool:
    """POST the result to the partner's response_url with our token, a few attempts. True when delivered."""
    cmd = Command.objects.select_related("partner").get(pk=command_pk)
    if cmd.state not in (CommandState.ANSWERED, CommandState.UNDELIVERED):
        return cmd.state == CommandState.DELIVERED
    partner = cmd.partner
    error = ""
    for attempt in range(DELIVERY_ATTEMPTS):
        if attempt:
            time.sleep(2 ** attempt)
        cmd.delivery_attempts += 1
        try:
            answer = ocpi_request(
                "POST", cmd.response_url, token=partner.outgoing_token, encode_token=partner.encode_outgoing_token,
                json=cmd.result_body, to_party=(partner.country_code, partner.party_id),
            )
            if 200 <= answer.http_status < 300:
                cmd.state, cmd.delivered_at, cmd.delivery_error = CommandState.DELIVERED, timezone.now(), ""
                cmd.save(update_fields=["state", "delivered_at", "delivery_error", "delivery_attempts"])
                return True
            error = f"HTTP {answer.http_status}, OCPI {answer.status_code} {answer.status_message}"
        except PartnerApiError as exc:
            error = str(exc)
        logger.warning("command %s: result not delivered to %s: %s", cmd.pk, cmd.response_url, error)
    cmd.state, cmd.delivery_error = CommandState.UNDELIVERED, error[:255]
    cmd.save(update_fields=["state", "delivery_error", "delivery_attempts"])
    return False


def command_execute(*, command_pk: int) -> None:
    """Send the command to the charger, record the answer, deliver the result (synchronous: workers, threads)."""
    call = command_prepare(command_pk=command_pk)
    if call is not None:
        try:
            answer = command_send(identity=call.identity, action=call.action, payload=call.payload)
        except CommandError as exc:
            command_answer_record(command_pk=command_pk, error=exc)
        else:
            command_answer_record(command_pk=command_pk, answer=answer)
    command_result_deliver(command_pk=command_pk)


async def command_execute_async(*, command_pk: int) -> None:
    """The same on the event loop of the process holding the chargers' sockets (embedded mode)."""
    def in_thread(func, **kwargs):
        def run():
            close_old_connections()
            try:
                return func(**kwargs)
            finally:
                connections.close_all()

        return sync_to_async(run, thread_sensitive=False)()

    try:
        call = await in_thread(command_prepare, command_pk=command_pk)
        if call is not None:
            try:
                answer = await command_send_async(identity=call.identity, action=call.action, payload=call.payload)
            except CommandError as exc:
                await in_thread(command_answer_record, command_pk=command_pk, error=exc)
            else:
                await in_thread(command_answer_record, command_pk=command_pk, answer=answer)
        await in_thread(command_result_deliver, command_pk=command_pk)
    except Exception:
        logger.exception("command %s failed", command_pk)


@shared_task(name="ocpi_api.command_execute", acks_late=True, ignore_result=True,
             soft_time_limit=600, time_limit=660)
def command_execute_task(command_pk: int) -> None:
    command_execute(command_pk=command_pk)


_background: set = set()


def _asgi_event_loop():
    """The running event loop of the ASGI server when we are in a sync view it runs (asgiref keeps it per thread)."""
    import os

    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None or getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    return loop if loop.is_running() and not loop.is_closed() else None


def command_dispatch(*, command_pk: int) -> None:
    """Run an accepted command without holding the partner's request (call after commit)."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        command_execute_task.delay(command_pk)
        return
    loop = _asgi_event_loop()
    if loop is not None:
        def spawn():
            task = loop.create_task(command_execute_async(command_pk=command_pk))
            _background.add(task)
            task.add_done_callback(_background.discard)

        loop.call_soon_threadsafe(spawn)
        return

    def run():
        try:
            command_execute(command_pk=command_pk)
        except Exception:
            logger.exception("command %s failed", command_pk)
        finally:
            connections.close_all()

    threading.Thread(target=run, name=f"ocpi-command-{command_pk}", daemon=True).start()


# --- The gateway authorizer for command tokens ----------------------------------------------------------------

_FAILED_RESULTS = (Result.REJECTED, Result.FAILED, Result.TIMEOUT, Result.NOT_SUPPORTED, Result.EVSE_OCCUPIED,
                   Result.EVSE_INOPERATIVE)


def command_token_authorize(request: AuthorizationRequest) -> AuthorizationResult | None:
    """Accept the idTag of a START_SESSION (or RESERVE_NOW) this charger got within the last
    OCPI_COMMAND_TOKEN_MINUTES (mod_commands: the EMSP authorised the token; no real-time authorization for it at
    this charge point within 15 minutes). auth_method COMMAND; the token and reference of the command."""
    if not request.id_tag or not request.station_identity:
        return None
    since = timezone.now() - timedelta(minutes=settings.OCPI_COMMAND_TOKEN_MINUTES)
    candidates = (
        Command.objects.select_related("evse")
        .filter(command__in=(CommandType.START_SESSION, CommandType.RESERVE_NOW), id_tag__iexact=request.id_tag,
                station__identity=request.station_identity, created_at__gte=since)
        .exclude(state=CommandState.REFUSED)
        .exclude(result__in=_FAILED_RESULTS)
        .order_by("-created_at", "-id")[:10]
    )
    for cmd in candidates:
        if request.evse_uid and cmd.evse is not None and cmd.evse.uid.upper() != request.evse_uid.upper():
            continue
        token = cmd.token or {}
        return AuthorizationResult(
            status=AuthorizationStatus.ACCEPTED,
            source=f"partner:{cmd.partner_id}",
            group_id=token.get("group_id") or "",
            authorization_reference=cmd.authorization_reference,
            token_uid=str(token.get("uid", ""))[:36],
            token_type=token.get("type", ""),
            contract_id=token.get("contract_id", ""),
            auth_method=AuthMethod.COMMAND,
            country_code=str(token.get("country_code", "")).upper(),
            party_id=str(token.get("party_id", "")).upper(),
        )
    return None
