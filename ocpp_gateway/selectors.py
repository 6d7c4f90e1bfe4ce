"""Reads the gateway's services and its callers share."""

from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from cpo.models import EVSE, ChargingStation
from ocpp_gateway.models import StationCertificate, Transaction


def station_registration_status(*, station_pk: int) -> str:
    return ChargingStation.objects.values_list("registration_status", flat=True).get(pk=station_pk)


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
