"""Writes of tariffs: from an OCPI Tariff object (validated with `full_clean`, which runs the `check_*` rules of
`billing.checks`, then saved atomically), and the demo tariff."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from billing.checks import as_decimal
from billing.models import Tariff

OCPI_TARIFF_FIELDS = (
    "country_code",
    "party_id",
    "id",
    "currency",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "start_date_time",
    "end_date_time",
    "energy_mix",
    "last_updated",
)


def _exact(value: Any) -> Any:
    """JSON numbers from a parsed OCPI object as Decimal (floats through their repr), recursively."""
    if isinstance(value, float):
        return as_decimal(value)
    if isinstance(value, list):
        return [_exact(item) for item in value]
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    return value


@transaction.atomic
def tariff_upsert_from_ocpi(*, data: dict) -> Tariff:
    """Create or replace a Tariff from an OCPI Tariff object (a parsed JSON dict, e.g. an example of the
    spec). `last_updated` in the input is ignored: ours moves on every save. Raises ValidationError on bad
    input."""
    unknown = set(data) - set(OCPI_TARIFF_FIELDS)
    if unknown:
        raise ValidationError(f"unknown Tariff field(s): {', '.join(sorted(unknown))}")
    data = _exact(data)
    tariff = Tariff.objects.filter(pk=data.get("id")).first() or Tariff(id=data.get("id"))
    tariff.country_code = data.get("country_code")
    tariff.party_id = data.get("party_id")
    tariff.currency = data.get("currency")
    tariff.type = data.get("type")
    tariff.tariff_alt_text = data.get("tariff_alt_text") or []
    tariff.tariff_alt_url = data.get("tariff_alt_url") or ""
    for name in ("min_price", "max_price"):
        price = data.get(name) or {}
        setattr(tariff, f"{name}_excl_vat", price.get("excl_vat"))
        setattr(tariff, f"{name}_incl_vat", price.get("incl_vat"))
    tariff.elements = data.get("elements")
    for name in ("start_date_time", "end_date_time"):
        value = data.get(name)
        setattr(tariff, name, parse_datetime(value) if isinstance(value, str) else value)
    tariff.energy_mix = data.get("energy_mix")
    tariff.full_clean()
    tariff.save()
    return tariff


@transaction.atomic
def tariff_seed_demo(*, tariff_id: str) -> Tariff:
    """The demo AC tariff of this CPO: € 1.00 start fee and € 0.35 per kWh (both excl. VAT, 21% VAT as in the
    Netherlands), energy billed per Wh. Idempotent: an existing tariff with this id is left as staff last
    edited it. The alternative text holds no prices: "the tariff_alt_text SHALL only contain additional tariff
    information in human-readable text, not the price information that is also available via the elements
    field" (mod_tariffs)."""
    tariff = Tariff.objects.filter(pk=tariff_id).first()
    if tariff is not None:
        return tariff
    tariff = Tariff(
        id=tariff_id,
        country_code=settings.OCPI_COUNTRY_CODE,
        party_id=settings.OCPI_PARTY_ID,
        currency="EUR",
        type=None,
        tariff_alt_text=[
            {"language": "en", "text": "Start fee once per session; energy billed per Wh."},
            {"language": "nl", "text": "Starttarief eenmaal per sessie; energie per Wh afgerekend."},
        ],
        elements=[
            {
                "price_components": [
                    {"type": "FLAT", "price": Decimal("1.00"), "vat": Decimal("21.0"), "step_size": 1},
                    {"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21.0"), "step_size": 1},
                ]
            },
        ],
    )
    tariff.full_clean()
    tariff.save()
    return tariff
