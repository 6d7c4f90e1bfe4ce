"""Writes the dashboard makes: commands to chargers and station onboarding, each kept in the audit log; the analytics
roll-ups."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from billing.models import Cdr, Tariff
from billing.services import tariff_upsert_from_ocpi
from cpo.alerts import alert_resolve
from cpo.dashboard.models import (
    AnalyticsDay,
    AnalyticsHour,
    AnalyticsLocationDay,
    AnalyticsPartnerDay,
    AuditLog,
)
from cpo.dashboard.selectors.analytics import location_stats, revenue_stats
from cpo.dashboard.selectors.cdrs import PushState, cdr_pushes
from cpo.dashboard.selectors.occupancy import busy_seconds_per_utc_hour
from cpo.dashboard.selectors.period import Period
from cpo.dashboard.selectors.sessions import session_energy_wh
from cpo.models import EVSE, Alert, ChargingStation, Location, RegistrationStatus, Token
from cpo.services import evse_register, station_create, station_evse_add
from cpo.task_dispatch import task_dispatch
from ocpi_api import outbox
from ocpi_api.envelope import OcpiError
from ocpi_api.models import OutboxMessage, Partner
from ocpi_api.services import (
    partner_credentials_rotate,
    partner_invite,
    partner_register,
    partner_resume,
    partner_suspend,
)
from ocpp_gateway.commands import CommandError
from ocpp_gateway.models import (
    ChargingProfile,
    CompositeSchedule,
    DiagnosticsUpload,
    FirmwareCampaign,
    FirmwareImage,
    FirmwareUpdate,
    LocalAuthList,
    Reservation,
    StationVariable,
    Transaction,
)
from ocpp_gateway.redaction import redact_secrets
from ocpp_gateway.requests import (
    CancelReservation,
    ChangeConfiguration,
    ClearChargingProfile,
    GetBaseReport,
    OcppRequest,
    ReserveNow,
    SetChargingProfile,
    is_station_max_profile,
)
from ocpp_gateway.services.device_model import (
    is_secret,
    station_configuration_answer_record,
    station_variable_change_request,
    station_variable_set_record,
)
from ocpp_gateway.services.diagnostics import diagnostics_request
from ocpp_gateway.services.firmware import (
    firmware_campaign_pause,
    firmware_campaign_resume,
    firmware_campaign_retry_failed,
    firmware_campaign_start,
    firmware_update_start,
)
from ocpp_gateway.services.load_management import charging_profile_clear_record, charging_profile_record
from ocpp_gateway.services.local_list import local_list_get, local_list_sync
from ocpp_gateway.services.message_limits import request_send
from ocpp_gateway.services.passwords import (
    PasswordRotation,
    PasswordRotationRefused,
    RotationResult,
    station_password_rotate,
)
from ocpp_gateway.services.reservations import (
    ReservationToken,
    reservation_answer_record,
    reservation_create,
    reservation_end,
)
from ocpp_gateway.services.smart_charging import composite_schedule_request
from ocpp_gateway.tasks import firmware_campaign_advance_task


@dataclass(frozen=True)
class CommandOutcome:
    audit: AuditLog
    failure: str = ""  # why there was no answer: the CommandError's reason (with the charger's CALLERROR code)

    @property
    def ok(self) -> bool:
        return self.audit.ok

    @property
    def status(self) -> str:
        """The answer's `status` (Accepted, Rejected, ...), or why there was none (`timeout`, `offline`,
        `call_error: NotImplemented`, ...)."""
        if self.ok:
            return str((self.audit.answer or {}).get("status", ""))
        return self.failure or self.audit.error.partition(":")[0]


def audit_record(
    *,
    user,
    action: str,
    station: ChargingStation | None = None,
    payload: dict | None = None,
    ok: bool = True,
    answer: dict | None = None,
    error: str = "",
    username: str = "",
) -> AuditLog:
    """Keep one entry; `username` names who asked when there is no user (the platform, a staff member's name passed
    down through a gateway service)."""
    return AuditLog.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        username=(getattr(user, "username", "") or username)[:150],
        station=station,
        identity=station.identity if station else "",
        action=action,
        payload=redact_secrets(payload or {}),
        ok=ok,
        answer=redact_secrets(answer),
        error=error,
    )


def station_command_send(
    *, user, station: ChargingStation, request: OcppRequest, timeout: float | None = None
) -> CommandOutcome:
    """Send a command (the gateway's request builder, in the words of the station's OCPP version; in several messages
    when the station takes fewer keys per message, with their answers joined) and keep who sent what and what came
    back. Blocks until the charger answers or the command service gives up (OCPP_CALL_TIMEOUT); a
    charger's refusal ("Rejected") is an answer, not an error."""
    action, payload = request.for_version(station.ocpp_version)
    try:
        answer = request_send(station=station, request=request, timeout=timeout)
    except CommandError as exc:
        error = f"{exc.reason}: {exc}" + (f" ({exc.error_code})" if exc.error_code else "")
        audit = audit_record(user=user, action=action, station=station, payload=payload, ok=False, error=error)
        return CommandOutcome(audit, failure=exc.reason + (f": {exc.error_code}" if exc.error_code else ""))
    audit = audit_record(user=user, action=action, station=station, payload=payload, ok=True, answer=answer)
    return CommandOutcome(audit)


def station_reserve(
    *, user, station: ChargingStation, evse: EVSE | None, token: Token, expiry_date: datetime
) -> CommandOutcome:
    """Reserve an EVSE (None: any of the station's) for one of our tokens until `expiry_date`, as a partner's
    RESERVE_NOW does: the reservation is kept (ocpp_gateway.models.Reservation, its pk the reservationId), the
    ReserveNow sent and audited (`station_command_send`), and the charger's answer recorded on the reservation."""
    reservation = reservation_create(
        station=station,
        evse=evse,
        token=ReservationToken(
            id_tag=token.uid, token_uid=token.uid, token_type=token.type, contract_id=token.contract_id
        ),
        expiry_date=expiry_date,
        source=Reservation.Source.STAFF,
    )
    request = ReserveNow(
        reservation_id=reservation.pk,
        expiry=expiry_date,
        id_tag=token.uid,
        token_type=token.type,
        evse_id=evse.ocpp_evse_id if evse is not None else None,
        group_id=token.group_id,
    )
    outcome = station_command_send(user=user, station=station, request=request)
    answer = outcome.audit.answer or {}
    reservation_answer_record(
        reservation_pk=reservation.pk, status=str(answer.get("status", "")) if outcome.ok else "no answer"
    )
    return outcome


def station_reservation_cancel(*, user, reservation: Reservation) -> CommandOutcome:
    """CancelReservation, audited; the reservation ends CANCELLED when the charger accepts."""
    outcome = station_command_send(
        user=user, station=reservation.station, request=CancelReservation(reservation_id=reservation.pk)
    )
    if outcome.ok and (outcome.audit.answer or {}).get("status") == "Accepted":
        reservation_end(reservation_pk=reservation.pk, status=Reservation.Status.CANCELLED)
    return outcome


# Charging profiles staff set from the station page (see cpo.dashboard.forms.SetChargingProfileForm for why).
# Stack level: above the load planner's (settings.LOAD_MANAGEMENT_STACK_LEVEL, 1 by default) and the partners'
# (ocpi_api.commands.send.CHARGING_PROFILE_STACK_LEVEL, 1), so no profile of theirs shares staff's purpose and level.
STAFF_CHARGING_PROFILE_STACK_LEVEL = 2
# Ids: partners' profiles 1_000_000_000 + their transaction's pk modulo a billion (ocpi_api.commands.send), the
# planner's 899_999 and 900_000 + EVSE; staff's are 2_000_000_000 + 10 x EVSE + 0 (the station-wide maximum) or 1
# (TxDefaultProfile): a 32-bit integer for EVSE numbers up to 14 million, above every partner's id.
STAFF_CHARGING_PROFILE_ID_BASE = 2_000_000_000


def staff_charging_profile_id(*, ocpp_evse_id: int, purpose: str) -> int:
    """One id per EVSE and purpose: staff's new limit for an EVSE replaces their previous one for it (both versions
    replace a profile with the same id) rather than stacking up beside it, or being refused as a second profile of
    the same purpose and stack level on the EVSE."""
    return STAFF_CHARGING_PROFILE_ID_BASE + 10 * ocpp_evse_id + (0 if is_station_max_profile(purpose) else 1)


def station_charging_profile_set(*, user, station: ChargingStation, request: SetChargingProfile) -> CommandOutcome:
    """Send a charging profile staff chose (audited, `station_command_send`) and keep it with the others
    (`charging_profile_record`, source staff) whatever came of it: the charger's answer (Accepted, Rejected) or why
    there was none (timeout, offline, ...). Once accepted, staff's earlier profile with the same id on the station is
    no longer there: its row says Replaced."""
    outcome = station_command_send(user=user, station=station, request=request)
    profile = charging_profile_record(
        station_pk=station.pk,
        payload=request.for_version(station.ocpp_version).payload,
        source=ChargingProfile.Source.STAFF,
        status=outcome.status[:40],
    )
    if profile.status == "Accepted":
        ChargingProfile.objects.filter(
            station=station, profile_id=profile.profile_id, source=ChargingProfile.Source.STAFF, status="Accepted"
        ).exclude(pk=profile.pk).update(status="Replaced")
    return outcome


def station_charging_profile_clear(*, user, profile: ChargingProfile) -> CommandOutcome:
    """ClearChargingProfile of one profile the station holds, by its id (1.6 `id`, 2.0.1 `chargingProfileId`),
    audited. The station's profile rows with that id say Cleared once it accepts, "Unknown to the station" when it
    answers Unknown (it holds no such profile); otherwise (no answer) they stay as they were."""
    outcome = station_command_send(
        user=user, station=profile.station, request=ClearChargingProfile(profile_id=profile.profile_id)
    )
    if outcome.ok:
        charging_profile_clear_record(
            station_pk=profile.station_id, profile_id=profile.profile_id, status=outcome.status
        )
    return outcome


def station_configuration_read_staff(*, user, station: ChargingStation) -> CommandOutcome:
    """Read the station's whole configuration again (1.6 GetConfiguration, stored from the answer; 2.0.1
    GetBaseReport, stored as its NotifyReport frames arrive), audited."""
    outcome = station_command_send(user=user, station=station, request=GetBaseReport())
    if outcome.ok:
        station_configuration_answer_record(station=station, answer=outcome.audit.answer or {})
    return outcome


def station_local_list_resync_staff(*, user, station: ChargingStation) -> CommandOutcome:
    """Send the station its whole local authorization list again (ocpp_gateway.services.local_list): each
    SendLocalList is audited under the staff member's name as it goes, and this entry says how it ended."""
    state = local_list_sync(station_pk=station.pk, full=True, actor=getattr(user, "username", "") or "staff")
    row = local_list_get(station_pk=station.pk)
    answer = {"state": state, "state_text": row.get_state_display(), "version": row.version}
    ok = state == LocalAuthList.State.IN_SYNC
    error = "" if ok else f"{row.get_state_display() if state != 'busy' else 'a sync is under way'} ({row.last_status})"
    audit = audit_record(
        user=user, action="LocalListResync", station=station, payload={"full": True}, ok=ok, answer=answer, error=error
    )
    return CommandOutcome(audit)


def station_diagnostics_request_staff(
    *, user, station: ChargingStation, log_type: str, hours_back: int | None
) -> DiagnosticsUpload:
    """Ask the station for its diagnostics or a log (ocpp_gateway.services.diagnostics); the GetDiagnostics / GetLog
    is audited under the staff member's name, with the station's answer."""
    return diagnostics_request(
        station_pk=station.pk, actor=getattr(user, "username", "") or "staff", log_type=log_type, hours_back=hours_back
    )


def station_composite_schedule_request_staff(
    *, user, station: ChargingStation, ocpp_evse_id: int, duration: int, charging_rate_unit: str = ""
) -> CompositeSchedule:
    """Ask the station for its composite schedule on an EVSE (ocpp_gateway.services.smart_charging); the
    GetCompositeSchedule is audited under the staff member's name with the station's answer, which is kept."""
    return composite_schedule_request(
        station_pk=station.pk,
        ocpp_evse_id=ocpp_evse_id,
        duration=duration,
        charging_rate_unit=charging_rate_unit,
        actor=getattr(user, "username", "") or "staff",
    )


def diagnostics_download_record(*, user, upload: DiagnosticsUpload) -> AuditLog:
    """Who downloaded which file: diagnostics may hold what a station knows about its users."""
    return audit_record(
        user=user,
        action="DiagnosticsDownload",
        station=upload.station,
        payload={"request_id": upload.request_id, "kind": upload.kind, "file_name": upload.file_name},
        ok=True,
    )


def firmware_campaign_start_staff(
    *,
    user,
    image: FirmwareImage,
    name: str,
    rate: int,
    vendor: str = "",
    model: str = "",
    firmware_version: str = "",
    location: Location | None = None,
    max_concurrent: int | None = None,
    pause_failures: int | None = None,
    pause_failure_percent: int | None = None,
) -> tuple[FirmwareCampaign, int]:
    """Start a firmware campaign (ocpp_gateway.services.firmware), audited; its first minute goes out at once, the
    rest by beat. Returns the campaign and how many stations it covers."""
    campaign = firmware_campaign_start(
        image=image,
        name=name,
        actor=getattr(user, "username", "") or "staff",
        rate=rate,
        vendor=vendor,
        model=model,
        firmware_version=firmware_version,
        location=location,
        max_concurrent=max_concurrent,
        pause_failures=pause_failures,
        pause_failure_percent=pause_failure_percent,
    )
    stations = campaign.updates.count()
    audit_record(
        user=user,
        action="FirmwareCampaignStart",
        payload={
            "campaign": campaign.pk,
            "image": str(image),
            "filters": {"vendor": vendor, "model": model, "firmware_version": firmware_version},
            "location": location.pk if location else None,
            "rate": campaign.rate,
            "max_concurrent": campaign.max_concurrent,
            "pause_failures": campaign.pause_failures,
            "pause_failure_percent": campaign.pause_failure_percent,
            "stations": stations,
        },
        ok=True,
    )
    transaction.on_commit(lambda: task_dispatch(firmware_campaign_advance_task, campaign.pk))
    return campaign, stations


def firmware_campaign_pause_staff(*, user, campaign: FirmwareCampaign) -> bool:
    """Pause a running campaign (updates under way go on), audited; False when it was not running."""
    who = getattr(user, "username", "") or "staff"
    paused = firmware_campaign_pause(campaign_pk=campaign.pk, reason=f"paused by {who}")
    audit_record(
        user=user,
        action="FirmwareCampaignPause",
        payload={"campaign": campaign.pk, "name": campaign.name},
        ok=paused,
        error="" if paused else f"not running ({campaign.status})",
    )
    return paused


def firmware_campaign_resume_staff(*, user, campaign: FirmwareCampaign) -> bool:
    """Resume a paused campaign, audited; its next minute goes out at once. False when it was not paused."""
    resumed = firmware_campaign_resume(campaign_pk=campaign.pk)
    audit_record(
        user=user,
        action="FirmwareCampaignResume",
        payload={"campaign": campaign.pk, "name": campaign.name},
        ok=resumed,
        error="" if resumed else f"not paused ({campaign.status})",
    )
    if resumed:
        transaction.on_commit(lambda: task_dispatch(firmware_campaign_advance_task, campaign.pk))
    return resumed


def firmware_campaign_retry_staff(*, user, campaign: FirmwareCampaign) -> int:
    """Send the campaign's failed stations the update again (their attempts reset), audited. Returns how many."""
    count = firmware_campaign_retry_failed(campaign_pk=campaign.pk)
    audit_record(
        user=user,
        action="FirmwareCampaignRetry",
        payload={"campaign": campaign.pk, "name": campaign.name, "stations": count},
        ok=True,
    )
    if count:
        transaction.on_commit(lambda: task_dispatch(firmware_campaign_advance_task, campaign.pk))
    return count


def station_firmware_update_staff(*, user, station: ChargingStation, image: FirmwareImage) -> FirmwareUpdate:
    """Update one station now; the UpdateFirmware is audited under the staff member's name with the answer."""
    return firmware_update_start(station=station, image=image, actor=getattr(user, "username", "") or "staff")


class VariableChangeRefused(Exception):
    """Staff may not change this value here (read-only, or a secret: the password has its own rotation)."""


def check_station_variable_change(*, variable: StationVariable) -> None:
    if variable.mutability == StationVariable.Mutability.READ_ONLY:
        raise VariableChangeRefused(f"{variable.name} is read-only")
    if is_secret(component=variable.component, variable=variable.variable):
        raise VariableChangeRefused(f"{variable.name} is a secret: rotate the password instead")


def station_variable_change(*, user, variable: StationVariable, value: str) -> CommandOutcome:
    """ChangeConfiguration / SetVariables of one stored value, audited; the charger's answer (Accepted,
    RebootRequired, Rejected, NotSupported, ...) or why there was none is kept with the value."""
    check_station_variable_change(variable=variable)
    request = station_variable_change_request(variable=variable, value=value)
    outcome = station_command_send(user=user, station=variable.station, request=request)
    if outcome.ok:
        status = ChangeConfiguration.status(outcome.audit.answer or {}) or "answered"
    else:
        status = "no answer: " + outcome.audit.error.partition(":")[0]
    station_variable_set_record(variable_pk=variable.pk, value=value, status=status)
    return outcome


def station_password_rotate_staff(*, user, station: ChargingStation) -> PasswordRotation | None:
    """Rotate the station's HTTP Basic password (ocpp_gateway.services.passwords) and keep who did it and how the
    charger answered; the password itself is in neither. None when the station cannot be rotated now (kept too)."""
    try:
        rotation = station_password_rotate(identity=station.identity)
    except PasswordRotationRefused as exc:
        audit_record(user=user, action="PasswordRotate", station=station, ok=False, error=str(exc))
        return None
    rejected = rotation.result == RotationResult.REJECTED
    audit_record(
        user=user,
        action="PasswordRotate",
        station=station,
        ok=not rejected,
        answer={"result": rotation.result, "detail": rotation.detail},
        error=f"the charger kept its old password: {rotation.detail}" if rejected else "",
    )
    return rotation


@transaction.atomic
def station_onboard(
    *, user, identity: str, location: Location, evses: int, tariff: Tariff | None = None
) -> tuple[ChargingStation, str]:
    """Create a station with its EVSEs, their connectors on `tariff` (None: the location's default tariff); returns
    it with the plain secret, to be shown once and never again."""
    tariff_id = tariff.id if tariff is not None else location.default_tariff_id
    station, secret = station_create(identity=identity, location=location, evses=evses, tariff_id=tariff_id)
    audit_record(
        user=user,
        action="StationCreate",
        station=station,
        payload={"identity": identity, "location": location.pk, "evses": evses, "tariff": tariff_id},
    )
    return station, secret


@transaction.atomic
def station_evse_register(*, user, evse: EVSE) -> bool:
    """Staff confirm an EVSE the charger reported (one click on the station page, kept in the audit log): it is
    published to partners from now on. False when it was registered already (nothing recorded)."""
    evse = EVSE.objects.select_for_update(of=("self",)).select_related("station").get(pk=evse.pk)
    if not evse_register(evse=evse):
        return False
    audit_record(
        user=user, action="EvseRegister", station=evse.station, payload={"evse": evse.ocpp_evse_id, "uid": evse.uid}
    )
    return True


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
    audit_record(
        user=user,
        action="StationAccept",
        station=station,
        payload={"location": station.location_id, "evses": station.evses.count()},
    )
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
        audit_record(
            user=user,
            action="TariffCreate" if created else "TariffUpdate",
            payload={"tariff_id": saved.id, "currency": saved.currency},
        )
    return saved


def partner_invite_staff(*, user, name: str, country_code: str, party_id: str, role: str) -> tuple[Partner, str]:
    """Invite a partner as `manage.py ocpi_invite` does; returns it with token A, to be shown once. The audit log
    keeps who invited whom, never the token."""
    with transaction.atomic():
        partner, token_a = partner_invite(country_code=country_code, party_id=party_id, name=name, role=role)
        audit_record(
            user=user,
            action="PartnerInvite",
            payload={
                "partner": partner.pk,
                "country_code": partner.country_code,
                "party_id": partner.party_id,
                "role": partner.role,
            },
        )
    return partner, token_a


def partner_register_staff(
    *, user, versions_url: str, token: str, name: str = "", plain_token: bool = False
) -> Partner:
    """Register with a partner as `manage.py ocpi_register` does (the OCPI credentials handshake, calling the
    partner over HTTP); re-raises the OcpiError that made it fail after keeping it in the audit log."""
    payload = {"versions_url": versions_url, "name": name, "plain_token": plain_token}
    try:
        partner = partner_register(versions_url=versions_url, token_a=token, name=name, encode_token=not plain_token)
    except OcpiError as exc:
        audit_record(
            user=user, action="PartnerRegister", payload=payload, ok=False, error=f"{exc.status_code}: {exc.message}"
        )
        raise
    audit_record(
        user=user,
        action="PartnerRegister",
        payload={**payload, "partner": partner.pk},
        ok=True,
        answer={
            "country_code": partner.country_code,
            "party_id": partner.party_id,
            "role": partner.role,
            "version": partner.version,
        },
    )
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
        audit_record(
            user=user,
            action="CdrPushRetry",
            payload={"cdr": cdr.id, "message": push.message.pk, "state": push.state, "attempts": push.message.attempts},
        )
    return message


# --- Analytics roll-ups --------------------------------------------------------------------------------------------


def _analytics_rebuild_day(*, day: date) -> None:
    """Replace one closed UTC day's roll-ups with what the live selectors give for it (same queries, one day), and
    mark the day built. Atomic, and concurrent rebuilds of a day take turns: on PostgreSQL by a transaction-scoped
    advisory lock; SQLite lets one writer at a time in (its transactions begin IMMEDIATE, see settings)."""
    period = Period.of_days(day, day)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('cpo.analytics_rebuild'), %s)", [day.toordinal()])
        AnalyticsHour.objects.filter(hour__gte=period.start, hour__lt=period.end).delete()
        AnalyticsLocationDay.objects.filter(day=day).delete()
        AnalyticsPartnerDay.objects.filter(day=day).delete()

        hours: dict[datetime, AnalyticsHour] = {}
        for row in (
            Transaction.objects.filter(started_at__gte=period.start, started_at__lt=period.end)
            .annotate(hour=TruncHour("started_at", tzinfo=UTC))
            .order_by()
            .values("hour")
            .annotate(sessions=Count("id"), wh=Sum(session_energy_wh()))
        ):
            hours[row["hour"]] = AnalyticsHour(hour=row["hour"], sessions=row["sessions"], energy_wh=row["wh"] or 0)
        for hour, seconds in busy_seconds_per_utc_hour(period=period).items():
            hours.setdefault(hour, AnalyticsHour(hour=hour)).busy_seconds = seconds
        AnalyticsHour.objects.bulk_create(hours.values())

        AnalyticsLocationDay.objects.bulk_create(
            AnalyticsLocationDay(
                day=day,
                location_id=location_id,
                sessions=row["sessions"],
                energy_wh=row["wh"] or 0,
                busy_seconds=row["busy"],
            )
            for location_id, row in location_stats(period=period).items()
            if location_id is not None
        )
        AnalyticsPartnerDay.objects.bulk_create(
            AnalyticsPartnerDay(
                day=day,
                emsp_country_code=row["emsp_country_code"],
                emsp_party_id=row["emsp_party_id"],
                currency=row["currency"],
                cdrs=row["cdrs"],
                credits=row["credits"],
                energy_kwh=row["kwh"],
                revenue_excl_vat=row["excl_vat"],
                revenue_incl_vat=row["incl_vat"],
            )
            for row in revenue_stats(period=period)
        )
        AnalyticsDay.objects.update_or_create(day=day, defaults={"built_at": timezone.now()})


def analytics_rebuild(*, first: date, last: date) -> list[date]:
    """Rebuild the analytics roll-ups of every closed UTC day in [first, last] (today and later are always computed
    live, so they are skipped), one transaction per day. Idempotent: a day's rows are replaced, never added to.
    Returns the days rebuilt."""
    last = min(last, timezone.now().astimezone(UTC).date() - timedelta(days=1))
    days = []
    day = first
    while day <= last:
        _analytics_rebuild_day(day=day)
        days.append(day)
        day += timedelta(days=1)
    return days


def analytics_rebuild_recent(*, days: int) -> list[date]:
    """Rebuild the last `days` closed days: yesterday as soon as it closes, and the days before again for sessions
    that ended (or chargers that uploaded offline transactions and CDRs) after their day closed."""
    today = timezone.now().astimezone(UTC).date()
    return analytics_rebuild(first=today - timedelta(days=days), last=today - timedelta(days=1))


def _partner_audit_payload(partner: Partner) -> dict:
    return {"partner": partner.pk, "country_code": partner.country_code, "party_id": partner.party_id}


def partner_suspend_staff(*, user, partner: Partner) -> Partner:
    """Suspend a partner (ocpi_api `partner_suspend`), kept in the audit log."""
    with transaction.atomic():
        partner = partner_suspend(partner=partner)
        audit_record(user=user, action="PartnerSuspend", payload=_partner_audit_payload(partner))
    return partner


def partner_resume_staff(*, user, partner: Partner) -> Partner:
    """Resume a suspended partner (ocpi_api `partner_resume`), kept in the audit log."""
    with transaction.atomic():
        partner = partner_resume(partner=partner)
        audit_record(user=user, action="PartnerResume", payload=_partner_audit_payload(partner))
    return partner


def partner_credentials_rotate_staff(*, user, partner: Partner) -> Partner:
    """Rotate a partner's credentials over OCPI (`partner_credentials_rotate`, which calls the partner); the audit
    log keeps the outcome, never a token. Re-raises the OcpiError that made it fail after recording it."""
    payload = _partner_audit_payload(partner)
    try:
        partner = partner_credentials_rotate(partner=partner)
    except OcpiError as exc:
        audit_record(
            user=user,
            action="PartnerCredentialsRotate",
            payload=payload,
            ok=False,
            error=f"{exc.status_code}: {exc.message}",
        )
        raise
    audit_record(
        user=user,
        action="PartnerCredentialsRotate",
        payload=payload,
        answer={"incoming_token_prefix": partner.incoming_token_prefix, "version": partner.version},
    )
    return partner


# --- Alerts --------------------------------------------------------------------------------------------------------


def alert_resolve_by_staff(*, user, alert: Alert) -> bool:
    """Staff resolved an alert by hand (cpo.alerts.alert_resolve), kept in the audit log; False when it was not open."""
    with transaction.atomic():
        resolved = alert_resolve(kind=alert.kind, subject=alert.subject, resolved_by=user.get_username())
        if resolved:
            audit_record(
                user=user,
                action="AlertResolve",
                payload={"alert": alert.pk, "kind": alert.kind, "subject": alert.subject, "count": alert.count},
            )
    return resolved
