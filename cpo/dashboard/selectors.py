"""Reads for the dashboard pages. Every list is bounded (paginated or limited) so pages stay fast on a large
network; aggregates are computed in the database."""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import Tariff
from billing.pricing import MeterSample, PricedSession, SessionUsage, price_session
from cpo.models import EVSE, AuditLog, ChargingStation, EvseStatus, Location, RegistrationStatus
from ocpp_gateway.models import MessageLog, MeterValue, Transaction

ACTIVE_LIMIT = 50
FAULT_STATUSES = [EvseStatus.OUTOFORDER, EvseStatus.INOPERATIVE, EvseStatus.BLOCKED]
STATUS_ORDER = [s.value for s in EvseStatus]


def transactions_with_energy(queryset: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """Annotate energy delivered (stop or latest register minus start) in Wh and kWh, and power in kW, in SQL."""
    wh = DecimalField(max_digits=14, decimal_places=3)
    return queryset.annotate(
        energy_delivered_wh=ExpressionWrapper(
            Coalesce(F("meter_stop"), F("meter_last"), F("meter_start")) - F("meter_start"), output_field=wh
        ),
        energy_kwh=ExpressionWrapper(F("energy_delivered_wh") / Value(Decimal(1000)), output_field=wh),
        power_kw=ExpressionWrapper(F("power_last") / Value(Decimal(1000)), output_field=wh),
    )


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


def stations_pending() -> QuerySet[ChargingStation]:
    return ChargingStation.objects.exclude(registration_status=RegistrationStatus.ACCEPTED).order_by("-created_at")


def location_markers() -> list[dict]:
    """One marker per location: position, counts of EVSEs available / charging / other, for the map."""
    rows = Location.objects.annotate(
        evses_total=Count("evses", filter=Q(evses__station__isnull=False)),
        evses_available=Count("evses", filter=Q(evses__status=EvseStatus.AVAILABLE, evses__station__isnull=False)),
        evses_charging=Count("evses", filter=Q(evses__status=EvseStatus.CHARGING, evses__station__isnull=False)),
        evses_faulted=Count("evses", filter=Q(evses__status__in=FAULT_STATUSES, evses__station__isnull=False)),
    ).values("id", "name", "city", "latitude", "longitude", "evses_total", "evses_available", "evses_charging",
             "evses_faulted")
    return [{**row, "latitude": float(row["latitude"]), "longitude": float(row["longitude"])} for row in rows]


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
    evses = list(station.evses.prefetch_related("connectors").order_by("ocpp_evse_id"))
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


def session_list(
    *,
    status: str = "",
    location: Location | None = None,
    station: str = "",
    token: str = "",
    started_from=None,
    started_to=None,
) -> QuerySet[Transaction]:
    """Transactions, newest first, filtered; `started_to` is inclusive of that whole day (UTC)."""
    sessions = transactions_with_energy(Transaction.objects.select_related("station", "evse__location"))
    if status:
        sessions = sessions.filter(status=status)
    if location is not None:
        sessions = sessions.filter(station__location=location)
    if station:
        sessions = sessions.filter(station__identity__iexact=station)
    if token:
        sessions = sessions.filter(id_tag__iexact=token)
    if started_from:
        sessions = sessions.filter(started_at__gte=datetime.combine(started_from, time.min, tzinfo=UTC))
    if started_to:
        end = datetime.combine(started_to + timedelta(days=1), time.min, tzinfo=UTC)
        sessions = sessions.filter(started_at__lt=end)
    return sessions.order_by("-started_at", "-id")


ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
TO_BASE_UNIT = {"kWh": Decimal(1000), "Wh": Decimal(1), "kW": Decimal(1000), "W": Decimal(1), "": Decimal(1)}


def session_meter_series(*, transaction: Transaction) -> dict:
    """Power (kW) and energy delivered (kWh since start) over time, as [epoch ms, value] points for the chart.
    Only whole-connector samples (no phase), at the outlet or unspecified location."""
    samples = (
        MeterValue.objects.filter(transaction=transaction, measurand__in=[ENERGY, POWER], phase="",
                                  value__isnull=False)
        .exclude(location__in=["Inlet", "EV", "Cable", "Body"])
        .order_by("timestamp")
        .values_list("timestamp", "measurand", "value", "unit")
    )
    energy, power = [], []
    start = Decimal(transaction.meter_start)
    for timestamp, measurand, value, unit in samples:
        base = value * TO_BASE_UNIT.get(unit, Decimal(1))
        point_ms = int(timestamp.timestamp() * 1000)
        if measurand == ENERGY:
            energy.append([point_ms, float(round(max(base - start, Decimal(0)) / 1000, 3))])
        else:
            power.append([point_ms, float(round(base / 1000, 3))])
    # The transaction's own start and stop readings bound the energy curve.
    start_ms = int(transaction.started_at.timestamp() * 1000)
    if not energy or energy[0][0] > start_ms:
        energy.insert(0, [start_ms, 0.0])
    end_ms = int(transaction.ended_at.timestamp() * 1000) if transaction.ended_at else None
    if end_ms is not None and transaction.meter_stop is not None and energy[-1][0] < end_ms:
        energy.append([end_ms, float(round(max(transaction.meter_stop - start, Decimal(0)) / 1000, 3))])
    last_ms = max([p[0] for p in energy + power] + [end_ms or start_ms])
    return {"energy_kwh": energy, "power_kw": power, "start_ms": start_ms, "end_ms": max(last_ms, start_ms + 60_000)}


# --- Tariffs -------------------------------------------------------------------------------------------------------


def tariff_list() -> QuerySet[Tariff]:
    return Tariff.objects.order_by("country_code", "party_id", "id")


def price_text(value) -> str:
    """A price as staff read it: at least two decimals (1.0 -> 1.00), more only when it has them (0.1234)."""
    value = Decimal(str(value))
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():f}"


def tariff_components_summary(*, tariff: Tariff) -> list[str]:
    """One line per price component, e.g. "ENERGY 0.35 +21% VAT · start_time 07:00, end_time 23:00", in element
    order."""
    lines = []
    for element in tariff.elements or []:
        restrictions = element.get("restrictions") or {}
        when = ", ".join(f"{key} {value}" for key, value in restrictions.items())
        for component in element.get("price_components", []):
            vat = f" +{Decimal(str(component['vat'])).normalize():f}% VAT" if component.get("vat") is not None else ""
            step = f" (step {component.get('step_size')})" if component.get("step_size", 1) != 1 else ""
            lines.append(f"{component.get('type')} {price_text(component.get('price'))}{vat}{step}" + (f" · {when}" if when else ""))
    return lines


def tariff_price_preview(*, tariff: Tariff | dict, kwh: Decimal, minutes: int, start: datetime, time_zone: str,
                         parking_minutes: int = 0) -> PricedSession:
    """Price a sample session with the pricing engine: `kwh` charged at a constant rate from `start` (wall-clock
    time in `time_zone`) for `minutes - parking_minutes`, then parked until the end. Raises ValidationError for a
    tariff the engine cannot use."""
    zone = ZoneInfo(time_zone)
    start_at = start.replace(tzinfo=zone).astimezone(UTC)  # UTC arithmetic: a DST change is not an hour lost
    end_at = start_at + timedelta(minutes=minutes)
    charging_end = end_at - timedelta(minutes=parking_minutes) if parking_minutes else None
    samples = [MeterSample(timestamp=start_at, energy_kwh=Decimal(0))]
    if (charging_end or end_at) > start_at:
        samples.append(MeterSample(timestamp=charging_end or end_at, energy_kwh=Decimal(kwh)))
    usage = SessionUsage(start_date_time=start_at, end_date_time=end_at, time_zone=time_zone, samples=samples,
                         charging_end_date_time=charging_end)
    return price_session(tariff=tariff, usage=usage)

