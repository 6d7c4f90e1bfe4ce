"""Reads for the tariffs pages: the list, a tariff's price components in words, a sample session priced."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from billing.models import Tariff
from billing.pricing import MeterSample, PricedSession, SessionUsage, price_session
from cpo.models import Connector


def tariff_list() -> QuerySet[Tariff]:
    return Tariff.objects.order_by("country_code", "party_id", "id")


TARIFF_CONNECTORS_SHOWN = 200


def tariff_connectors(*, tariff_id: str) -> tuple[list[Connector], int]:
    """Connectors priced with the tariff: those naming it in their tariff_ids, and those without tariff_ids at a
    location whose default it is. (Up to TARIFF_CONNECTORS_SHOWN of them, and how many there are.) The ids are
    matched in the JSON text with their quotes, `"AC-1"`, which no other id contains: one query for each answer."""
    connectors = (
        Connector.objects.annotate(tariff_text=Cast("tariff_ids", TextField()))
        .filter(
            Q(tariff_text__contains=f'"{tariff_id}"') | Q(tariff_ids=[], evse__location__default_tariff_id=tariff_id)
        )
        .select_related("evse__station", "evse__location")
        .order_by("evse__location__name", "evse__station__identity", "evse__ocpp_evse_id")
    )
    return list(connectors[:TARIFF_CONNECTORS_SHOWN]), connectors.count()


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
            lines.append(
                f"{component.get('type')} {price_text(component.get('price'))}{vat}{step}"
                + (f" · {when}" if when else "")
            )
    return lines


def tariff_price_preview(
    *, tariff: Tariff | dict, kwh: Decimal, minutes: int, start: datetime, time_zone: str, parking_minutes: int = 0
) -> PricedSession:
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
    usage = SessionUsage(
        start_date_time=start_at,
        end_date_time=end_at,
        time_zone=time_zone,
        samples=samples,
        charging_end_date_time=charging_end,
    )
    return price_session(tariff=tariff, usage=usage)
