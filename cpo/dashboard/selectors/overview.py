"""Reads for the overview page: the network's counts, sessions running now, EVSEs needing attention, the map."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from cpo.dashboard.selectors.sessions import transactions_with_energy
from cpo.dashboard.selectors.stations import FAULT_STATUSES, STATION_FAULT_STATUSES
from cpo.models import EVSE, ChargingStation, EvseStatus, RegistrationStatus
from ocpp_gateway.models import Transaction

ACTIVE_LIMIT = 50
STATUS_ORDER = [s.value for s in EvseStatus]


@dataclass(frozen=True)
class NetworkSummary:
    stations_total: int
    stations_online: int
    stations_pending: int
    connectors_by_status: list[tuple[str, int]]
    active_count: int
    energy_today_kwh: Decimal

    @property
    def stations_offline(self) -> int:
        return self.stations_total - self.stations_online


def network_summary() -> NetworkSummary:
    stations = ChargingStation.objects.aggregate(
        total=Count("id"),
        online=Count("id", filter=Q(online=True)),
        pending=Count("id", filter=~Q(registration_status=RegistrationStatus.ACCEPTED)),
    )
    counts = dict(EVSE.objects.values_list("status").annotate(n=Count("id")).order_by())
    by_status = [(status, counts[status]) for status in STATUS_ORDER if counts.get(status)]
    start_of_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    today = transactions_with_energy(Transaction.objects.filter(started_at__gte=start_of_day)).aggregate(
        wh=Sum("energy_delivered_wh")
    )["wh"] or Decimal(0)
    return NetworkSummary(
        stations_total=stations["total"],
        stations_online=stations["online"],
        stations_pending=stations["pending"],
        connectors_by_status=by_status,
        active_count=Transaction.objects.filter(status=Transaction.Status.ACTIVE).count(),
        energy_today_kwh=(Decimal(today) / 1000).quantize(Decimal("0.001")),
    )


def transactions_active(*, limit: int = ACTIVE_LIMIT) -> QuerySet[Transaction]:
    return (
        transactions_with_energy(Transaction.objects.filter(status=Transaction.Status.ACTIVE))
        .select_related("station", "evse")
        .order_by("-started_at")[:limit]
    )


def evses_needing_attention(*, limit: int = 50) -> QuerySet[EVSE]:
    """Faulted, inoperative or blocked EVSEs, and any reporting an error code, on stations we still manage."""
    return (
        EVSE.objects.filter(Q(status__in=FAULT_STATUSES) | ~Q(ocpp_error_code=""), station__isnull=False)
        .select_related("station", "location")
        .order_by("-status_updated")[:limit]
    )


def stations_needing_attention(*, limit: int = 20) -> QuerySet[ChargingStation]:
    """Stations that report themselves as a whole faulted or unavailable, or with an error code (e.g. Faulted /
    PowerMeterFailure), newest report first."""
    return (
        ChargingStation.objects.filter(Q(ocpp_status__in=STATION_FAULT_STATUSES) | ~Q(ocpp_error_code=""))
        .select_related("location")
        .order_by("-status_updated")[:limit]
    )


def stations_clock_skewed(*, limit: int = 20) -> QuerySet[ChargingStation]:
    """Stations whose clock we did not believe lately (ocpp_gateway.services.clock), newest first."""
    since = timezone.now() - timedelta(hours=settings.OCPP_CLOCK_WARNING_HOURS)
    return ChargingStation.objects.filter(clock_skew_at__gte=since).order_by("-clock_skew_at")[:limit]


def evses_unregistered(*, limit: int = 20) -> QuerySet[EVSE]:
    """EVSEs a charger reported that staff never registered: not published to partners until staff register them."""
    return (
        EVSE.objects.filter(registered=False, station__isnull=False)
        .select_related("station", "location")
        .order_by("-pk")[:limit]
    )


def evses_without_tariff(*, limit: int = 20) -> QuerySet[EVSE]:
    """EVSEs with a connector that has no tariff of its own at a location without a default one: charging there
    costs nothing."""
    return (
        EVSE.objects.filter(station__isnull=False, location__default_tariff_id="", connectors__tariff_ids=[])
        .select_related("station", "location")
        .distinct()
        .order_by("station__identity", "ocpp_evse_id")[:limit]
    )


def station_markers() -> list[dict]:
    """One marker per station (at its location's position; the map clusters stations of one site and spreads them
    when zoomed in, so a charging station is never hidden behind an idle one): counts of its EVSEs available /
    charging / faulted, for the colour."""
    rows = (
        ChargingStation.objects.filter(evses__location__isnull=False)
        .annotate(
            evses_total=Count("evses"),
            evses_available=Count("evses", filter=Q(evses__status=EvseStatus.AVAILABLE)),
            evses_charging=Count("evses", filter=Q(evses__status=EvseStatus.CHARGING)),
            evses_faulted=Count("evses", filter=Q(evses__status__in=FAULT_STATUSES)),
            latitude=Max("evses__location__latitude"),
            longitude=Max("evses__location__longitude"),
            location_name=Max("evses__location__name"),
            city=Max("evses__location__city"),
        )
        .order_by("identity")
        .values(
            "identity",
            "online",
            "location_name",
            "city",
            "latitude",
            "longitude",
            "evses_total",
            "evses_available",
            "evses_charging",
            "evses_faulted",
        )
    )
    return [{**row, "latitude": float(row["latitude"]), "longitude": float(row["longitude"])} for row in rows]
