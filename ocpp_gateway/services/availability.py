"""Availability (2.0.1 block G; 1.6 Core): StatusNotification moves an EVSE's status, and while a transaction runs
on it, the transaction's charging state (billing tells charging from parking time by it)."""

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cpo.alerts import alert_raise, alert_resolve
from cpo.models import EVSE, AlertKind, ChargingStation, EvseStatus
from ocpp_gateway import events, sql
from ocpp_gateway.models import Transaction
from ocpp_gateway.selectors import (
    STATION_STATUS_OVER_EVSES,
    evse_status_shown,
    transaction_on_evse_at,
)
from ocpp_gateway.services.provisioning import evse_resolve
from ocpp_gateway.services.transactions import charging_state_record, transactions_end_unstopped

logger = logging.getLogger(__name__)

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

FAULTED = "Faulted"

# 1.6 connector statuses during a transaction, as 2.0.1 ChargingStateEnumType.
CHARGING_STATE_16 = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "Preparing": "EVConnected",
    "Finishing": "EVConnected",
}

# 1.6 connector statuses that say no transaction runs there any more (a StopTransaction never came), and the stop
# reason recorded for it.
FREE_STATUS_16 = {"Available": "EVDisconnected", "Preparing": "Other"}


def evse_status_update(
    *,
    station_pk: int,
    ocpp_evse_id: int,
    ocpp_status: str,
    error_code: str = "",
    info: str = "",
    vendor_id: str = "",
    vendor_error_code: str = "",
    timestamp: datetime | None = None,
    ocpp_version: str = "1.6",
) -> int | None:
    """Apply a StatusNotification. connectorId/evseId 0 is the whole station: its status and the vendor's details
    are kept on the station (`station_status_update`). A report older than the one we hold (chargers replay queued
    messages after a reconnect) leaves the EVSE's status as it is, but the charging state it reports is kept for the
    transaction of its time: billing tells charging from parking time by that history. `timestamp` is as believed
    (services.clock); a held time that is itself in the future (stored before that check) orders nothing. A 1.6
    connector reported Available or Preparing after a transaction that never got its StopTransaction ends that
    transaction (at its last known reading). Returns the EVSE's pk (None: the station has no such EVSE)."""
    now = timezone.now()
    timestamp = timestamp or now
    if ocpp_evse_id == 0:
        station_status_update(
            station_pk=station_pk,
            ocpp_status=ocpp_status,
            error_code=error_code,
            info=info,
            vendor_id=vendor_id,
            vendor_error_code=vendor_error_code,
            timestamp=timestamp,
        )
        return None
    status = OCPP_TO_OCPI_STATUS.get(ocpp_status, EvseStatus.UNKNOWN)
    details = (
        "" if error_code in ("", "NoError") else error_code[:50],
        (info or "")[:50],
        (vendor_id or "")[:255],
        (vendor_error_code or "")[:50],
    )
    swapped = _evse_status_swap(
        station_pk=station_pk,
        ocpp_evse_id=ocpp_evse_id,
        values=(status, ocpp_status, *details),
        timestamp=timestamp,
        now=now,
    )
    follow = functools.partial(
        _evse_status_changed,
        station_pk=station_pk,
        ocpp_evse_id=ocpp_evse_id,
        now=(status, ocpp_status),
        details=details,
        timestamp=timestamp,
        ocpp_version=ocpp_version,
    )
    if swapped is not None:
        evse_pk, evse_uid, was_status, was_ocpp_status = swapped
        follow(evse=(evse_pk, evse_uid), was=(was_status, was_ocpp_status))
        return evse_pk
    with transaction.atomic():
        held = _evse_status_held(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id, timestamp=timestamp, now=now)
        if held is None:
            station = ChargingStation.objects.get(pk=station_pk)
            if evse_resolve(station=station, ocpp_evse_id=ocpp_evse_id) is None:
                logger.warning("%s: status for unknown EVSE %s (station has no location)", station, ocpp_evse_id)
                return None
            held = _evse_status_held(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id, timestamp=timestamp, now=now)
            if held is None:  # deleted again meanwhile
                return None
        evse_pk, evse_uid, was_status, was_ocpp_status, newer = held
        if not newer:
            _charging_state_note(
                station_pk=station_pk, ocpp_evse_id=ocpp_evse_id, ocpp_status=ocpp_status, at=timestamp
            )
            return evse_pk
        sql.execute(
            _EVSE_STATUS_SET,
            [status, ocpp_status, *details, sql.to_db_datetime(timestamp), sql.to_db_datetime(now), evse_pk],
        )
        follow(evse=(evse_pk, evse_uid), was=(was_status, was_ocpp_status))
    return evse_pk


def _evse_status_changed(
    *,
    station_pk: int,
    ocpp_evse_id: int,
    evse: tuple[int, str],
    was: tuple[str, str],
    now: tuple[str, str],
    details: tuple[str, str, str, str],
    timestamp: datetime,
    ocpp_version: str,
) -> None:
    """What follows an EVSE's new status: a 1.6 transaction left without its stop ends, the charging state is kept,
    a fault raises or resolves its alert, and a changed OCPI status is announced."""
    (evse_pk, evse_uid), (was_status, was_ocpp_status), (status, ocpp_status) = evse, was, now
    if ocpp_version == "1.6" and ocpp_status in FREE_STATUS_16:
        transactions_end_unstopped(
            station_pk=station_pk,
            ocpp_evse_id=ocpp_evse_id,
            ocpp_version="1.6",
            ended_by=Transaction.EndedBy.STATUS,
            reason=FREE_STATUS_16[ocpp_status],
            before=timestamp,
        )
    _charging_state_note(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id, ocpp_status=ocpp_status, at=timestamp)
    if ocpp_status == FAULTED or was_ocpp_status == FAULTED:
        _fault_alert(
            kind=AlertKind.CONNECTOR_FAULTED,
            subject=evse_uid,
            what=f"EVSE {evse_uid}",
            ocpp_status=ocpp_status,
            details=(details[0], details[1], details[3]),
        )
    if status != was_status:
        events.announce(events.connector_status_changed, evse_pk=evse_pk, status=status, ocpp_status=ocpp_status)


# The EVSE's row, locked, and whether a report of `timestamp` is newer than the status held (or the held one is
# from the future: stored before services.clock checked times, it orders nothing). Plain SQL: StatusNotification
# is a fifth of a network's CALLs, and the ORM's locked read and save were most of its cost (bench/RESULTS.md).
_EVSE_STATUS_HELD = (
    'SELECT "id", "uid", "status", "ocpp_status", '
    '("status_updated" IS NULL OR "status_updated" <= %s OR "status_updated" > %s) '
    'FROM "cpo_evse" WHERE "station_id" = %s AND "ocpp_evse_id" = %s'
)
# What a newer status sets: the status, ocpp_status and four details, then when it was reported and changed.
_EVSE_STATUS_ASSIGNMENTS = (
    '"status" = %s, "ocpp_status" = %s, "ocpp_error_code" = %s, "status_info" = %s, "vendor_id" = %s, '
    '"vendor_error_code" = %s, "status_updated" = %s, "last_updated" = %s'
)
_EVSE_STATUS_SET = f'UPDATE "cpo_evse" SET {_EVSE_STATUS_ASSIGNMENTS} WHERE "id" = %s'  # noqa: S608 - constants


# PostgreSQL: the same read-and-set as one statement in autocommit (one round trip where the locked read, the update
# and their transaction took four): the EVSE's row is locked by the subquery, and the update happens only when the
# report is newer, returning what the row held before. No row: no such EVSE, or an older report (the path above).
_EVSE_STATUS_SWAP = (
    f'UPDATE "cpo_evse" AS "evse" SET {_EVSE_STATUS_ASSIGNMENTS} '  # noqa: S608 - constants
    'FROM (SELECT "id", "status", "ocpp_status" FROM "cpo_evse" WHERE "station_id" = %s AND "ocpp_evse_id" = %s '
    'FOR UPDATE) AS "held" WHERE "evse"."id" = "held"."id" AND ("evse"."status_updated" IS NULL '
    'OR "evse"."status_updated" <= %s OR "evse"."status_updated" > %s) '
    'RETURNING "evse"."id", "evse"."uid", "held"."status", "held"."ocpp_status"'
)


def _evse_status_swap(
    *, station_pk: int, ocpp_evse_id: int, values: tuple, timestamp: datetime, now: datetime
) -> tuple[int, str, str, str] | None:
    """(pk, uid, status and ocpp_status held before) of the station's EVSE once set to `values` (status, ocpp_status
    and the four details) when the report is newer, in one statement; None when it was not set (no such EVSE, an
    older report) or the backend has no such statement (SQLite: the locked read and the update)."""
    if connection.vendor != "postgresql":
        return None
    ahead = now + timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)
    row = sql.fetch_one(
        _EVSE_STATUS_SWAP,
        [
            *values,
            sql.to_db_datetime(timestamp),
            sql.to_db_datetime(now),
            station_pk,
            ocpp_evse_id,
            sql.to_db_datetime(timestamp),
            sql.to_db_datetime(ahead),
        ],
    )
    return (row[0], row[1], row[2], row[3]) if row is not None else None


def _evse_status_held(
    *, station_pk: int, ocpp_evse_id: int, timestamp: datetime, now: datetime
) -> tuple[int, str, str, str, bool] | None:
    """(pk, uid, status, ocpp_status, whether `timestamp` is newer) of the station's EVSE, its row locked until the
    database transaction ends; None when the station has no such EVSE."""
    ahead = now + timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)
    row = sql.fetch_one(
        _EVSE_STATUS_HELD + sql.for_update(),
        [sql.to_db_datetime(timestamp), sql.to_db_datetime(ahead), station_pk, ocpp_evse_id],
    )
    if row is None:
        return None
    return row[0], row[1], row[2], row[3], bool(row[4])


def _charging_state_note(*, station_pk: int, ocpp_evse_id: int, ocpp_status: str, at: datetime) -> None:
    """A 1.6 connector status that is a charging state, kept for the transaction running on the EVSE at `at`."""
    if ocpp_status not in CHARGING_STATE_16:
        return
    transaction_pk = transaction_on_evse_at(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id, at=at)
    if transaction_pk is not None:
        charging_state_record(
            transaction_pk=transaction_pk, timestamp=at, charging_state=CHARGING_STATE_16[ocpp_status]
        )


def station_status_update(
    *,
    station_pk: int,
    ocpp_status: str,
    error_code: str = "",
    info: str = "",
    vendor_id: str = "",
    vendor_error_code: str = "",
    timestamp: datetime,
) -> None:
    """The station's own status (e.g. Faulted / PowerMeterFailure for the whole station), kept with the vendor's
    details as sent; an older report than the one held is ignored, as for EVSEs (unless the held one is from the
    future: stored before services.clock checked times). A station Faulted or Unavailable as a whole is so for every
    EVSE of it, and back to their own statuses when it recovers (`station_evses_changed`)."""
    with transaction.atomic():
        before = (
            ChargingStation.objects.select_for_update()
            .filter(pk=station_pk)
            .values_list("ocpp_status", "identity")
            .first()
        )
        updated = _station_status_write(
            station_pk=station_pk,
            ocpp_status=ocpp_status,
            error_code=error_code,
            info=info,
            vendor_id=vendor_id,
            vendor_error_code=vendor_error_code,
            timestamp=timestamp,
        )
        was = STATION_STATUS_OVER_EVSES.get(before[0]) if before else None
        if updated and was != STATION_STATUS_OVER_EVSES.get(ocpp_status[:20]):
            station_evses_changed(station_pk=station_pk)
        if updated and before and FAULTED in (before[0], ocpp_status):
            _fault_alert(
                kind=AlertKind.STATION_FAULTED,
                subject=before[1],
                what=f"station {before[1]}",
                ocpp_status=ocpp_status,
                details=(error_code if error_code != "NoError" else "", info, vendor_error_code),
            )


def _fault_alert(*, kind: str, subject: str, what: str, ocpp_status: str, details: tuple[str, ...]) -> None:
    """Faulted raises (or counts again) the alert; any other status resolves it."""
    if ocpp_status != FAULTED:
        alert_resolve(kind=kind, subject=subject)
        return
    reported = " ".join(detail for detail in details if detail)
    alert_raise(kind=kind, subject=subject, message=f"{what} Faulted" + (f": {reported}" if reported else ""))


def station_evses_changed(*, station_pk: int) -> None:
    """Every EVSE of the station shows another status now (the station's own status covers or uncovers them): they
    are changed as of now, and each change is announced like the EVSE's own."""
    EVSE.objects.filter(station_id=station_pk).update(last_updated=timezone.now())
    for evse in EVSE.objects.filter(station_id=station_pk).select_related("station"):
        events.announce(
            events.connector_status_changed,
            evse_pk=evse.pk,
            status=evse_status_shown(evse=evse),
            ocpp_status=evse.ocpp_status,
        )


def _station_status_write(
    *,
    station_pk: int,
    ocpp_status: str,
    error_code: str,
    info: str,
    vendor_id: str,
    vendor_error_code: str,
    timestamp: datetime,
) -> int:
    ahead = timezone.now() + timedelta(seconds=settings.OCPP_CLOCK_MAX_AHEAD_SECONDS)
    return (
        ChargingStation.objects.filter(pk=station_pk)
        .filter(Q(status_updated__isnull=True) | Q(status_updated__lte=timestamp) | Q(status_updated__gt=ahead))
        .update(
            ocpp_status=ocpp_status[:20],
            ocpp_error_code="" if error_code in ("", "NoError") else error_code[:50],
            status_info=(info or "")[:50],
            vendor_id=(vendor_id or "")[:255],
            vendor_error_code=(vendor_error_code or "")[:50],
            status_updated=timestamp,
        )
    )


@dataclass(frozen=True)
class StationAvailability:
    """A 2.0.1 NotifyEvent about the station as a whole: component ChargingStation (no EVSE), variable
    AvailabilityState (Available, Occupied, Reserved, Unavailable, Faulted), with the vendor's techCode/techInfo."""

    ocpp_status: str
    timestamp: datetime
    tech_code: str = ""
    tech_info: str = ""


def station_availability_events(event_data: list[dict]) -> list[StationAvailability]:
    """The station-wide availability reports among a NotifyEvent's eventData (snake_case keys), oldest first."""
    found = []
    for event in event_data or []:
        component, variable = event.get("component") or {}, event.get("variable") or {}
        if component.get("name") != "ChargingStation" or component.get("evse"):
            continue
        if variable.get("name") != "AvailabilityState" or not event.get("actual_value"):
            continue
        found.append(
            StationAvailability(
                ocpp_status=str(event["actual_value"])[:20],
                timestamp=event["timestamp"],
                tech_code=str(event.get("tech_code") or "")[:50],
                tech_info=str(event.get("tech_info") or "")[:50],
            )
        )
    return sorted(found, key=lambda report: report.timestamp)


def station_availability_record(*, station_pk: int, reports: list[StationAvailability]) -> None:
    """2.0.1 station-wide status (NotifyEvent AvailabilityState of the ChargingStation component): kept on the
    station like a 1.6 StatusNotification for connector 0, techCode / techInfo as the vendor's details."""
    for report in reports:
        station_status_update(
            station_pk=station_pk,
            ocpp_status=report.ocpp_status,
            info=report.tech_info,
            vendor_error_code=report.tech_code,
            timestamp=report.timestamp,
        )
