"""Reads the gateway's services and its callers share."""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from cpo.models import EVSE, ChargingStation, EvseStatus, LoadGroup
from ocpp_gateway import sql
from ocpp_gateway.models import StationCertificate, Transaction


def station_registration_status(*, station_pk: int) -> str:
    return ChargingStation.objects.values_list("registration_status", flat=True).get(pk=station_pk)


# A station that reports itself as a whole Faulted or Unavailable (1.6 connectorId 0, 2.0.1 station-wide) makes
# every EVSE of it so, whatever the EVSE last said (OCPI: OUTOFORDER is broken, INOPERATIVE temporarily unusable).
STATION_STATUS_OVER_EVSES = {"Faulted": EvseStatus.OUTOFORDER, "Unavailable": EvseStatus.INOPERATIVE}


def evse_status_shown(*, evse: EVSE) -> str:
    """The OCPI status of `evse` as drivers and partners see it: UNKNOWN while its station is offline (OCPI 2.2.1
    mod_locations: "No status information available (also used when offline)"), its station's Faulted / Unavailable,
    else its own. `evse.status` keeps what the charger last reported, shown again when it is back."""
    station = evse.station
    if station is not None and not station.online:
        return EvseStatus.UNKNOWN
    override = STATION_STATUS_OVER_EVSES.get(station.ocpp_status) if station is not None else None
    return override or evse.status


def connector_ocpp_id(*, evse: EVSE, connector_id: str = "") -> int:
    """The OCPP 2.0.1 connectorId of a connector of `evse` (connector ids count from 1 within each EVSE).
    `Connector.connector_id` is that number ("1", "2", ...); a non-numeric id counts by its place among the EVSE's
    connectors. No connector named: the EVSE's first."""
    if connector_id.isdigit():
        return int(connector_id)
    ids = list(evse.connectors.order_by("connector_id").values_list("connector_id", flat=True))
    if connector_id:
        for position, known in enumerate(ids, start=1):
            if known.lower() == connector_id.lower():
                return position
    return int(ids[0]) if ids and ids[0].isdigit() else 1


def transaction_active_for_evse(*, station_pk: int, ocpp_evse_id: int | None) -> int | None:
    """The transaction a MeterValues without transactionId belongs to: the only active one on that EVSE."""
    if not ocpp_evse_id:
        return None
    pks = sql.fetch_all(_TRANSACTIONS_ACTIVE_ON_EVSE, [station_pk, ocpp_evse_id, Transaction.Status.ACTIVE.value])
    return pks[0][0] if len(pks) == 1 else None


# Plain SQL (ocpp_gateway.sql): these reads run for StatusNotifications and MeterValues, a charger's most frequent
# messages.
_TRANSACTIONS_ACTIVE_ON_EVSE = (
    f'SELECT "id" FROM "{Transaction._meta.db_table}" '  # noqa: S608 - the model's table
    'WHERE "station_id" = %s AND "ocpp_evse_id" = %s AND "status" = %s LIMIT 2'
)
_TRANSACTION_ON_EVSE_AT = (
    f'SELECT "id" FROM "{Transaction._meta.db_table}" '  # noqa: S608 - the model's table
    'WHERE "station_id" = %s AND "ocpp_evse_id" = %s AND "started_at" <= %s AND ("status" = %s OR "ended_at" >= %s) '
    'ORDER BY "started_at" DESC LIMIT 1'
)


def transaction_pk_for_ocpp_id(*, station_pk: int, transaction_id) -> int | None:
    if transaction_id is None:
        return None
    row = sql.fetch_one(_TRANSACTION_PK_FOR_OCPP_ID, [station_pk, str(transaction_id)])
    return row[0] if row else None


_TRANSACTION_PK_FOR_OCPP_ID = (
    f'SELECT "id" FROM "{Transaction._meta.db_table}" '  # noqa: S608 - the model's table
    'WHERE "station_id" = %s AND "transaction_id" = %s ORDER BY "started_at" DESC LIMIT 1'
)


@dataclass(frozen=True)
class StationPlace:
    """What authorizing a token at a station and writing a transaction there need: the station's identity and
    location, and the EVSE named by an OCPP evseId/connectorId (None, "" when it has none or none was named)."""

    station_pk: int
    identity: str
    location_id: str | None
    evse_pk: int | None
    evse_uid: str


def station_place(*, station_pk: int, ocpp_evse_id: int | None) -> StationPlace:
    """One statement where the ORM took one per model (Authorize and StartTransaction ask it every session).
    Raises ChargingStation.DoesNotExist for an unknown station."""
    row = sql.fetch_one(_STATION_PLACE, [ocpp_evse_id or None, station_pk])
    if row is None:
        raise ChargingStation.DoesNotExist(f"no station {station_pk}")
    return StationPlace(
        station_pk=station_pk, identity=row[0], location_id=row[1], evse_pk=row[2], evse_uid=row[3] or ""
    )


_STATION_PLACE = (
    f'SELECT s."identity", s."location_id", e."id", e."uid" FROM "{ChargingStation._meta.db_table}" s '  # noqa: S608
    f'LEFT JOIN "{EVSE._meta.db_table}" e ON e."station_id" = s."id" AND e."ocpp_evse_id" = %s WHERE s."id" = %s'
)


_managed: tuple[float, frozenset[int]] = (0.0, frozenset())


def load_managed_station_pks() -> frozenset[int]:
    """Stations with an EVSE under an enabled load group, read at most every LOAD_MANAGEMENT_STATIONS_TTL_SECONDS
    per process: the gateway's event receivers ask on every boot and session, and most networks manage few sites."""
    global _managed
    checked, pks = _managed
    if time.monotonic() - checked < settings.LOAD_MANAGEMENT_STATIONS_TTL_SECONDS:
        return pks
    pks = frozenset()
    for group in LoadGroup.objects.filter(enabled=True).prefetch_related("evses"):
        listed = [evse.station_id for evse in group.evses.all()]
        if not listed:
            listed = list(EVSE.objects.filter(location_id=group.location_id).values_list("station_id", flat=True))
        pks |= {pk for pk in listed if pk is not None}
    _managed = (time.monotonic(), pks)
    return pks


def load_managed_stations_forget() -> None:
    """Staff changed a load group: read the managed stations again on the next event."""
    global _managed
    _managed = (0.0, frozenset())


def transaction_on_evse_at(*, station_pk: int, ocpp_evse_id: int | None, at: datetime) -> int | None:
    """The transaction that was running on an EVSE at `at`: started by then and not ended before it (a status
    report replayed from a charger's queue belongs to the transaction of its time, even one that has ended since);
    else the only active one (a report a moment before the start it belongs to)."""
    if not ocpp_evse_id:
        return None
    at_db = sql.to_db_datetime(at)
    running = sql.fetch_one(
        _TRANSACTION_ON_EVSE_AT, [station_pk, ocpp_evse_id, at_db, Transaction.Status.ACTIVE.value, at_db]
    )
    return (
        running[0]
        if running is not None
        else transaction_active_for_evse(station_pk=station_pk, ocpp_evse_id=ocpp_evse_id)
    )


def station_certificates_current() -> QuerySet[StationCertificate]:
    """Each station's current client certificate: the newest one it installed."""
    newest = (
        StationCertificate.objects.filter(station=OuterRef("station"), status=StationCertificate.Status.INSTALLED)
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    return StationCertificate.objects.filter(pk=Subquery(newest)).select_related("station")


def station_certificate_current(*, station: ChargingStation) -> StationCertificate | None:
    return station_certificates_current().filter(station=station).first()


def certificate_expiring(*, certificate: StationCertificate) -> bool:
    """Within OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS of its end (or past it): the station needs a new one."""
    horizon = timezone.now() + timedelta(days=settings.OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS)
    return certificate.not_after <= horizon
