"""Reads for the stations pages and onboarding: the list, a station's connectors with their running transaction,
its OCPP message log and what staff did to it; stations waiting to be accepted."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet

from cpo.dashboard.models import AuditLog
from cpo.models import EVSE, ChargingStation, EvseStatus, RegistrationStatus
from ocpp_gateway.models import (
    ConfigurationBaseline,
    DiagnosticsUpload,
    LocalAuthList,
    MessageLog,
    Reservation,
    StationVariable,
    Transaction,
)

FAULT_STATUSES = [EvseStatus.OUTOFORDER, EvseStatus.INOPERATIVE, EvseStatus.BLOCKED]
# What a station reports for itself as a whole (StatusNotification connector / EVSE 0) that staff must look at.
STATION_FAULT_STATUSES = ("Faulted", "Unavailable")


# Station list filters: what staff look for (value -> label).
STATION_STATUS_FILTERS = {
    "faulted": "faulted",
    "offline": "offline",
    "online": "online",
    "charging": "charging",
    "available": "with a connector available",
    "pending": "waiting to be accepted",
}
# Sort keys staff may choose (value -> label, columns); "-" in front reverses.
STATION_SORTS = {
    "identity": ("identity", ["identity"]),
    "location": ("location", ["location__name", "identity"]),
    "last_seen": ("last seen", ["last_seen", "identity"]),
    "charging": ("charging", ["evses_charging", "identity"]),
    "faulted": ("faulted", ["evses_faulted", "identity"]),
}


def station_list(
    *, search: str = "", online: str = "", status: str = "", sort: str = "identity"
) -> QuerySet[ChargingStation]:
    """Stations with their EVSE counts. `status` is one of STATION_STATUS_FILTERS ("faulted": a connector out of
    order, inoperative or blocked, or the station itself reporting a fault or an error code); `sort` one of
    STATION_SORTS, "-" for descending (unknown values sort by identity); last seen sorts never-seen stations last."""
    stations = ChargingStation.objects.select_related("location").annotate(
        evses_total=Count("evses"),
        evses_available=Count("evses", filter=Q(evses__status=EvseStatus.AVAILABLE)),
        evses_charging=Count("evses", filter=Q(evses__status=EvseStatus.CHARGING)),
        evses_faulted=Count("evses", filter=Q(evses__status__in=FAULT_STATUSES)),
    )
    if search:
        stations = stations.filter(
            Q(identity__icontains=search)
            | Q(location__name__icontains=search)
            | Q(location__city__icontains=search)
            | Q(vendor__icontains=search)
            | Q(model__icontains=search)
        )
    if online in ("1", "0"):
        stations = stations.filter(online=online == "1")
    if status == "faulted":
        stations = stations.filter(
            Q(evses_faulted__gt=0) | Q(ocpp_status__in=STATION_FAULT_STATUSES) | ~Q(ocpp_error_code="")
        )
    elif status in ("offline", "online"):
        stations = stations.filter(online=status == "online")
    elif status == "charging":
        stations = stations.filter(evses_charging__gt=0)
    elif status == "available":
        stations = stations.filter(online=True, evses_available__gt=0)
    elif status == "pending":
        stations = stations.exclude(registration_status=RegistrationStatus.ACCEPTED)
    descending = sort.startswith("-")
    _, columns = STATION_SORTS.get(sort.lstrip("-"), STATION_SORTS["identity"])
    order = [
        F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True) for column in columns[:1]
    ] + columns[1:]
    return stations.order_by(*order)


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


def station_message_log(
    *, station: ChargingStation, action: str = "", direction: str = "", heartbeats: bool = True, calls_only=False
) -> QuerySet[MessageLog]:
    """The station's frames, newest first. `heartbeats=False` leaves Heartbeat calls and their answers out (unless
    `action` asks for them); `calls_only` keeps the frames that start an exchange (CALLs, and frames that could not
    be read), for `message_exchanges` to pair with their answers."""
    log = MessageLog.objects.filter(station=station)
    if action:
        log = log.filter(action__iexact=action)
    elif not heartbeats:
        log = log.exclude(action="Heartbeat")
    if direction:
        log = log.filter(direction=direction)
    if calls_only:
        log = log.filter(Q(message_type=2) | Q(message_type__isnull=True))
    return log.order_by("-created_at", "-id")


@dataclass
class MessageExchange:
    """A CALL and the CALLRESULT or CALLERROR that answered it (None: no answer logged, yet or ever)."""

    call: MessageLog
    answer: MessageLog | None

    @property
    def round_trip_ms(self) -> int | None:
        if self.answer is None:
            return None
        return round((self.answer.created_at - self.call.created_at).total_seconds() * 1000)


# An answer logged this long after its CALL is not paired with it (unique ids repeat after a charger reboots).
EXCHANGE_MAX_SECONDS = 300


def message_exchanges(*, station: ChargingStation, calls: list[MessageLog]) -> list[MessageExchange]:
    """Pair each CALL with its answer: the first frame of the other direction with the same unique id, logged after
    it (one query for the page)."""
    ids = {c.unique_id for c in calls if c.message_type == 2 and c.unique_id}
    answers: dict[tuple[str, str], list[MessageLog]] = {}
    if ids:
        for answer in (
            MessageLog.objects.filter(station=station, unique_id__in=ids, message_type__in=(3, 4))
            .order_by("created_at", "id")
            .iterator()
        ):
            answers.setdefault((answer.direction, answer.unique_id), []).append(answer)
    exchanges = []
    for call in calls:
        other = "OUT" if call.direction == "IN" else "IN"
        candidates = answers.get((other, call.unique_id), []) if call.message_type == 2 else []
        match = next(
            (
                a
                for a in candidates
                if timedelta(0) <= a.created_at - call.created_at <= timedelta(seconds=EXCHANGE_MAX_SECONDS)
            ),
            None,
        )
        exchanges.append(MessageExchange(call, match))
    return exchanges


def station_audit_log(*, station: ChargingStation, limit: int = 20) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(station=station).order_by("-created_at", "-id")[:limit]


def station_local_list(*, station: ChargingStation) -> LocalAuthList | None:
    """The station's local authorization list as we keep it (None: never checked, e.g. not booted since)."""
    return LocalAuthList.objects.filter(station=station).first()


def station_diagnostics(*, station: ChargingStation, limit: int = 20) -> QuerySet[DiagnosticsUpload]:
    """The station's latest diagnostics and log requests, newest first."""
    return DiagnosticsUpload.objects.filter(station=station).order_by("-created_at", "-id")[:limit]


def station_reservations(*, station: ChargingStation, limit: int = 20) -> QuerySet[Reservation]:
    """The station's latest reservations with their OCPI session (RESERVATION, then ACTIVE or COMPLETED), if any."""
    return (
        Reservation.objects.filter(station=station)
        .select_related("evse", "transaction", "ocpi_session")
        .order_by("-created_at", "-id")[:limit]
    )


# The configuration section shows at most this many rows; the search narrows them down.
STATION_VARIABLES_SHOWN = 500


def station_variables(*, station: ChargingStation, search: str = "") -> QuerySet[StationVariable]:
    """The station's configuration as it reported it, optionally only rows whose component, variable (or 1.6 key),
    instance or value contain `search` (case-insensitive)."""
    variables = StationVariable.objects.filter(station=station)
    if search:
        variables = variables.filter(
            Q(component__icontains=search)
            | Q(component_instance__icontains=search)
            | Q(variable__icontains=search)
            | Q(variable_instance__icontains=search)
            | Q(value__icontains=search)
        )
    return variables


def station_variables_against_baseline(
    *, station: ChargingStation, variables: list[StationVariable]
) -> list[tuple[StationVariable, str | None]]:
    """Each variable with the value its model's baseline expects when the stored value differs (else None)."""
    baseline = dict(
        ConfigurationBaseline.objects.filter(vendor=station.vendor, model=station.model).values_list("name", "value")
    )
    return [(v, baseline[v.name] if v.name in baseline and baseline[v.name] != v.value else None) for v in variables]


def stations_pending() -> QuerySet[ChargingStation]:
    return ChargingStation.objects.exclude(registration_status=RegistrationStatus.ACCEPTED).order_by("-created_at")
