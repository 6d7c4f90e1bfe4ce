"""Reads for the sessions pages: transactions with the energy they delivered, filtered; one session's meter curve
and what billing made of it."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, QuerySet, Value
from django.db.models.functions import Coalesce

from billing.models import Cdr
from billing.models import Session as BillingSession
from cpo.dashboard.selectors.cdrs import CSV_BATCH, cost_breakdown, csv_value
from cpo.dashboard.selectors.partners import partner_party_q
from cpo.models import Location
from ocpi_api.models import Partner
from ocpp_gateway.measurands import ENERGY_REGISTER, POWER_ACTIVE, value_in_base_unit
from ocpp_gateway.models import MeterValue, Transaction

# SQLite keeps a whole decimal (9900.000 Wh) as an INTEGER, and divides integers as integers (9900 / 1000 = 9): a
# kilo- value is the base value times 0.001, which is a decimal product on PostgreSQL and a real one on SQLite.
PER_KILO = Value(Decimal("0.001"))


def session_energy_wh():
    """The energy a transaction delivered, Wh: its stop register (or the latest one while running) minus its start."""
    return ExpressionWrapper(
        Coalesce(F("meter_stop"), F("meter_last"), F("meter_start")) - F("meter_start"),
        output_field=DecimalField(max_digits=14, decimal_places=3),
    )


def transactions_with_energy(queryset: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """Annotate energy delivered in Wh and kWh, and power in kW, in SQL."""
    kilo = DecimalField(max_digits=14, decimal_places=3)
    return queryset.annotate(
        energy_delivered_wh=session_energy_wh(),
        energy_kwh=ExpressionWrapper(F("energy_delivered_wh") * PER_KILO, output_field=kilo),
        power_kw=ExpressionWrapper(F("power_last") * PER_KILO, output_field=kilo),
    )


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
    sessions = transactions_with_energy(Transaction.objects.select_related("station", "evse__location", "ocpi_session"))
    if partner is not None:
        sessions = sessions.filter(partner_party_q(partner=partner, prefix="token_"))
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
        MeterValue.objects.filter(
            transaction=transaction, measurand__in=[ENERGY_REGISTER, POWER_ACTIVE], phase="", value__isnull=False
        )
        .exclude(location__in=["Inlet", "EV", "Cable", "Body"])
        .order_by("timestamp")
        .values_list("timestamp", "measurand", "value", "unit")
    )
    energy, power = [], []
    start = Decimal(transaction.meter_start)
    for timestamp, measurand, value, unit in samples:
        base = value_in_base_unit(value=value, unit=unit)
        point_ms = int(timestamp.timestamp() * 1000)
        if measurand == ENERGY_REGISTER:
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


SESSION_CSV_COLUMNS = (
    "id",
    "ocpi_session_id",
    "transaction_id",
    "station",
    "evse_id",
    "connector_id",
    "location",
    "id_tag",
    "token_uid",
    "contract_id",
    "emsp_country_code",
    "emsp_party_id",
    "status",
    "started_at",
    "ended_at",
    "energy_kwh",
    "currency",
    "cost_excl_vat",
    "cost_incl_vat",
    "stop_reason",
    "ended_by",
)
SESSION_CSV_FIELDS = (
    "pk",
    "ocpi_session__id",
    "transaction_id",
    "station__identity",
    "ocpp_evse_id",
    "connector_id",
    "evse__location__name",
    "id_tag",
    "token_uid",
    "contract_id",
    "token_country_code",
    "token_party_id",
    "status",
    "started_at",
    "ended_at",
    "energy_kwh",
    "ocpi_session__currency",
    "ocpi_session__total_cost_excl_vat",
    "ocpi_session__total_cost_incl_vat",
    "stop_reason",
    "ended_by",
)


def session_csv_rows(*, sessions: QuerySet[Transaction]):
    """The header, then one row per session of `session_list(...)` (running ones with their cost so far), read
    in batches: an export of a year never holds all rows in memory."""
    yield SESSION_CSV_COLUMNS
    for row in sessions.values_list(*SESSION_CSV_FIELDS).iterator(chunk_size=CSV_BATCH):
        yield [csv_value(value) for value in row]
