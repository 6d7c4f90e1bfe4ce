"""What the gateway does with what chargers say. Synchronous; the consumer wraps each call once.

Every write that a retransmitted frame could repeat is keyed on natural keys backed by unique constraints
(1.6 start: station + connector + start time; 2.0.1: transactionId + seqNo; meter samples), so a replay changes
nothing the second time. Domain events are announced after commit (`events.announce`).
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cpo.models import EVSE, ChargingStation, EvseStatus, RegistrationStatus
from cpo.services import station_evse_add, station_secret_check
from ocpp_gateway import events
from ocpp_gateway.authorization import AuthorizationRequest, AuthorizationResult, id_tag_authorize
from ocpp_gateway.models import ChargingStateChange, MessageLog, MeterValue, Transaction, TransactionEvent

logger = logging.getLogger(__name__)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE = "Power.Active.Import"

# OCPP connector status (1.6 ChargePointStatus, 2.0.1 ConnectorStatusEnumType) -> OCPI EvseStatus.
OCPP_TO_OCPI_STATUS = {
    "Available": EvseStatus.AVAILABLE,
    "Preparing": EvseStatus.CHARGING,
    "Charging": EvseStatus.CHARGING,
    "SuspendedEV": EvseStatus.CHARGING,
    "SuspendedEVSE": EvseStatus.CHARGING,
    "Finishing": EvseStatus.CHARGING,
    "Occupied": EvseStatus.CHARGING,
    "Reserved": EvseStatus.RESERVED,
    "Unavailable": EvseStatus.INOPERATIVE,
    "Faulted": EvseStatus.OUTOFORDER,
}


# --- Stations -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationAuthentication:
    station_pk: int | None
    identity: str
    ocpp_version: str = ""
    registration_status: str = ""
    refusal: str = ""  # why the handshake is refused; empty when admitted

    @property
    def admitted(self) -> bool:
        return not self.refusal


def station_authenticate(*, identity: str, username: str | None, secret: str | None) -> StationAuthentication:
    """HTTP Basic check before the socket is accepted (security profile 1/2).

    Unknown identities are refused, or admitted as Pending when OCPP_ADMIT_UNKNOWN_STATIONS is on (staff accept
    them in the admin). A known station must present its own identity and secret.
    """
    station = ChargingStation.objects.filter(identity=identity).only(
        "pk", "secret_hash", "ocpp_version", "registration_status"
    ).first()
    if station is None:
        if not settings.OCPP_ADMIT_UNKNOWN_STATIONS:
            return StationAuthentication(None, identity, refusal="unknown identity")
        station, _ = ChargingStation.objects.get_or_create(
            identity=identity, defaults={"registration_status": RegistrationStatus.PENDING}
        )
        return StationAuthentication(station.pk, identity, station.ocpp_version, station.registration_status)
    if settings.OCPP_REQUIRE_AUTH:
        if not station.secret_hash:
            # Admitted as unknown earlier and not given a secret yet: only while unknown stations are admitted.
            if not settings.OCPP_ADMIT_UNKNOWN_STATIONS:
                return StationAuthentication(station.pk, identity, refusal="station has no secret")
        elif username != identity or not secret:
            return StationAuthentication(station.pk, identity, refusal="missing or foreign credentials")
        elif not station_secret_check(secret_hash=station.secret_hash, secret=secret):
            return StationAuthentication(station.pk, identity, refusal="bad secret")
    return StationAuthentication(station.pk, identity, station.ocpp_version, station.registration_status)


def station_connected(*, station_pk: int, channel_name: str, ocpp_version: str) -> None:
    """The socket is ours: a later connection of the same identity takes over from an earlier one."""
    now = timezone.now()
    ChargingStation.objects.filter(pk=station_pk).update(
        online=True, connected_since=now, last_seen=now, connection_channel=channel_name, ocpp_version=ocpp_version
    )
    events.announce(events.station_online, station_pk=station_pk)


def station_disconnected(*, station_pk: int, channel_name: str) -> bool:
    """Offline only if this socket still held the station (a replaced connection closing changes nothing)."""
    updated = ChargingStation.objects.filter(pk=station_pk, connection_channel=channel_name).update(
        online=False, connection_channel="", last_seen=timezone.now()
    )
    if updated:
        events.announce(events.station_offline, station_pk=station_pk)
    return bool(updated)


def station_seen(*, station_pks: list[int]) -> None:
    ChargingStation.objects.filter(pk__in=station_pks).update(last_seen=timezone.now())


def station_registration_status(*, station_pk: int) -> str:
    return ChargingStation.objects.values_list("registration_status", flat=True).get(pk=station_pk)


def station_boot(
    *,
    station_pk: int,
    vendor: str,
    model: str,
    serial_number: str = "",
    firmware_version: str = "",
    iccid: str = "",
    imsi: str = "",
    meter_type: str = "",
    meter_serial_number: str = "",
) -> str:
    """Record what the charger says it is; returns the RegistrationStatus to answer."""
    station = ChargingStation.objects.get(pk=station_pk)
    station.vendor = vendor[:50]
    station.model = model[:50]
    station.serial_number = (serial_number or "")[:50]
    station.firmware_version = (firmware_version or "")[:50]
    station.iccid = (iccid or "")[:20]
    station.imsi = (imsi or "")[:20]
    station.meter_type = (meter_type or "")[:25]
    station.meter_serial_number = (meter_serial_number or "")[:25]
    station.last_boot = station.last_seen = timezone.now()
    station.save()
    return station.registration_status


# 1.6 connector statuses during a transaction, as 2.0.1 ChargingStateEnumType.
CHARGING_STATE_16 = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "Preparing": "EVConnected",
    "Finishing": "EVConnected",
}


def charging_state_record(*, transaction_pk: int, timestamp: datetime, charging_state: str) -> None:
    """Note when the car started or stopped taking energy (billing tells charging from parking time by it)."""
    ChargingStateChange.objects.bulk_create(
        [ChargingStateChange(transaction_id=transaction_pk, timestamp=timestamp, charging_state=charging_state)],
        ignore_conflicts=True,
    )


# --- EVSE status ------------------------------------------------------------------------------------------------


def evse_resolve(*, station: ChargingStation, ocpp_evse_id: int | None) -> EVSE | None:
    """The EVSE behind an OCPP evseId/connectorId; created on first sight when the station has a location, so a
    charger with more sockets than registered is onboarded by what it reports."""
    if not ocpp_evse_id:
        return None
    evse = EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first()
    if evse is None and station.location_id is not None:
        try:
            with transaction.atomic():
                evse = station_evse_add(station=station, ocpp_evse_id=ocpp_evse_id)
        except IntegrityError:
            evse = EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first()
    return evse


def evse_status_update(
    *,
    station_pk: int,
    ocpp_evse_id: int,
    ocpp_status: str,
    error_code: str = "",
    timestamp: datetime | None = None,
) -> EVSE | None:
    """Apply a StatusNotification. connectorId/evseId 0 is the whole station and changes no EVSE. A report older
    than the one we hold (chargers replay queued messages after a reconnect) is ignored."""
    if ocpp_evse_id == 0:
        return None
    timestamp = timestamp or timezone.now()
    with transaction.atomic():
        evse = EVSE.objects.select_for_update().filter(station_id=station_pk, ocpp_evse_id=ocpp_evse_id).first()
        if evse is None:
            station = ChargingStation.objects.get(pk=station_pk)
            evse = evse_resolve(station=station, ocpp_evse_id=ocpp_evse_id)
            if evse is None:
                logger.warning("%s: status for unknown EVSE %s (station has no location)", station, ocpp_evse_id)
                return None
            evse = EVSE.objects.select_for_update().get(pk=evse.pk)
        if evse.status_updated is not None and timestamp < evse.status_updated:
            return evse
        status = OCPP_TO_OCPI_STATUS.get(ocpp_status, EvseStatus.UNKNOWN)
        changed = evse.status != status
        evse.status = status
        evse.ocpp_status = ocpp_status
        evse.ocpp_error_code = "" if error_code in ("", "NoError") else error_code[:50]
        evse.status_updated = timestamp
        evse.save(update_fields=["status", "ocpp_status", "ocpp_error_code", "status_updated", "last_updated"])
        if ocpp_status in CHARGING_STATE_16:
            active = transaction_active_for_evse(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
            if active is not None:
                charging_state_record(
                    transaction_pk=active, timestamp=timestamp, charging_state=CHARGING_STATE_16[ocpp_status]
                )
        if changed:
            events.announce(
                events.connector_status_changed, evse_pk=evse.pk, status=status, ocpp_status=ocpp_status
            )
    return evse


# --- Meter values ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One sampled value, version-neutral. `value` is None for signed/unparseable data."""

    timestamp: datetime
    value: Decimal | None
    measurand: str = ENERGY_REGISTER
    unit: str = ""
    phase: str = ""
    context: str = ""
    location: str = ""
    format: str = ""
    signed_data: dict | str | None = None

    def in_base_unit(self) -> Decimal | None:
        """Energy in Wh, power in W, whatever multiple the charger used."""
        if self.value is None:
            return None
        if self.unit in ("kWh", "kW", "kvarh", "kvar", "kVA"):
            return self.value * 1000
        return self.value


def to_decimal(value) -> Decimal | None:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def meter_values_receive(
    *, station_pk: int, ocpp_evse_id: int | None, transaction_id: str | int | None, samples: list[Sample]
) -> int:
    """MeterValues.req: samples of the transaction the charger names, else of the only active transaction on that
    EVSE (2.0.1 and many 1.6 chargers leave the id out), else of no transaction."""
    transaction_pk = transaction_pk_for_ocpp_id(station_pk=station_pk, transaction_id=transaction_id)
    if transaction_pk is None and transaction_id is None:
        transaction_pk = transaction_active_for_evse(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
    return meter_values_record(
        station_pk=station_pk, ocpp_evse_id=ocpp_evse_id or None, transaction_pk=transaction_pk, samples=samples
    )


def meter_values_record(
    *, station_pk: int, ocpp_evse_id: int | None, transaction_pk: int | None, samples: list[Sample]
) -> int:
    """Store samples (a repeated one is skipped) and move the transaction's latest register reading forward."""
    if not samples:
        return 0
    rows = [
        MeterValue(
            station_id=station_pk,
            transaction_id=transaction_pk,
            ocpp_evse_id=ocpp_evse_id,
            timestamp=s.timestamp,
            measurand=s.measurand or ENERGY_REGISTER,
            value=s.value,
            unit=s.unit,
            phase=s.phase,
            context=s.context,
            location=s.location,
            format=s.format,
            signed_data=s.signed_data,
        )
        for s in samples
    ]
    MeterValue.objects.bulk_create(rows, ignore_conflicts=True)
    if transaction_pk is not None:
        _transaction_meter_update(transaction_pk=transaction_pk, samples=samples)
    return len(rows)


def _latest(samples: list[Sample], measurand: str) -> Sample | None:
    """The newest whole-device reading of a measurand (no phase, outlet side unless only inlet was sent)."""
    candidates = [s for s in samples if (s.measurand or ENERGY_REGISTER) == measurand and s.value is not None]
    unphased = [s for s in candidates if not s.phase]
    candidates = unphased or candidates
    return max(candidates, key=lambda s: s.timestamp) if candidates else None


def _transaction_meter_update(*, transaction_pk: int, samples: list[Sample]) -> None:
    """Move an ACTIVE transaction's latest readings forward in one UPDATE; samples older than the latest reading
    we hold (replayed from the charger's queue) change nothing."""
    fields = {}
    energy = _latest(samples, ENERGY_REGISTER)
    if energy is not None:
        fields.update(meter_last=energy.in_base_unit(), meter_last_at=energy.timestamp)
    power = _latest(samples, POWER_ACTIVE)
    if power is not None:
        fields["power_last"] = power.in_base_unit()
    if not fields:
        return
    active = Transaction.objects.filter(pk=transaction_pk, status=Transaction.Status.ACTIVE)
    if energy is not None:
        active = active.filter(Q(meter_last_at__isnull=True) | Q(meter_last_at__lte=energy.timestamp))
    if active.update(**fields, updated_at=timezone.now()):
        events.announce(events.transaction_updated, transaction_pk=transaction_pk)


# --- Transactions, OCPP 1.6 -------------------------------------------------------------------------------------


def _authorization_of(tx: Transaction) -> AuthorizationResult:
    return AuthorizationResult(
        status=tx.auth_status or "Invalid",
        source=tx.auth_source,
        group_id=tx.group_id,
        authorization_reference=tx.authorization_reference,
        auth_method=tx.auth_method,
        token_uid=tx.token_uid,
        token_type=tx.token_type,
        contract_id=tx.contract_id,
        country_code=tx.token_country_code,
        party_id=tx.token_party_id,
    )


def _authorization_fields(auth: AuthorizationResult) -> dict:
    """What a transaction keeps of the authorization that let it start (for its OCPI Session and CDR)."""
    return dict(
        auth_status=auth.status,
        auth_source=auth.source,
        group_id=auth.group_id,
        authorization_reference=auth.authorization_reference,
        auth_method=auth.auth_method,
        token_uid=auth.token_uid,
        token_type=auth.token_type,
        contract_id=auth.contract_id,
        token_country_code=auth.country_code,
        token_party_id=auth.party_id,
    )


def _authorize(*, station: ChargingStation, id_tag: str, id_token_type: str = "", evse: EVSE | None = None):
    return id_tag_authorize(
        AuthorizationRequest(
            id_tag=id_tag,
            id_token_type=id_token_type,
            station_identity=station.identity,
            location_id=station.location_id or "",
            evse_uid=evse.uid if evse else "",
        )
    )


def id_tag_check(*, station_pk: int, id_tag: str, id_token_type: str = "", ocpp_evse_id: int | None = None):
    """Authorize.req: may this token charge here?"""
    station = ChargingStation.objects.get(pk=station_pk)
    evse = EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first() if ocpp_evse_id else None
    return _authorize(station=station, id_tag=id_tag, id_token_type=id_token_type, evse=evse)


def transaction_start_16(
    *,
    station_pk: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: datetime,
    reservation_id: int | None = None,
) -> tuple[Transaction, AuthorizationResult]:
    """StartTransaction.req. The transactionId is ours (the row's primary key). A retransmission (same station,
    connector and start time) gets the same transaction and answer back."""
    existing = Transaction.objects.filter(
        station_id=station_pk, ocpp_version="1.6", ocpp_evse_id=connector_id, started_at=timestamp
    ).first()
    if existing is not None:
        return existing, _authorization_of(existing)
    station = ChargingStation.objects.get(pk=station_pk)
    evse = evse_resolve(station=station, ocpp_evse_id=connector_id)
    auth = _authorize(station=station, id_tag=id_tag, evse=evse)  # before the write: may ask an EMSP
    try:
        with transaction.atomic():
            tx = Transaction.objects.create(
                station=station,
                evse=evse,
                ocpp_version="1.6",
                ocpp_evse_id=connector_id,
                connector_id=connector_id,
                id_tag=id_tag,
                reservation_id=reservation_id,
                started_at=timestamp,
                meter_start=Decimal(meter_start),
                **_authorization_fields(auth),
            )
            tx.transaction_id = str(tx.pk)
            tx.save(update_fields=["transaction_id"])
            events.announce(events.transaction_started, transaction_pk=tx.pk)
    except IntegrityError:
        tx = Transaction.objects.get(
            station_id=station_pk, ocpp_version="1.6", ocpp_evse_id=connector_id, started_at=timestamp
        )
        return tx, _authorization_of(tx)
    return tx, auth


def transaction_stop_16(
    *,
    station_pk: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: datetime,
    reason: str = "",
    id_tag: str = "",
    samples: list[Sample] | None = None,
) -> tuple[Transaction | None, AuthorizationResult | None]:
    """StopTransaction.req. Unknown ids are accepted and logged (the charger must be able to empty its queue); a
    repeated stop changes nothing."""
    station = ChargingStation.objects.get(pk=station_pk)
    auth = _authorize(station=station, id_tag=id_tag) if id_tag else None
    with transaction.atomic():
        tx = (
            Transaction.objects.select_for_update()
            .filter(station=station, transaction_id=str(transaction_id))
            .first()
        )
        if tx is None:
            logger.warning("%s: StopTransaction for unknown transaction %s accepted", station, transaction_id)
            meter_values_record(station_pk=station_pk, ocpp_evse_id=None, transaction_pk=None, samples=samples or [])
            return None, auth
        if tx.status == Transaction.Status.ENDED:
            return tx, auth
        meter_values_record(
            station_pk=station_pk, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=samples or []
        )
        tx.refresh_from_db()
        tx.status = Transaction.Status.ENDED
        tx.ended_at = max(timestamp, tx.started_at)
        tx.meter_stop = Decimal(meter_stop)
        tx.stop_reason = reason or "Local"
        tx.save()
        events.announce(events.transaction_ended, transaction_pk=tx.pk)
    return tx, auth


# --- Transactions, OCPP 2.0.1 and 2.1 --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionEventInput:
    event_type: str  # Started | Updated | Ended
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    transaction_id: str
    charging_state: str = ""
    stopped_reason: str = ""
    remote_start_id: int | None = None
    ocpp_evse_id: int | None = None
    connector_id: int | None = None
    id_token: str = ""
    id_token_type: str = ""
    reservation_id: int | None = None
    offline: bool = False
    samples: tuple[Sample, ...] = ()
    payload: dict | None = None
    ocpp_version: str = "2.0.1"


def transaction_event_201(
    *, station_pk: int, event: TransactionEventInput
) -> tuple[Transaction, AuthorizationResult | None]:
    """TransactionEvent.req, idempotent per (transactionId, seqNo). Events may arrive out of order after an
    offline period: the transaction is created by whichever comes first and never reopened once Ended."""
    station = ChargingStation.objects.get(pk=station_pk)
    evse = evse_resolve(station=station, ocpp_evse_id=event.ocpp_evse_id)
    auth = (
        _authorize(station=station, id_tag=event.id_token, id_token_type=event.id_token_type, evse=evse)
        if event.id_token
        else None
    )
    with transaction.atomic():
        ChargingStation.objects.select_for_update().filter(pk=station_pk).first()  # serialise per station
        tx = Transaction.objects.filter(station=station, transaction_id=event.transaction_id).first()
        created = tx is None
        if created:
            tx = Transaction.objects.create(
                station=station,
                evse=evse,
                transaction_id=event.transaction_id,
                ocpp_version=event.ocpp_version,
                ocpp_evse_id=event.ocpp_evse_id,
                connector_id=event.connector_id,
                started_at=event.timestamp,
                meter_start=Decimal(0),
            )
        elif TransactionEvent.objects.filter(transaction=tx, seq_no=event.seq_no).exists():
            return tx, auth if auth is not None else (_authorization_of(tx) if tx.id_tag else None)
        TransactionEvent.objects.create(
            transaction=tx,
            seq_no=event.seq_no,
            event_type=event.event_type,
            trigger_reason=event.trigger_reason,
            timestamp=event.timestamp,
            offline=event.offline,
            payload=event.payload or {},
        )
        _transaction_apply_event(tx=tx, evse=evse, event=event, auth=auth, created=created)
    return tx, auth


def _transaction_apply_event(
    *, tx: Transaction, evse: EVSE | None, event: TransactionEventInput, auth, created: bool
) -> None:
    if evse is not None and tx.evse_id is None:
        tx.evse, tx.ocpp_evse_id = evse, event.ocpp_evse_id
    if event.connector_id and not tx.connector_id:
        tx.connector_id = event.connector_id
    if event.id_token and (not tx.id_tag or event.event_type == "Started"):
        tx.id_tag, tx.id_token_type = event.id_token, event.id_token_type
        if auth is not None:
            for name, value in _authorization_fields(auth).items():
                setattr(tx, name, value)
    if event.remote_start_id is not None:
        tx.remote_start_id = event.remote_start_id
    if event.reservation_id is not None:
        tx.reservation_id = event.reservation_id
    if event.charging_state:
        tx.charging_state = event.charging_state
        charging_state_record(transaction_pk=tx.pk, timestamp=event.timestamp, charging_state=event.charging_state)
    tx.last_seq_no = max(tx.last_seq_no or 0, event.seq_no)
    energies = [s for s in event.samples if (s.measurand or ENERGY_REGISTER) == ENERGY_REGISTER and not s.phase]
    if event.event_type == "Started":
        tx.started_at = min(tx.started_at, event.timestamp) if not created else event.timestamp
        begin = [s for s in energies if s.context == "Transaction.Begin"] or energies
        if begin and begin[0].in_base_unit() is not None:
            tx.meter_start = begin[0].in_base_unit()
    elif created and energies and energies[0].in_base_unit() is not None:
        tx.meter_start = energies[0].in_base_unit()  # Started still missing: best lower bound
    tx.save()
    meter_values_record(
        station_pk=tx.station_id, ocpp_evse_id=tx.ocpp_evse_id, transaction_pk=tx.pk, samples=list(event.samples)
    )
    tx.refresh_from_db()
    if created:
        events.announce(events.transaction_started, transaction_pk=tx.pk)
    if event.event_type == "Ended" and tx.status != Transaction.Status.ENDED:
        end = [s for s in energies if s.context == "Transaction.End"] or energies
        tx.status = Transaction.Status.ENDED
        tx.ended_at = max(event.timestamp, tx.started_at)
        if end and end[-1].in_base_unit() is not None:
            tx.meter_stop = end[-1].in_base_unit()
        else:
            tx.meter_stop = tx.meter_last if tx.meter_last is not None else tx.meter_start
        tx.stop_reason = event.stopped_reason or "Local"
        tx.save()
        events.announce(events.transaction_ended, transaction_pk=tx.pk)
    elif not created and tx.status == Transaction.Status.ACTIVE:
        events.announce(events.transaction_updated, transaction_pk=tx.pk)


def transaction_active_for_evse(*, station_pk: int, ocpp_evse_id: int | None) -> int | None:
    """The transaction a MeterValues without transactionId belongs to: the only active one on that EVSE."""
    if not ocpp_evse_id:
        return None
    pks = list(
        Transaction.objects.filter(
            station_id=station_pk, ocpp_evse_id=ocpp_evse_id, status=Transaction.Status.ACTIVE
        ).values_list("pk", flat=True)[:2]
    )
    return pks[0] if len(pks) == 1 else None


def transaction_pk_for_ocpp_id(*, station_pk: int, transaction_id) -> int | None:
    if transaction_id is None:
        return None
    return (
        Transaction.objects.filter(station_id=station_pk, transaction_id=str(transaction_id))
        .values_list("pk", flat=True)
        .first()
    )


def transaction_close_stale(*, older_than_hours: float | None = None) -> list[int]:
    """Housekeeping: end ACTIVE transactions of stations that went offline and said nothing for a long time, at
    their last known reading, so sessions do not stay open forever. A StopTransaction that arrives later changes
    nothing (the transaction is ENDED); its meter values are still kept."""
    hours = settings.OCPP_STALE_TRANSACTION_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timezone.timedelta(hours=hours)
    candidates = Transaction.objects.filter(status=Transaction.Status.ACTIVE, station__online=False).filter(
        Q(meter_last_at__lt=cutoff) | Q(meter_last_at__isnull=True, started_at__lt=cutoff)
    )
    closed = []
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            tx = Transaction.objects.select_for_update().get(pk=pk)
            if tx.status != Transaction.Status.ACTIVE:
                continue
            tx.status = Transaction.Status.ENDED
            tx.ended_at = max(tx.meter_last_at or tx.started_at, tx.started_at)
            tx.meter_stop = tx.meter_last if tx.meter_last is not None else tx.meter_start
            tx.stop_reason = "Other"
            tx.save()
            events.announce(events.transaction_ended, transaction_pk=tx.pk)
            closed.append(pk)
    if closed:
        logger.warning("closed %d stale transactions: %s", len(closed), closed)
    return closed


# --- Message log -------------------------------------------------------------------------------------------------


def message_log_write(*, entries: list[dict]) -> None:
    MessageLog.objects.bulk_create([MessageLog(**entry) for entry in entries])


def message_log_prune(*, older_than_days: int | None = None) -> int:
    days = settings.OCPP_MESSAGE_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timezone.timedelta(days=days)
    deleted, _ = MessageLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
