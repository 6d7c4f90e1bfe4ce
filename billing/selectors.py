"""Reads on tariffs, shaped as OCPI 2.2.1 objects for the sender interface (mod_tariffs.asciidoc, Tariff
object)."""

from typing import Any

from billing.encoding import ocpi_datetime
from billing.models import Tariff


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
