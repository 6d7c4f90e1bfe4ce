"""Reads for the stations pages and onboarding: the list, a station's connectors with their running transaction,
its OCPP message log and what staff did to it; stations waiting to be accepted."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from cpo.dashboard.models import AuditLog
from cpo.models import EVSE, ChargingStation, EvseStatus, RegistrationStatus
from ocpp_gateway.models import MessageLog, Reservation, Transaction

FAULT_STATUSES = [EvseStatus.OUTOFORDER, EvseStatus.INOPERATIVE, EvseStatus.BLOCKED]


def station_list(*, search: str = "", online: str = "") -> QuerySet[ChargingStation]:
    stations = ChargingStation.objects.select_related("location").annotate(
        evses_total=Count("evses"),
        evses_charging=Count("evses", filter=Q(evses__status=EvseStatus.CHARGING)),
        evses_faulted=Count("evses", filter=Q(evses__status__in=FAULT_STATUSES)),
    )
    if search:
        stations = stations.filter(
            Q(identity__icontains=search) | Q(location__name__icontains=search) | Q(location__city__icontains=search)
        )
    if online in ("1", "0"):
        stations = stations.filter(online=online == "1")
    return stations.order_by("identity")


@dataclass(frozen=True)
class ConnectorState:
    evse: EVSE
    transaction: Transaction | None

    @property
    def untariffed(self) -> bool:
        """No tariff of its own on any connector and none at the location: its sessions would cost nothing."""
        if self.evse.location.default_tariff_id:
            return False
        return any(not connector.tariff_ids for connector in self.evse.connectors.all())

    @property
    def energy_kwh(self) -> Decimal | None:
        if self.transaction is None:
            return None
        return (Decimal(self.transaction.energy_wh) / 1000).quantize(Decimal("0.001"))

    @property
    def power_kw(self) -> Decimal | None:
        if self.transaction is None or self.transaction.power_last is None:
            return None
        return (self.transaction.power_last / 1000).quantize(Decimal("0.01"))


def station_connectors(*, station: ChargingStation) -> list[ConnectorState]:
    evses = list(station.evses.select_related("location").prefetch_related("connectors").order_by("ocpp_evse_id"))
    active = {
        tx.ocpp_evse_id: tx
        for tx in Transaction.objects.filter(station=station, status=Transaction.Status.ACTIVE).order_by("started_at")
    }
    return [ConnectorState(evse, active.get(evse.ocpp_evse_id)) for evse in evses]


def station_message_log(*, station: ChargingStation, action: str = "", direction: str = "") -> QuerySet[MessageLog]:
    log = MessageLog.objects.filter(station=station)
    if action:
        log = log.filter(action__iexact=action)
    if direction:
        log = log.filter(direction=direction)
    return log.order_by("-created_at", "-id")


def station_audit_log(*, station: ChargingStation, limit: int = 20) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(station=station).order_by("-created_at", "-id")[:limit]


def station_reservations(*, station: ChargingStation, limit: int = 20) -> QuerySet[Reservation]:
    """The station's latest reservations with their OCPI session (RESERVATION, then ACTIVE or COMPLETED), if any."""
    return (
        Reservation.objects.filter(station=station)
        .select_related("evse", "transaction", "ocpi_session")
        .order_by("-created_at", "-id")[:limit]
    )


def stations_pending() -> QuerySet[ChargingStation]:
    return ChargingStation.objects.exclude(registration_status=RegistrationStatus.ACCEPTED).order_by("-created_at")
