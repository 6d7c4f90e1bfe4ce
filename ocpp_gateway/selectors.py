"""Reads the gateway's services and its callers share."""

from cpo.models import EVSE, ChargingStation, EvseStatus
from ocpp_gateway.models import Transaction


def station_registration_status(*, station_pk: int) -> str:
    return ChargingStation.objects.values_list("registration_status", flat=True).get(pk=station_pk)


# A station that reports itself as a whole Faulted or Unavailable (1.6 connectorId 0, 2.0.1 station-wide) makes
# every EVSE of it so, whatever the EVSE last said (OCPI: OUTOFORDER is broken, INOPERATIVE temporarily unusable).
STATION_STATUS_OVER_EVSES = {"Faulted": EvseStatus.OUTOFORDER, "Unavailable": EvseStatus.INOPERATIVE}


def evse_status_shown(*, evse: EVSE) -> str:
    """The OCPI status of `evse` as drivers and partners see it: its station's Faulted / Unavailable, else its own."""
    station = evse.station
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
