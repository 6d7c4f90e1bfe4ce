"""Commands and charging profile requests from partners (mod_commands.asciidoc, mod_charging_profiles.asciidoc):
checked and answered at once.

`command_receive` checks the request (the view has validated its shape) and answers with a CommandResponse /
ChargingProfileResponse with `result` and `timeout`. Only an ACCEPTED request is kept PENDING and dispatched after
commit (ocpi_api.commands.tasks); every other answer is kept as REFUSED, for staff. The charger gets the gateway's
request for it (ocpi_api.commands.send) and the partner its result at `response_url` (ocpi_api.commands.results).
"""

import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from billing.models import Session
from cpo.models import EVSE, ChargingStation, Connector, Location
from ocpi_api.commands.results import CHARGING_PROFILE_COMMANDS, display_text
from ocpi_api.commands.tasks import command_dispatch
from ocpi_api.envelope import InvalidParameters, StatusCode
from ocpi_api.models import Command, CommandState, CommandType, Partner
from ocpi_api.selectors import of_partner_tokens, token_uid_held_by_another
from ocpp_gateway.commands import CHANNEL_MARGIN_SECONDS
from ocpp_gateway.models import Reservation, Transaction
from ocpp_gateway.requests import OCPP_16_ID_TAG_LENGTH, is_ocpp16
from ocpp_gateway.services.liveness import station_reachable
from ocpp_gateway.services.reservations import ReservationToken, reservation_create


class Response:
    """CommandResponseType and ChargingProfileResponseType values."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    TOO_OFTEN = "TOO_OFTEN"


def command_timeout_seconds() -> int:
    """The `timeout` of our CommandResponse: the charger's answer time, the channel layer, and our POST."""
    return math.ceil(settings.OCPP_CALL_TIMEOUT + CHANNEL_MARGIN_SECONDS + settings.OCPI_HTTP_TIMEOUT)


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
    """mod_commands "UNLOCK_CONNECTOR Unknown Location": status 2003 with a REJECTED CommandResponse, HTTP 200 (the
    command endpoint exists: the request reached the OCPI layer, status_codes.asciidoc)."""
    return CommandRefused(Response.REJECTED, f"Unknown {what}", status_code=StatusCode.UNKNOWN_LOCATION)


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
        evse = (
            EVSE.objects.select_related("station")
            .filter(location=location, uid__iexact=evse_uid, registered=True)
            .first()
        )
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


def session_get(*, session_id: str) -> Session | None:
    """The OCPI Session (billing.Session, one per gateway Transaction) with its transaction, or None.
    The one place that maps session_id to a transaction."""
    return Session.objects.select_related("transaction__station", "transaction__evse").filter(id=session_id).first()


def check_session_target(*, partner: Partner, session_id: str) -> Target:
    """UNKNOWN_SESSION when we don't know it; REJECTED when it is not of this partner's customers or is no longer
    active. A role the partner declared (SCSP included) opens no other partner's sessions: roles are self-declared."""
    session = session_get(session_id=session_id)
    if session is None:
        raise CommandRefused(Response.UNKNOWN_SESSION, f"Unknown session {session_id!r}")
    owner = (session.emsp_country_code.upper(), session.emsp_party_id.upper())
    if owner not in partner.party_ids():
        raise CommandRefused(Response.REJECTED, "This session is not of one of your customers")
    tx = session.transaction
    if tx is None:
        raise CommandRefused(Response.REJECTED, "This session is a reservation: nothing is charging yet")
    if tx.status != tx.Status.ACTIVE:
        raise CommandRefused(Response.REJECTED, "This session has ended")
    return Target(station=tx.station, evse=tx.evse, transaction=tx, session_id=session.id)


def check_no_others_session(*, partner: Partner, evse: EVSE | None) -> None:
    """UNLOCK_CONNECTOR is for a cable stuck after a session (mod_commands CommandType); unlocking during another
    partner's customer's ongoing session would end that session: REJECTED."""
    ongoing = Session.objects.filter(transaction__evse=evse, transaction__status=Transaction.Status.ACTIVE)
    if evse is not None and ongoing.exclude(of_partner_tokens(partner)).exists():
        raise CommandRefused(Response.REJECTED, "Another driver is charging at this connector")


def check_station_online(target: Target) -> None:
    """Offline also when the gateway process holding its socket died or it went unseen (ocpp_gateway liveness): the
    partner hears it now, not as a command result after the charger's timeout."""
    if target.station is not None and not station_reachable(station=target.station):
        raise CommandRefused(Response.REJECTED, "The charge point is offline")


def check_own_token(*, partner: Partner, token: dict) -> None:
    """mod_commands: an eMSP SHALL only use Tokens it owns in START_SESSION / RESERVE_NOW: of its parties, and not a
    uid another partner pushed (the charger would then accept that partner's card as this one's)."""
    if (token["country_code"].upper(), token["party_id"].upper()) not in partner.party_ids() or (
        token_uid_held_by_another(partner=partner, uid=token["uid"])
    ):
        raise CommandRefused(Response.REJECTED, "The token is not one of yours")


# --- response_url ------------------------------------------------------------------------------------------------


def partner_hosts(partner: Partner) -> set[str]:
    """The host of the partner's registered versions URL: the one place it proved it serves OCPI. Endpoint URLs do
    not count (a partner could declare one extra endpoint on any host, ours included)."""
    try:
        host = urlsplit(partner.versions_url or "").hostname
    except ValueError:
        return set()
    return {host.lower()} if host else set()


def check_response_url(*, partner: Partner, url: str) -> None:
    """We POST results to `response_url` with our token, so it must be http(s) and, unless
    settings.OCPI_RESPONSE_URL_ANY_HOST, on the host of the partner's registered versions URL (the port is not
    compared). Raises InvalidParameters (2001) otherwise. Where the host resolves to is checked when we connect
    (ocpi_api.egress)."""
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
        raise InvalidParameters(f"response_url host {host!r} is not the host of your registered versions URL ({where})")


# --- Receiving ----------------------------------------------------------------------------------------------------


def _target_for(*, partner: Partner, command: str, data: dict) -> Target:
    if command == CommandType.START_SESSION:
        check_own_token(partner=partner, token=data["token"])
        return check_location_target(
            location_id=data["location_id"],
            evse_uid=data.get("evse_uid") or "",
            connector_id=data.get("connector_id") or "",
        )
    if command == CommandType.RESERVE_NOW:
        check_own_token(partner=partner, token=data["token"])
        return check_location_target(location_id=data["location_id"], evse_uid=data.get("evse_uid") or "")
    if command == CommandType.UNLOCK_CONNECTOR:
        target = check_location_target(
            location_id=data["location_id"], evse_uid=data["evse_uid"], connector_id=data["connector_id"]
        )
        check_no_others_session(partner=partner, evse=target.evse)
        return target
    if command == CommandType.STOP_SESSION:
        return check_session_target(partner=partner, session_id=data["session_id"])
    if command == CommandType.CANCEL_RESERVATION:
        reservation = _reservation_get(partner=partner, reservation_id=data["reservation_id"])
        if reservation is None:
            raise CommandRefused(Response.REJECTED, f"Unknown reservation {data['reservation_id']!r}")
        return Target(
            station=reservation.station,
            evse=reservation.evse,
            extra={"ocpp_reservation_id": reservation.ocpp_reservation_id},
        )
    return check_session_target(partner=partner, session_id=data["session_id"])


def _reservation_get(*, partner: Partner, reservation_id: str, location_id: str | None = None) -> Command | None:
    reservations = (
        Command.objects.select_related("station", "evse")
        .filter(
            partner=partner,
            command=CommandType.RESERVE_NOW,
            reservation_id__iexact=reservation_id,
            ocpp_reservation_id__isnull=False,
        )
        .exclude(state=CommandState.REFUSED)
    )
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
            partner=partner,
            command=command,
            request=request,
            response_url=response_url,
            response=refusal.result,
            response_message=refusal.message[:255],
            state=CommandState.REFUSED,
            session_id=str(data.get("session_id") or "")[:36],
        )
        return CommandAnswer(
            result=refusal.result,
            message=refusal.message,
            http_status=refusal.http_status,
            status_code=refusal.status_code,
            command_pk=cmd.pk,
            charging_profile=charging_profile,
        )
    token = data.get("token")
    with transaction.atomic():
        cmd = Command.objects.create(
            partner=partner,
            command=command,
            request=request,
            response_url=response_url,
            response=Response.ACCEPTED,
            state=CommandState.PENDING,
            station=target.station,
            evse=target.evse,
            connector_id=target.connector_id,
            transaction=target.transaction,
            session_id=target.session_id,
            reservation_id=str(data.get("reservation_id") or ""),
            token=request.get("token") if token else None,
            authorization_reference=data.get("authorization_reference") or "",
            ocpp_reservation_id=target.extra.get("ocpp_reservation_id"),
        )
        if token:
            cmd.id_tag = _id_tag_for(cmd=cmd, uid=token["uid"])
        if command == CommandType.RESERVE_NOW:
            earlier = _reservation_get(
                partner=partner, reservation_id=cmd.reservation_id, location_id=data["location_id"]
            )
            reservation = reservation_create(
                station=target.station,
                evse=target.evse,
                token=_reservation_token(cmd=cmd, token=token, data=data),
                expiry_date=data["expiry_date"],
                source=Reservation.Source.PARTNER,
                replaces=earlier.ocpp_reservation_id if earlier else None,  # same id: the charger replaces it
            )
            cmd.ocpp_reservation_id = reservation.pk
        cmd.save(update_fields=["id_tag", "ocpp_reservation_id"])
        transaction.on_commit(lambda: command_dispatch(command_pk=cmd.pk))
    return CommandAnswer(result=Response.ACCEPTED, command_pk=cmd.pk, charging_profile=charging_profile)


def _reservation_token(*, cmd: Command, token: dict, data: dict) -> ReservationToken:
    """The partner's token, as the reservation (and its Session's cdr_token) keeps it."""
    return ReservationToken(
        id_tag=cmd.id_tag,
        token_uid=token["uid"],
        token_type=token.get("type") or "",
        contract_id=token.get("contract_id") or "",
        token_country_code=token["country_code"].upper(),
        token_party_id=token["party_id"].upper(),
        authorization_reference=data.get("authorization_reference") or "",
    )


def _id_tag_for(*, cmd: Command, uid: str) -> str:
    """The idTag the charger gets for the command's token: its uid, or for an OCPP 1.6 charger a uid longer than
    1.6's 20 characters a stand-in the command authorizer maps back to the token."""
    if cmd.station and is_ocpp16(cmd.station.ocpp_version) and len(uid) > OCPP_16_ID_TAG_LENGTH:
        return f"OCPI{cmd.pk:016d}"[-OCPP_16_ID_TAG_LENGTH:]
    return uid
