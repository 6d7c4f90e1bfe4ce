"""Writes the dashboard makes: commands to chargers and station onboarding, each kept in the audit log."""

from dataclasses import dataclass

from django.db import transaction

from billing.models import Cdr, Tariff
from billing.services import tariff_upsert_from_ocpi
from cpo.dashboard.selectors import PushState, cdr_pushes
from cpo.models import AuditLog, ChargingStation, Location, RegistrationStatus
from cpo.services import station_create, station_evse_add
from ocpi_api import outbox
from ocpi_api.envelope import OcpiError
from ocpi_api.models import OutboxMessage, Partner
from ocpi_api.services import partner_invite, partner_register
from ocpp_gateway.commands import CommandError, command_send


@dataclass(frozen=True)
class CommandOutcome:
    audit: AuditLog

    @property
    def ok(self) -> bool:
        return self.audit.ok


def audit_record(*, user, action: str, station: ChargingStation | None = None, payload: dict | None = None,
                 ok: bool = True, answer: dict | None = None, error: str = "") -> AuditLog:
    return AuditLog.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        username=getattr(user, "username", "") or "",
        station=station,
        identity=station.identity if station else "",
        action=action,
        payload=payload or {},
        ok=ok,
        answer=answer,
        error=error,
    )


def station_command_send(*, user, station: ChargingStation, action: str, payload: dict,
                         timeout: float | None = None) -> CommandOutcome:
    """Send an OCPP command and keep who sent what and what came back. Blocks until the charger answers or the
    command service gives up (OCPP_CALL_TIMEOUT); a charger's refusal ("Rejected") is an answer, not an error."""
    try:
        answer = command_send(identity=station.identity, action=action, payload=payload, timeout=timeout)
    except CommandError as exc:
        error = f"{exc.reason}: {exc}" + (f" ({exc.error_code})" if exc.error_code else "")
        audit = audit_record(user=user, action=action, station=station, payload=payload, ok=False, error=error)
    else:
        audit = audit_record(user=user, action=action, station=station, payload=payload, ok=True, answer=answer)
    return CommandOutcome(audit)


@transaction.atomic
def station_onboard(*, user, identity: str, location: Location, evses: int) -> tuple[ChargingStation, str]:
    """Create a station with its EVSEs; returns it with the plain secret, to be shown once and never again."""
    station, secret = station_create(identity=identity, location=location, evses=evses)
    audit_record(user=user, action="StationCreate", station=station,
                 payload={"identity": identity, "location": location.pk, "evses": evses})
    return station, secret


@transaction.atomic
def station_accept(*, user, station: ChargingStation, location: Location | None, evses: int) -> ChargingStation:
    """Accept a Pending station: it may then do more than boot. A station admitted without a location gets one
    and `evses` EVSEs. The charger learns it at its next BootNotification (or its next message, which the gateway
    checks against the stored registration status)."""
    station = ChargingStation.objects.select_for_update().get(pk=station.pk)
    if station.registration_status == RegistrationStatus.ACCEPTED:
        return station
    fields = ["registration_status"]
    if station.location_id is None:
        station.location = location
        fields.append("location")
    station.registration_status = RegistrationStatus.ACCEPTED
    station.save(update_fields=fields)
    if not station.evses.exists():
        for number in range(1, evses + 1):
            station_evse_add(station=station, ocpp_evse_id=number)
    audit_record(user=user, action="StationAccept", station=station,
                 payload={"location": station.location_id, "evses": station.evses.count()})
    return station


def tariff_save(*, user, tariff: Tariff) -> Tariff:
    """Save a tariff staff created or edited through billing's own write (`tariff_upsert_from_ocpi`, which runs
    `Tariff.full_clean()` again), and keep who changed which tariff. Raises ValidationError on bad input."""
    data = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": tariff.id,
        "currency": tariff.currency,
        "type": tariff.type or None,
        "tariff_alt_text": tariff.tariff_alt_text or [],
        "tariff_alt_url": tariff.tariff_alt_url,
        "min_price": tariff.min_price,
        "max_price": tariff.max_price,
        "elements": tariff.elements,
        "start_date_time": tariff.start_date_time,
        "end_date_time": tariff.end_date_time,
        "energy_mix": tariff.energy_mix,
    }
    with transaction.atomic():
        created = not Tariff.objects.filter(pk=tariff.pk).exists()
        saved = tariff_upsert_from_ocpi(data=data)
        audit_record(user=user, action="TariffCreate" if created else "TariffUpdate",
                     payload={"tariff_id": saved.id, "currency": saved.currency})
    return saved


def partner_invite_staff(*, user, name: str, country_code: str, party_id: str, role: str) -> tuple[Partner, str]:
    """Invite a partner as `manage.py ocpi_invite` does; returns it with token A, to be shown once. The audit log
    keeps who invited whom, never the token."""
    with transaction.atomic():
        partner, token_a = partner_invite(country_code=country_code, party_id=party_id, name=name, role=role)
        audit_record(user=user, action="PartnerInvite", payload={
            "partner": partner.pk, "country_code": partner.country_code, "party_id": partner.party_id,
            "role": partner.role})
    return partner, token_a


def partner_register_staff(*, user, versions_url: str, token: str, name: str = "",
                           plain_token: bool = False) -> Partner:
    """Register with a partner as `manage.py ocpi_register` does (the OCPI credentials handshake, calling the
    partner over HTTP); re-raises the OcpiError that made it fail after keeping it in the audit log."""
    payload = {"versions_url": versions_url, "name": name, "plain_token": plain_token}
    try:
        partner = partner_register(versions_url=versions_url, token_a=token, name=name,
                                   encode_token=not plain_token)
    except OcpiError as exc:
        audit_record(user=user, action="PartnerRegister", payload=payload, ok=False,
                     error=f"{exc.status_code}: {exc.message}")
        raise
    audit_record(user=user, action="PartnerRegister", payload={**payload, "partner": partner.pk}, ok=True,
                 answer={"country_code": partner.country_code, "party_id": partner.party_id, "role": partner.role,
                         "version": partner.version})
    return partner


class RetryRefused(Exception):
    """A push that cannot be retried: nothing was sent, or the partner has it already."""


def cdr_push_retry(*, user, cdr: Cdr) -> OutboxMessage:
    """Requeue the POST of `cdr` to its EMSP through ocpi_api's outbox (`outbox_retry`: due now, a fresh give-up
    time), after a failure (given up, or waiting for its next try), and keep who did it."""
    push = cdr_pushes(cdrs=[cdr])[cdr.id]
    if push.message is None:
        raise RetryRefused("nothing to retry: the CDR was not queued for a partner")
    if push.state == PushState.DELIVERED:
        raise RetryRefused("nothing to retry: the partner has it")
    with transaction.atomic():
        message = outbox.outbox_retry(message_id=push.message.pk)
        audit_record(user=user, action="CdrPushRetry", payload={
            "cdr": cdr.id, "message": push.message.pk, "state": push.state, "attempts": push.message.attempts})
    return message
