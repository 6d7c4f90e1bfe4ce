"""Reads of billing: tariffs, sessions and CDRs shaped as OCPI 2.2.1 objects (mod_tariffs, mod_sessions,
mod_cdrs), the tariff of a connector, the transactions whose billing did not finish, and the settlement per partner
and month."""

import datetime as dt
import io
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from billing.encoding import ocpi_datetime
from billing.enums import SessionStatus
from billing.models import Cdr, Session, Tariff
from cpo.models import Connector, Location
from cpo.spreadsheets import SafeCsvWriter
from ocpp_gateway.models import Reservation, Transaction

CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")
ZERO = Decimal(0)


def _numbers(value: Any) -> Any:
    """Decimals stay Decimal (DRF renders them as JSON numbers); containers are copied so callers can't
    mutate the model's JSON."""
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    return value


def tariff_as_ocpi(*, tariff: Tariff) -> dict:
    """The OCPI Tariff object: required fields always, optional fields only when set (OCPI: "Fields that are
    not specified may be considered as null values"), in the order of the spec's table, `last_updated` as UTC
    with `Z`. Numbers are Decimal (prices, vat) or int (step_size, durations)."""
    data: dict[str, Any] = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": tariff.id,
        "currency": tariff.currency,
    }
    if tariff.type:
        data["type"] = tariff.type
    if tariff.tariff_alt_text:
        data["tariff_alt_text"] = _numbers(tariff.tariff_alt_text)
    if tariff.tariff_alt_url:
        data["tariff_alt_url"] = tariff.tariff_alt_url
    if tariff.min_price is not None:
        data["min_price"] = tariff.min_price
    if tariff.max_price is not None:
        data["max_price"] = tariff.max_price
    data["elements"] = _numbers(tariff.elements)
    if tariff.start_date_time is not None:
        data["start_date_time"] = ocpi_datetime(tariff.start_date_time)
    if tariff.end_date_time is not None:
        data["end_date_time"] = ocpi_datetime(tariff.end_date_time)
    if tariff.energy_mix is not None:
        data["energy_mix"] = _numbers(tariff.energy_mix)
    data["last_updated"] = ocpi_datetime(tariff.last_updated)
    return data


def tariff_get(*, tariff_id: str) -> Tariff | None:
    return Tariff.objects.filter(pk=tariff_id).first()


def tariff_for_connector(*, connector: Connector, at: dt.datetime) -> Tariff | None:
    """The first tariff of `connector.tariff_ids` (none: its location's default tariff) that exists and is valid at
    `at` (the session start: "a driver accepts the tariff which is valid when they start their charging
    session")."""
    tariff_ids = list(connector.tariff_ids or [])
    if not tariff_ids:
        default = Location.objects.filter(evses__connectors=connector).values_list("default_tariff_id", flat=True)
        tariff_ids = [tariff_id for tariff_id in default[:1] if tariff_id]
    for tariff_id in tariff_ids:
        tariff = Tariff.objects.filter(pk=tariff_id).first()
        if tariff is None:
            continue
        if tariff.start_date_time is not None and at < tariff.start_date_time:
            continue
        if tariff.end_date_time is not None and at >= tariff.end_date_time:
            continue
        return tariff
    return None


# --- Sessions and CDRs
# ----------------------------------------------------------------------------------------------


def _price_out(excl_vat: Decimal | None, incl_vat: Decimal | None) -> dict | None:
    """OCPI Price, money with 2 decimals as the engine rounds it."""
    if excl_vat is None:
        return None
    price = {"excl_vat": excl_vat.quantize(CENT)}
    if incl_vat is not None:
        price["incl_vat"] = incl_vat.quantize(CENT)
    return price


def _quantity_out(value: Decimal) -> Decimal:
    """OCPI number (kWh, hours): 4 decimals at most, trailing zeros dropped."""
    value = value.quantize(QUANTITY)
    return value.normalize() if value != value.to_integral_value() else value.quantize(Decimal(1))


def session_as_ocpi(*, session: Session) -> dict:
    """The OCPI Session object (mod_sessions.asciidoc), fields in the spec's order, optional ones only when set;
    datetimes UTC with `Z`; kwh and volumes Decimal; `total_cost` as {excl_vat, incl_vat}, left out when no
    tariff applies ("When omitted ... it does not imply the session is/was free of charge")."""
    data: dict[str, Any] = {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "id": session.id,
        "start_date_time": ocpi_datetime(session.start_date_time),
    }
    if session.end_date_time is not None:
        data["end_date_time"] = ocpi_datetime(session.end_date_time)
    data["kwh"] = _quantity_out(session.kwh)
    data["cdr_token"] = dict(session.cdr_token)
    data["auth_method"] = session.auth_method
    if session.authorization_reference:
        data["authorization_reference"] = session.authorization_reference
    data.update(location_id=session.location_id, evse_uid=session.evse_uid, connector_id=session.connector_id)
    if session.meter_id:
        data["meter_id"] = session.meter_id
    data["currency"] = session.currency
    if session.charging_periods:
        data["charging_periods"] = _numbers(session.charging_periods)
    total_cost = _price_out(session.total_cost_excl_vat, session.total_cost_incl_vat)
    if total_cost is not None:
        data["total_cost"] = total_cost
    data["status"] = session.status
    data["last_updated"] = ocpi_datetime(session.last_updated)
    return data


def cdr_as_ocpi(*, cdr: Cdr) -> dict:
    """The OCPI CDR object (mod_cdrs.asciidoc), fields in the spec's order, optional ones only when set (the
    cost of a dimension is left out when zero, as in the spec's example); `credit` and
    `credit_reference_id` only on credit CDRs."""
    data: dict[str, Any] = {
        "country_code": cdr.country_code,
        "party_id": cdr.party_id,
        "id": cdr.id,
        "start_date_time": ocpi_datetime(cdr.start_date_time),
        "end_date_time": ocpi_datetime(cdr.end_date_time),
        "session_id": cdr.session_id,
        "cdr_token": dict(cdr.cdr_token),
        "auth_method": cdr.auth_method,
    }
    if cdr.authorization_reference:
        data["authorization_reference"] = cdr.authorization_reference
    data["cdr_location"] = _numbers(cdr.cdr_location)
    if cdr.meter_id:
        data["meter_id"] = cdr.meter_id
    data["currency"] = cdr.currency
    if cdr.tariffs:
        data["tariffs"] = _numbers(cdr.tariffs)
    data["charging_periods"] = _numbers(cdr.charging_periods)
    if cdr.signed_data:
        data["signed_data"] = _numbers(cdr.signed_data)
    data["total_cost"] = _price_out(cdr.total_cost_excl_vat, cdr.total_cost_incl_vat)

    def cost(name: str) -> None:
        price = _price_out(getattr(cdr, f"{name}_excl_vat"), getattr(cdr, f"{name}_incl_vat"))
        if price is not None:
            data[name] = price

    cost("total_fixed_cost")
    data["total_energy"] = _quantity_out(cdr.total_energy)
    cost("total_energy_cost")
    data["total_time"] = _quantity_out(cdr.total_time)
    cost("total_time_cost")
    if cdr.total_parking_time is not None:
        data["total_parking_time"] = _quantity_out(cdr.total_parking_time)
    cost("total_parking_cost")
    cost("total_reservation_cost")
    if cdr.remark:
        data["remark"] = cdr.remark
    if cdr.invoice_reference_id:
        data["invoice_reference_id"] = cdr.invoice_reference_id
    if cdr.credit:
        data["credit"] = True
        data["credit_reference_id"] = cdr.credit_reference_id
    if cdr.home_charging_compensation is not None:
        data["home_charging_compensation"] = cdr.home_charging_compensation
    data["last_updated"] = ocpi_datetime(cdr.last_updated)
    return data


def session_get(*, country_code: str, party_id: str, session_id: str) -> Session | None:
    return Session.objects.filter(country_code=country_code, party_id=party_id, id=session_id).first()


def cdr_get(*, country_code: str, party_id: str, cdr_id: str) -> Cdr | None:
    return Cdr.objects.filter(country_code=country_code, party_id=party_id, id=cdr_id).first()


def transactions_unbilled(*, quiet_seconds: float, days: int = 7, limit: int = 500) -> list[int]:
    """Transactions whose billing did not finish (its task was lost with a worker or the broker): ended without a
    CDR, or running without a Session, and not changed for `quiet_seconds` (the normal task had its chance). Only
    the last `days` and only those with an EVSE (others cannot be billed). For the reconciling beat task."""
    now = timezone.now()
    quiet = now - dt.timedelta(seconds=quiet_seconds)
    recent = Transaction.objects.filter(
        evse__isnull=False, updated_at__lte=quiet, started_at__gte=now - dt.timedelta(days=days)
    )
    has_cdr = Exists(Cdr.objects.filter(session__transaction=OuterRef("pk"), credit=False))
    has_session = Exists(Session.objects.filter(transaction=OuterRef("pk")))
    ended = recent.filter(status=Transaction.Status.ENDED).exclude(has_cdr)
    running = recent.filter(status=Transaction.Status.ACTIVE).exclude(has_session)
    ids = list(ended.values_list("pk", flat=True)[:limit]) + list(running.values_list("pk", flat=True)[:limit])
    return ids[:limit]


def transactions_uncorrected(*, quiet_seconds: float, days: int = 7, limit: int = 500) -> list[int]:
    """Transactions we ended ourselves (not the charger) that changed after their current CDR (a late stop whose
    correction task was lost), quiet for `quiet_seconds`; only the last `days`. `cdr_correct` decides whether the
    CDR really needs one. For the reconciling beat task."""
    now = timezone.now()
    current = Cdr.objects.filter(
        session__transaction=OuterRef("pk"), credit=False, credits__isnull=True, last_updated__lt=OuterRef("updated_at")
    )
    stale = Transaction.objects.filter(
        Exists(current),
        status=Transaction.Status.ENDED,
        updated_at__lte=now - dt.timedelta(seconds=quiet_seconds),
        started_at__gte=now - dt.timedelta(days=days),
    ).exclude(ended_by__in=["", Transaction.EndedBy.CHARGER])
    return list(stale.values_list("pk", flat=True)[:limit])


def reservations_unbilled(*, quiet_seconds: float, days: int = 7, limit: int = 500) -> list[int]:
    """Reservations the charger accepted whose Session did not follow (its task was lost): without a Session, or
    ended (expired, cancelled, used) with a Session still in RESERVATION; not changed for `quiet_seconds`. Only
    the last `days`. For the reconciling beat task."""
    now = timezone.now()
    recent = Reservation.objects.filter(
        answer_status="Accepted",
        updated_at__lte=now - dt.timedelta(seconds=quiet_seconds),
        created_at__gte=now - dt.timedelta(days=days),
    )
    has_session = Exists(Session.objects.filter(reservation=OuterRef("pk")))
    still_reserved = Exists(Session.objects.filter(reservation=OuterRef("pk"), status=SessionStatus.RESERVATION))
    unbilled = recent.filter(~has_session | (still_reserved & Q(status__in=Reservation.ENDED)))
    return list(unbilled.values_list("pk", flat=True)[:limit])


# --- Settlement
# -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettlementRow:
    """One partner's CDRs of one month in one currency. Credit CDRs count with a minus sign (their amounts are
    already negative; their energy and time are subtracted), so a credited CDR and its credit cancel out."""

    country_code: str
    party_id: str
    month: str
    currency: str
    cdrs: int
    credits: int
    kwh: Decimal
    hours: Decimal
    parking_hours: Decimal
    amount_excl_vat: Decimal
    amount_incl_vat: Decimal


SETTLEMENT_COLUMNS = tuple(f.name for f in fields(SettlementRow))


def month_bounds(*, month: str) -> tuple[dt.datetime, dt.datetime]:
    """`YYYY-MM` -> [first instant, first instant of the next month), aware UTC. Raises ValueError."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from exc
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def settlement_summary(*, country_code: str, party_id: str, month: str) -> list[SettlementRow]:
    """The settlement of partner `country_code`/`party_id` (the EMSP that owns the tokens) for `month`
    (YYYY-MM): the CDRs written in that month (by `last_updated`, which for an immutable CDR is when it was
    written, UTC), one row per currency. A month once closed never changes: a later credit falls into the month
    it is issued in. Every total is the sum of the CDRs' fields, exactly."""
    start, end = month_bounds(month=month)
    cdrs = Cdr.objects.filter(
        emsp_country_code__iexact=country_code,
        emsp_party_id__iexact=party_id,
        last_updated__gte=start,
        last_updated__lt=end,
    ).order_by("currency", "id")
    rows: dict[str, dict] = {}
    for cdr in cdrs:
        sign = -1 if cdr.credit else 1
        row = rows.setdefault(
            cdr.currency,
            dict(cdrs=0, credits=0, kwh=ZERO, hours=ZERO, parking_hours=ZERO, excl=ZERO, incl=ZERO),
        )
        row["credits" if cdr.credit else "cdrs"] += 1
        row["kwh"] += sign * cdr.total_energy
        row["hours"] += sign * cdr.total_time
        row["parking_hours"] += sign * (cdr.total_parking_time or ZERO)
        row["excl"] += cdr.total_cost_excl_vat
        row["incl"] += cdr.total_cost_incl_vat
    return [
        SettlementRow(
            country_code=country_code.upper(),
            party_id=party_id.upper(),
            month=month,
            currency=currency,
            cdrs=row["cdrs"],
            credits=row["credits"],
            kwh=row["kwh"],
            hours=row["hours"],
            parking_hours=row["parking_hours"],
            amount_excl_vat=row["excl"],
            amount_incl_vat=row["incl"],
        )
        for currency, row in rows.items()
    ]


def settlement_as_csv(*, rows: list[SettlementRow]) -> str:
    """CSV with a header line; numbers as exact decimals (money with 2 decimals, kWh and hours with 4)."""
    out = io.StringIO()
    writer = SafeCsvWriter(out)
    writer.writerow(SETTLEMENT_COLUMNS)
    for row in rows:
        values = []
        for name in SETTLEMENT_COLUMNS:
            value = getattr(row, name)
            if name.startswith("amount_"):
                value = value.quantize(CENT)
            elif isinstance(value, Decimal):
                value = value.quantize(QUANTITY)
            values.append(value)
        writer.writerow(values)
    return out.getvalue()
