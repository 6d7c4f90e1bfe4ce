"""Reads for the dashboard pages. Every list is bounded (paginated or limited) so pages stay fast on a large
network; aggregates are computed in the database."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import (
    CharField,
    Count,
    DecimalField,
    DurationField,
    Exists,
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
from django.db import connection
from django.db.models.functions import (
    Coalesce,
    Concat,
    ExtractHour,
    ExtractIsoWeekDay,
    Greatest,
    Least,
    TruncDay,
    TruncWeek,
)
from django.utils import timezone

from billing.models import Cdr, Tariff
from billing.models import Session as BillingSession
from billing.pricing import MeterSample, PricedSession, SessionUsage, price_session
from cpo.dashboard.models import AnalyticsDay, AnalyticsHour, AnalyticsLocationDay, AnalyticsPartnerDay, AuditLog
from cpo.models import EVSE, ChargingStation, EvseStatus, Location, RegistrationStatus
from ocpi_api.models import OutboxMessage, OutboxStatus, Partner, PartnerToken
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
    partner: Partner | None = None,
) -> QuerySet[Transaction]:
    """Transactions, newest first, filtered; `started_to` is inclusive of that whole day (UTC)."""
    sessions = transactions_with_energy(
        Transaction.objects.select_related("station", "evse__location", "ocpi_session")
    )
    if partner is not None:
        sessions = sessions.filter(_party_q(partner, "token_"))
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


def session_ids(**filters) -> QuerySet:
    """The ids of `session_list(**filters)`, for paging: sorting ids alone is far cheaper than sorting the joined
    rows; `sessions_by_ids` then reads one page of them in full."""
    return session_list(**filters).values_list("pk", flat=True)


def sessions_by_ids(*, ids: list[int]) -> list[Transaction]:
    rows = {tx.pk: tx for tx in session_list().filter(pk__in=ids)}
    return [rows[pk] for pk in ids if pk in rows]


def session_billing(*, transaction: Transaction) -> dict:
    """The OCPI Session billing keeps for a transaction, its CDR (and credits) when there is one, and the cost lines
    to show: the CDR's per dimension once written, else the running total only."""
    session = BillingSession.objects.filter(transaction=transaction).first()
    if session is None:
        return {"billing_session": None, "cdr": None, "costs": []}
    cdr = Cdr.objects.filter(session=session, credit=False).first()
    return {"billing_session": session, "cdr": cdr, "costs": cost_breakdown(cdr) if cdr else []}


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


# --- Partners ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxState:
    """A partner's pushes: waiting (`pending`, of which `retrying` failed at least once), given up (`failed`),
    and when the last one was delivered."""

    pending: int = 0
    retrying: int = 0
    failed: int = 0
    sent: int = 0
    last_sent_at: datetime | None = None


@dataclass(frozen=True)
class PartnerRow:
    partner: Partner
    tokens: int
    outbox: OutboxState

    @property
    def modules(self) -> list[str]:
        return sorted({f"{e.get('identifier')}" for e in self.partner.endpoints or []})


def partner_outbox_states(*, partner_ids: list[int] | None = None) -> dict[int, OutboxState]:
    """Outbox counts per partner, from one grouped query."""
    rows = OutboxMessage.objects.order_by()
    if partner_ids is not None:
        rows = rows.filter(partner_id__in=partner_ids)
    rows = rows.values("partner_id").annotate(
        pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
        retrying=Count("id", filter=Q(status=OutboxStatus.PENDING, attempts__gt=0)),
        failed=Count("id", filter=Q(status=OutboxStatus.FAILED)),
        sent=Count("id", filter=Q(status=OutboxStatus.SENT)),
        last_sent_at=Max("sent_at"),
    )
    return {row.pop("partner_id"): OutboxState(**row) for row in rows}


def partner_list() -> list[PartnerRow]:
    """Every partner with its token count and outbox state: three queries whatever the number of partners."""
    token_counts = (
        PartnerToken.objects.filter(partner=OuterRef("pk")).order_by().values("partner").annotate(n=Count("id"))
        .values("n")
    )
    partners = list(Partner.objects.annotate(tokens_count=Coalesce(Subquery(token_counts), 0))
                    .order_by("status", "country_code", "party_id", "id"))
    outbox = partner_outbox_states(partner_ids=[p.pk for p in partners])
    return [PartnerRow(p, p.tokens_count, outbox.get(p.pk, OutboxState())) for p in partners]


def partner_tokens(*, partner: Partner, search: str = "") -> QuerySet[PartnerToken]:
    tokens = PartnerToken.objects.filter(partner=partner)
    if search:
        tokens = tokens.filter(Q(uid__icontains=search) | Q(contract_id__icontains=search)
                               | Q(visual_number__icontains=search))
    return tokens.order_by("-last_updated", "uid")


def partner_outbox_problems(*, partner: Partner, limit: int = 50) -> QuerySet[OutboxMessage]:
    """Pushes that failed at least once and are not delivered: still retrying, or given up."""
    return (
        OutboxMessage.objects.filter(partner=partner, attempts__gt=0)
        .filter(Q(status=OutboxStatus.PENDING) | Q(status=OutboxStatus.FAILED))
        .order_by("-id")[:limit]
    )


# --- CDRs ----------------------------------------------------------------------------------------------------------

CDRS_MODULE = "cdrs"


class PushState:
    """Where a CDR's POST to its EMSP stands, from its outbox message."""

    DELIVERED = "delivered"
    PENDING = "pending"
    RETRYING = "retrying"
    FAILED = "failed"
    NOT_SENT = "not sent"  # our own token, or the EMSP has no cdrs Receiver: nobody to send it to

    CHOICES = [(DELIVERED, "delivered"), (PENDING, "pending"), (FAILED, "failed"), (NOT_SENT, "not sent")]


@dataclass(frozen=True)
class CdrPush:
    state: str
    message: OutboxMessage | None = None

    @property
    def error(self) -> str:
        if self.message is None or self.state == PushState.DELIVERED:
            return ""
        parts = [str(v) for v in (self.message.last_http_status, self.message.last_status_code) if v]
        return " ".join(parts + [self.message.last_error]).strip()


def cdr_object_key(*, cdr: Cdr) -> str:
    """The outbox key ocpi_api uses for a CDR's POST (`ocpi_api.push.cdr_announce`)."""
    return f"{CDRS_MODULE}:{cdr.country_code}:{cdr.party_id}:{cdr.id}"


def push_state_of(message: OutboxMessage | None) -> CdrPush:
    if message is None:
        return CdrPush(PushState.NOT_SENT)
    if message.status == OutboxStatus.SENT:
        return CdrPush(PushState.DELIVERED, message)
    if message.status == OutboxStatus.FAILED:
        return CdrPush(PushState.FAILED, message)
    return CdrPush(PushState.RETRYING if message.attempts else PushState.PENDING, message)


def cdr_pushes(*, cdrs: list[Cdr]) -> dict[str, CdrPush]:
    """Push state per CDR id, for a page of CDRs: one query on the outbox (partner, object_key) index."""
    keys = {cdr_object_key(cdr=cdr): cdr.id for cdr in cdrs}
    messages = (
        OutboxMessage.objects.filter(partner_id__in=Partner.objects.values("pk"), object_key__in=list(keys),
                                     method="POST")
        .exclude(status=OutboxStatus.SUPERSEDED)
        .order_by("id")
    )
    latest = {message.object_key: message for message in messages}
    return {cdr_id: push_state_of(latest.get(key)) for key, cdr_id in keys.items()}


def _party_q(partner: Partner, prefix: str) -> Q:
    condition = Q(pk__in=[])
    for country_code, party_id in sorted(partner.party_ids()):
        condition |= Q(**{f"{prefix}country_code": country_code, f"{prefix}party_id": party_id})
    return condition


def _cdr_push_messages(state: str = "") -> QuerySet[OutboxMessage]:
    """The outbox POSTs of the CDR in the outer query (see `cdr_list`), in `state` (any when empty)."""
    messages = OutboxMessage.objects.filter(
        partner_id__in=Partner.objects.values("pk"), object_key=OuterRef("push_key"), method="POST"
    ).exclude(status=OutboxStatus.SUPERSEDED)
    if state == PushState.DELIVERED:
        messages = messages.filter(status=OutboxStatus.SENT)
    elif state == PushState.FAILED:
        messages = messages.filter(status=OutboxStatus.FAILED)
    elif state == PushState.PENDING:
        messages = messages.filter(status=OutboxStatus.PENDING)
    return messages


def _cdr_push_messages_in(state: str) -> QuerySet[OutboxMessage]:
    status = OutboxStatus.FAILED if state == PushState.FAILED else OutboxStatus.PENDING
    return OutboxMessage.objects.filter(status=status, module=CDRS_MODULE, method="POST")


def cdr_list(*, partner: Partner | None = None, location: Location | None = None, issued_from=None,
             issued_to=None, push_state: str = "") -> QuerySet[Cdr]:
    """CDRs newest first. The period is when the CDR was written (`last_updated` of an immutable CDR), the same
    as billing's settlement, so an export of a month adds up to the month's settlement; `issued_to` includes
    that whole day (UTC)."""
    cdrs = Cdr.objects.all()
    if partner is not None:
        cdrs = cdrs.filter(_party_q(partner, "emsp_"))
    if location is not None:
        # Through the station's foreign keys (indexed all the way), not the session's location_id text column.
        cdrs = cdrs.filter(session__transaction__station__location=location)
    if issued_from:
        cdrs = cdrs.filter(last_updated__gte=datetime.combine(issued_from, time.min, tzinfo=UTC))
    if issued_to:
        cdrs = cdrs.filter(last_updated__lt=datetime.combine(issued_to + timedelta(days=1), time.min, tzinfo=UTC))
    if push_state in (PushState.FAILED, PushState.PENDING):
        # Few messages are failed or waiting: read their keys from the outbox (status index), then CDRs by id.
        keys = _cdr_push_messages_in(push_state).values_list("object_key", flat=True)
        cdrs = cdrs.filter(pk__in=[key.split(":", 3)[-1] for key in keys])
    elif push_state:
        cdrs = cdrs.annotate(push_key=Concat(Value(f"{CDRS_MODULE}:"), "country_code", Value(":"), "party_id",
                                             Value(":"), "id", output_field=CharField()))
        if push_state == PushState.NOT_SENT:
            cdrs = cdrs.exclude(Exists(_cdr_push_messages()))
        else:
            cdrs = cdrs.filter(Exists(_cdr_push_messages(push_state)))
    return cdrs.order_by("-last_updated", "-id")


@dataclass(frozen=True)
class CostLine:
    label: str
    quantity: str
    excl_vat: Decimal | None
    incl_vat: Decimal | None


def cost_breakdown(record) -> list[CostLine]:
    """The cost dimensions of a CDR (or anything with the same `total_*` fields), as lines for a table."""
    parking = record.total_parking_time
    return [
        CostLine("Fixed", "", record.total_fixed_cost_excl_vat, record.total_fixed_cost_incl_vat),
        CostLine("Energy", f"{record.total_energy.normalize():f} kWh", record.total_energy_cost_excl_vat,
                 record.total_energy_cost_incl_vat),
        CostLine("Time", f"{record.total_time.normalize():f} h", record.total_time_cost_excl_vat,
                 record.total_time_cost_incl_vat),
        CostLine("Parking", f"{parking.normalize():f} h" if parking is not None else "",
                 record.total_parking_cost_excl_vat, record.total_parking_cost_incl_vat),
        CostLine("Reservation", "", record.total_reservation_cost_excl_vat, record.total_reservation_cost_incl_vat),
    ]


def cdr_push_history(*, cdr: Cdr) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(partner_id__in=Partner.objects.values("pk"), object_key=cdr_object_key(cdr=cdr))
        .select_related("partner").prefetch_related("attempt_log").order_by("id")
    )


CDR_CSV_COLUMNS = (
    "id", "session_id", "credit", "credit_reference_id", "issued", "start_date_time", "end_date_time",
    "emsp_country_code", "emsp_party_id", "token_uid", "contract_id", "location_id", "evse_uid", "connector_id",
    "currency", "total_energy_kwh", "total_time_h", "total_parking_time_h", "fixed_cost_excl_vat",
    "energy_cost_excl_vat", "time_cost_excl_vat", "parking_cost_excl_vat", "reservation_cost_excl_vat",
    "total_cost_excl_vat", "total_cost_incl_vat", "push_state", "push_error",
)
CSV_BATCH = 2000


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CSV_FIELDS = (
    "id", "country_code", "party_id", "session_id", "credit", "credit_reference_id", "last_updated",
    "start_date_time", "end_date_time", "emsp_country_code", "emsp_party_id", "cdr_token__uid",
    "cdr_token__contract_id", "cdr_location__id", "cdr_location__evse_uid", "cdr_location__connector_id", "currency",
    "total_energy", "total_time", "total_parking_time", "total_fixed_cost_excl_vat", "total_energy_cost_excl_vat",
    "total_time_cost_excl_vat", "total_parking_cost_excl_vat", "total_reservation_cost_excl_vat",
    "total_cost_excl_vat", "total_cost_incl_vat",
)


def cdr_csv_rows(*, cdrs: QuerySet[Cdr]):
    """The header, then one row per CDR (money and quantities exactly as stored), read in batches so an export of
    a year never holds all rows in memory. Only the columns of the CSV are read; the token and location fields
    are taken out of their JSON by the database."""
    yield CDR_CSV_COLUMNS
    batch: list[dict] = []
    for row in cdrs.values(*CSV_FIELDS).iterator(chunk_size=CSV_BATCH):
        batch.append(row)
        if len(batch) == CSV_BATCH:
            yield from _cdr_rows(batch)
            batch = []
    yield from _cdr_rows(batch)


def _cdr_rows(batch: list[dict]):
    if not batch:
        return
    keys = {f"{CDRS_MODULE}:{row['country_code']}:{row['party_id']}:{row['id']}": row["id"] for row in batch}
    messages = (
        OutboxMessage.objects.filter(partner_id__in=Partner.objects.values("pk"), object_key__in=list(keys),
                                     method="POST")
        .exclude(status=OutboxStatus.SUPERSEDED)
        .only("object_key", "status", "attempts", "last_http_status", "last_status_code", "last_error")
        .order_by("id")
    )
    latest = {message.object_key: message for message in messages}
    pushes = {cdr_id: push_state_of(latest.get(key)) for key, cdr_id in keys.items()}
    for row in batch:
        push = pushes[row["id"]]
        yield [_csv_value(row[name]) for name in CSV_FIELDS if name not in ("country_code", "party_id")] + [
            push.state, push.error]


# --- Analytics -----------------------------------------------------------------------------------------------------
# Every figure is aggregated by the database (GROUP BY over an indexed period); Python only shapes the few rows
# that come back (a row per day, location, partner or hour of the week).


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from whole days."""

    start: datetime
    end: datetime

    @classmethod
    def of_days(cls, first, last) -> "Period":
        return cls(datetime.combine(first, time.min, tzinfo=UTC),
                   datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC))

    @property
    def hours(self) -> Decimal:
        return Decimal((self.end - self.start).total_seconds()) / 3600


def session_energy_wh():
    return ExpressionWrapper(Coalesce(F("meter_stop"), F("meter_last"), F("meter_start")) - F("meter_start"),
                             output_field=DecimalField(max_digits=14, decimal_places=3))


def _kwh(wh) -> Decimal:
    return (Decimal(wh or 0) / 1000).quantize(Decimal("0.001"))


# Closed UTC days that have roll-ups (cpo.dashboard.services.analytics_rebuild) are read from them; every other day
# (today, days not built yet) is computed live from the sessions (`split`: pass one to share it between tables). Each figure is a sum over days, so the two parts
# add up to what a live query over the whole period gives (tests/dashboard/test_analytics_rollups.py).


@dataclass(frozen=True)
class Split:
    built: list[tuple[date, date]]  # runs of days [first, last] read from roll-ups
    live: list[Period]  # the rest, computed from sessions

    def q(self, field: str, *, hours: bool = False) -> Q:
        q = Q(pk__in=[])
        for first, last in self.built:
            if hours:
                run = Period.of_days(first, last)
                q |= Q(**{f"{field}__gte": run.start, f"{field}__lt": run.end})
            else:
                q |= Q(**{f"{field}__gte": first, f"{field}__lte": last})
        return q


def _whole_hour_offsets(period: Period, zone: ZoneInfo) -> bool:
    """Hourly roll-ups (UTC hours) regroup exactly into local days and hours only if the zone's offset is whole hours
    throughout the period (checked at each day's start: offsets change at most at a transition inside a day)."""
    moment = period.start
    while moment <= period.end:
        offset = moment.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        moment += timedelta(days=1)
    return True


def analytics_split(*, period: Period) -> Split:
    """Which days of the period come from roll-ups and which live. Roll-ups need PostgreSQL (busy time is computed by
    a window query there); elsewhere everything is live."""
    if connection.vendor != "postgresql":
        return Split([], [period])
    first, last = period.start.date(), (period.end - timedelta(days=1)).date()
    built = set(AnalyticsDay.objects.filter(day__gte=first, day__lte=last).values_list("day", flat=True))
    runs: list[list[date]] = []
    live: list[list[date]] = []
    day = first
    while day <= last:
        target = runs if day in built else live
        if target and target[-1][1] == day - timedelta(days=1):
            target[-1][1] = day
        else:
            target.append([day, day])
        day += timedelta(days=1)
    return Split([(a, b) for a, b in runs], [Period.of_days(a, b) for a, b in live])


def _merge(into: dict, key, **values) -> None:
    """Add values into `into[key]` as SQL SUM would: None only while every part is None."""
    row = into.setdefault(key, {})
    for name, value in values.items():
        if value is not None:
            row[name] = (row.get(name) or 0) + value
        else:
            row.setdefault(name, None)


def _seconds(value) -> Decimal:
    """An interval (timedelta) or a number of seconds, exactly, as a Decimal."""
    if value is None:
        return Decimal(0)
    if isinstance(value, timedelta):
        return Decimal(value.days * 86400 + value.seconds) + Decimal(value.microseconds) / 1_000_000
    return Decimal(value)


def energy_per_bucket(*, period: Period, bucket: str = "day", time_zone: str = "UTC", split: Split | None = None) -> list[dict]:
    """Sessions started and energy they delivered per day or ISO week (in `time_zone`), oldest first."""
    zone = ZoneInfo(time_zone)
    trunc = TruncWeek if bucket == "week" else TruncDay
    split = split or analytics_split(period=period)
    if split.built and not _whole_hour_offsets(period, zone):
        split = Split([], [period])
    buckets: dict = {}
    for part in split.live:
        for row in (Transaction.objects.filter(started_at__gte=part.start, started_at__lt=part.end)
                    .annotate(bucket=trunc("started_at", tzinfo=zone)).order_by().values("bucket")
                    .annotate(sessions=Count("id"), wh=Sum(session_energy_wh()))):
            _merge(buckets, row["bucket"].date(), sessions=row["sessions"], wh=row["wh"])
    if split.built:
        for row in (AnalyticsHour.objects.filter(split.q("hour", hours=True), sessions__gt=0)
                    .annotate(bucket=trunc("hour", tzinfo=zone)).order_by().values("bucket")
                    .annotate(sessions=Sum("sessions"), wh=Sum("energy_wh"))):
            _merge(buckets, row["bucket"].date(), sessions=row["sessions"], wh=row["wh"])
    return [{"bucket": key, "sessions": row["sessions"], "kwh": _kwh(row["wh"])} for key, row in sorted(buckets.items())]


def _overlap_seconds(period: Period):
    """The part of each transaction inside the period (a running one counts until now), as an interval."""
    now = timezone.now()
    return ExpressionWrapper(
        Least(Coalesce(F("ended_at"), Value(now)), Value(period.end))
        - Greatest(F("started_at"), Value(period.start)),
        output_field=DurationField(),
    )


def _overlapping(period: Period) -> QuerySet[Transaction]:
    return Transaction.objects.filter(started_at__lt=period.end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=period.start)
    )


def location_stats(*, period: Period) -> dict:
    """Live, per location id: EVSE-seconds in use inside the period, sessions started in it and their energy (Wh)."""
    started = Q(started_at__gte=period.start)
    return {
        row["station__location_id"]: {"busy": _seconds(row["busy"]), "sessions": row["sessions"], "wh": row["wh"]}
        for row in _overlapping(period).order_by().values("station__location_id").annotate(
            busy=Sum(_overlap_seconds(period)), sessions=Count("id", filter=started),
            wh=Sum(session_energy_wh(), filter=started),
        )
    }


def utilisation_per_location(*, period: Period, split: Split | None = None) -> list[dict]:
    """Per location: EVSEs, sessions, energy, hours in use and the share of EVSE-hours in use over the period,
    busiest first."""
    split = split or analytics_split(period=period)
    stats: dict = {}
    for part in split.live:
        for location_id, row in location_stats(period=part).items():
            _merge(stats, location_id, **row)
    if split.built:
        for row in (AnalyticsLocationDay.objects.filter(split.q("day")).order_by().values("location_id")
                    .annotate(busy=Sum("busy_seconds"), sessions=Sum("sessions"), wh=Sum("energy_wh"))):
            _merge(stats, row["location_id"], busy=row["busy"], sessions=row["sessions"], wh=row["wh"])
    rows = []
    for location in Location.objects.annotate(
        evses_count=Count("evses", filter=Q(evses__station__isnull=False))
    ).filter(evses_count__gt=0).values("id", "name", "city", "evses_count"):
        row = stats.get(location["id"], {})
        hours = (row.get("busy") or Decimal(0)) / 3600
        capacity = location["evses_count"] * period.hours
        rows.append({
            "location_id": location["id"], "name": location["name"], "city": location["city"],
            "evses": location["evses_count"], "sessions": row.get("sessions", 0), "kwh": _kwh(row.get("wh")),
            "hours_in_use": hours.quantize(Decimal("0.1")),
            "utilisation_pct": (100 * hours / capacity).quantize(Decimal("0.1")) if capacity else Decimal(0),
        })
    rows.sort(key=lambda row: (-row["utilisation_pct"], row["location_id"]))
    return rows


WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# EVSE-seconds in use per local (weekday, hour) or per UTC hour, by a sweep over the period: +1 at each session start,
# -1 at its end, 0 at every hour boundary; the running sum is the number of sessions in progress, constant up to the
# next event, so each step (which never crosses an hour) adds sessions x its length to the hour it starts in. Rows
# scanned: two per session in the period plus one per hour, whatever the sessions' lengths (a charger that never
# closed its transaction costs two rows, not one per hour it stayed open).
OCCUPANCY_SQL = """
WITH inside AS (
    SELECT GREATEST(t.started_at, %(start)s) AS s, LEAST(COALESCE(t.ended_at, %(now)s), %(end)s) AS e
    FROM {table} t
    WHERE t.started_at < %(end)s AND (t.ended_at IS NULL OR t.ended_at > %(start)s)
), events AS (
    SELECT s AS at, 1 AS delta FROM inside WHERE e > s
    UNION ALL SELECT e, -1 FROM inside WHERE e > s
    UNION ALL SELECT h, 0 FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 hour') h
), steps AS (
    SELECT at, SUM(delta) OVER w AS busy, LEAD(at) OVER w AS next_at
    FROM events WINDOW w AS (ORDER BY at, delta DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT {groups}, SUM(busy * EXTRACT(EPOCH FROM next_at - at)) AS seconds
FROM steps
WHERE next_at > at
GROUP BY {group_by}
"""
HOUR_OF_WEEK_GROUPS = ("EXTRACT(ISODOW FROM at AT TIME ZONE %(tz)s)::int AS dow, "
                       "EXTRACT(HOUR FROM at AT TIME ZONE %(tz)s)::int AS hour", "1, 2")
UTC_HOUR_GROUPS = ("date_trunc('hour', at AT TIME ZONE 'UTC') AS hour", "1")


def occupancy_seconds(*, period: Period, groups: tuple[str, str], time_zone: str = "UTC") -> list[tuple]:
    """PostgreSQL only: rows of (group..., EVSE-seconds in use) over the period, by OCCUPANCY_SQL."""
    sql = OCCUPANCY_SQL.format(table=connection.ops.quote_name(Transaction._meta.db_table), groups=groups[0],
                               group_by=groups[1])
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tz": time_zone, "start": period.start, "end": period.end, "now": timezone.now()})
        return cursor.fetchall()


def _hour_occurrences(period: Period, zone: ZoneInfo) -> dict[tuple[int, int], int]:
    """How many times each (ISO weekday, hour) occurs in the period, in local time (at most 24 x days steps)."""
    counts: dict[tuple[int, int], int] = {}
    moment = period.start
    while moment < period.end:
        local = moment.astimezone(zone)
        key = (local.isoweekday(), local.hour)
        counts[key] = counts.get(key, 0) + 1
        moment += timedelta(hours=1)
    return counts


def hour_of_week(*, period: Period, time_zone: str, split: Split | None = None) -> list[dict]:
    """168 rows (Monday 00 to Sunday 23, local time): sessions started, energy they delivered and, on PostgreSQL,
    the share of all EVSEs in use in that hour on average over the period (peak hours)."""
    zone = ZoneInfo(time_zone)
    split = split or analytics_split(period=period)
    if split.built and not _whole_hour_offsets(period, zone):
        split = Split([], [period])
    starts: dict = {}
    busy_sum: dict = {}
    for part in split.live:
        for row in (Transaction.objects.filter(started_at__gte=part.start, started_at__lt=part.end)
                    .annotate(dow=ExtractIsoWeekDay("started_at", tzinfo=zone),
                              hour=ExtractHour("started_at", tzinfo=zone))
                    .order_by().values("dow", "hour").annotate(sessions=Count("id"), wh=Sum(session_energy_wh()))):
            _merge(starts, (row["dow"], row["hour"]), sessions=row["sessions"], wh=row["wh"])
        if connection.vendor == "postgresql":
            for dow, hour, seconds in occupancy_seconds(period=part, groups=HOUR_OF_WEEK_GROUPS, time_zone=time_zone):
                _merge(busy_sum, (dow, hour), seconds=Decimal(seconds or 0))
    if split.built:
        for row in (AnalyticsHour.objects.filter(split.q("hour", hours=True))
                    .annotate(dow=ExtractIsoWeekDay("hour", tzinfo=zone), hour_of_day=ExtractHour("hour", tzinfo=zone))
                    .order_by().values("dow", "hour_of_day")
                    .annotate(sessions=Sum("sessions"), wh=Sum("energy_wh"), seconds=Sum("busy_seconds"))):
            key = (row["dow"], row["hour_of_day"])
            if row["sessions"]:
                _merge(starts, key, sessions=row["sessions"], wh=row["wh"])
            _merge(busy_sum, key, seconds=row["seconds"])
    busy: dict[tuple[int, int], float] | None = None
    if connection.vendor == "postgresql":
        busy = {key: float(row["seconds"] or 0) for key, row in busy_sum.items()}
    evses = EVSE.objects.filter(station__isnull=False).count()
    occurrences = _hour_occurrences(period, zone)
    rows = []
    for dow in range(1, 8):
        for hour in range(24):
            stats = starts.get((dow, hour), {})
            share = None
            if busy is not None and evses and occurrences.get((dow, hour)):
                share = Decimal(100 * busy.get((dow, hour), 0) / 3600 / (evses * occurrences[(dow, hour)]))
                share = share.quantize(Decimal("0.1"))
            rows.append({"weekday": WEEKDAY_NAMES[dow - 1], "hour": hour, "sessions_started": stats.get("sessions", 0),
                         "kwh": _kwh(stats.get("wh")), "in_use_pct": share})
    return rows


def revenue_stats(*, period: Period) -> QuerySet:
    """Live: CDRs whose last update falls in the period per EMSP party and currency."""
    return (
        Cdr.objects.filter(last_updated__gte=period.start, last_updated__lt=period.end).order_by()
        .values("emsp_country_code", "emsp_party_id", "currency")
        .annotate(cdrs=Count("id", filter=Q(credit=False)), credits=Count("id", filter=Q(credit=True)),
                  kwh=Sum("total_energy", filter=Q(credit=False)), excl_vat=Sum("total_cost_excl_vat"),
                  incl_vat=Sum("total_cost_incl_vat"))
    )


def revenue_per_partner(*, period: Period, split: Split | None = None) -> list[dict]:
    """CDRs issued in the period per EMSP and currency (credits net out): count, energy, revenue excl./incl. VAT,
    largest first. Our own tokens' CDRs are the row with an empty party."""
    names = {}
    for partner in Partner.objects.all():
        for party in partner.party_ids():
            names.setdefault(party, partner.name)
    split = split or analytics_split(period=period)
    groups: dict = {}
    for part in split.live:
        for row in revenue_stats(period=part):
            _merge(groups, (row["emsp_country_code"], row["emsp_party_id"], row["currency"]), cdrs=row["cdrs"],
                   credits=row["credits"], kwh=row["kwh"], excl_vat=row["excl_vat"], incl_vat=row["incl_vat"])
    if split.built:
        for row in (AnalyticsPartnerDay.objects.filter(split.q("day")).order_by()
                    .values("emsp_country_code", "emsp_party_id", "currency")
                    .annotate(cdrs=Sum("cdrs"), credits=Sum("credits"), kwh=Sum("energy_kwh"),
                              excl_vat=Sum("revenue_excl_vat"), incl_vat=Sum("revenue_incl_vat"))):
            _merge(groups, (row["emsp_country_code"], row["emsp_party_id"], row["currency"]), cdrs=row["cdrs"],
                   credits=row["credits"], kwh=row["kwh"], excl_vat=row["excl_vat"], incl_vat=row["incl_vat"])
    # largest revenue first, as PostgreSQL orders DESC (NULLs first)
    ordered = sorted(groups.items(), key=lambda item: (item[1]["excl_vat"] is not None, -(item[1]["excl_vat"] or 0),
                                                       item[0][0], item[0][1]))
    return [{
        "country_code": country, "party_id": party,
        "name": names.get((country, party), "" if party else "own tokens"),
        "currency": currency, "cdrs": row["cdrs"], "credits": row["credits"],
        "kwh": (row["kwh"] or Decimal(0)).quantize(Decimal("0.001")),
        "revenue_excl_vat": (row["excl_vat"] or Decimal(0)).quantize(Decimal("0.01")),
        "revenue_incl_vat": (row["incl_vat"] or Decimal(0)).quantize(Decimal("0.01")),
    } for (country, party, currency), row in ordered]


def network_time_zone() -> str:
    """The time zone most locations are in (for reading hours of the week), else the default."""
    row = Location.objects.order_by().values("time_zone").annotate(n=Count("id")).order_by("-n").first()
    return row["time_zone"] if row else Location._meta.get_field("time_zone").default
