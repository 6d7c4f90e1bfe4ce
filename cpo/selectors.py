"""Reads on the network's assets."""

from django.db.models import QuerySet

from cpo.models import EVSE, ChargingStation, Connector, Token


def station_get(*, identity: str) -> ChargingStation | None:
    return ChargingStation.objects.filter(identity=identity).first()


def evse_for_ocpp(*, station: ChargingStation, ocpp_evse_id: int) -> EVSE | None:
    """The EVSE behind an OCPP 2.0.1 evseId or an OCPP 1.6 connectorId (1.6: one connector per EVSE)."""
    return EVSE.objects.filter(station=station, ocpp_evse_id=ocpp_evse_id).first()


def connector_for_ocpp(*, evse: EVSE, connector_id: int | None) -> Connector | None:
    connectors = evse.connectors.all()
    if connector_id is not None:
        match = connectors.filter(connector_id=str(connector_id)).first()
        if match:
            return match
    return connectors.first()


def token_list_local(*, uid: str) -> QuerySet[Token]:
    return Token.objects.filter(uid=uid)
