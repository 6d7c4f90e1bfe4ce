"""The OCPI 2.2.1 Tariff (mod_tariffs.asciidoc), stored in OCPI shape so that serialising it is a projection.

`elements` holds the list of TariffElement objects exactly as OCPI writes them (price_components with type,
price, vat, step_size; optional restrictions). `clean()` runs the `check_*` validation so the admin refuses
bad input; services call `full_clean()` before saving.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from billing.checks import (
    check_currency,
    check_display_texts,
    check_energy_mix,
    check_tariff_elements,
    check_tariff_type,
)
from billing.encoding import DecimalJSONDecoder, DecimalJSONEncoder
from billing.enums import TariffType
from cpo.models import LastUpdatedModel

MONEY = dict(max_digits=12, decimal_places=4, null=True, blank=True)


class Tariff(LastUpdatedModel):
    """OCPI Tariff. `id` is the OCPI Tariff.id; the spec says it "uniquely identifies the tariff within the
    CPO's platform (and suboperator platforms)", so it is the primary key, which also makes
    Connector.tariff_ids direct lookups. `min_price`/`max_price` are OCPI Price objects split in two columns
    each (incl_vat is optional)."""

    country_code = models.CharField(
        max_length=2, help_text="ISO 3166-1 alpha-2 of the CPO that owns the tariff"
    )
    party_id = models.CharField(max_length=3)
    id = models.CharField(max_length=36, primary_key=True, verbose_name="tariff id")
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR")
    type = models.CharField(max_length=14, choices=TariffType.choices, null=True, blank=True)
    tariff_alt_text = models.JSONField(
        default=list, blank=True, help_text='[{"language": "en", "text": "..."}]'
    )
    tariff_alt_url = models.URLField(max_length=255, blank=True)
    min_price_excl_vat = models.DecimalField(**MONEY)
    min_price_incl_vat = models.DecimalField(**MONEY)
    max_price_excl_vat = models.DecimalField(**MONEY)
    max_price_incl_vat = models.DecimalField(**MONEY)
    elements = models.JSONField(
        encoder=DecimalJSONEncoder,
        decoder=DecimalJSONDecoder,
        help_text='OCPI TariffElement list, e.g. [{"price_components": [{"type": "ENERGY", "price": 0.35, '
        '"vat": 21.0, "step_size": 1}], "restrictions": {"start_time": "07:00", "end_time": "23:00"}}]',
    )
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    energy_mix = models.JSONField(
        null=True, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder
    )

    class Meta:
        ordering = ["country_code", "party_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["country_code", "party_id", "id"], name="tariff_unique_per_party"
            ),
            models.CheckConstraint(
                condition=Q(start_date_time__isnull=True)
                | Q(end_date_time__isnull=True)
                | Q(end_date_time__gt=models.F("start_date_time")),
                name="tariff_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=Q(min_price_incl_vat__isnull=True) | Q(min_price_excl_vat__isnull=False),
                name="tariff_min_price_has_excl_vat",
            ),
            models.CheckConstraint(
                condition=Q(max_price_incl_vat__isnull=True) | Q(max_price_excl_vat__isnull=False),
                name="tariff_max_price_has_excl_vat",
            ),
            models.CheckConstraint(
                condition=Q(min_price_excl_vat__isnull=True) | Q(min_price_excl_vat__gte=0),
                name="tariff_min_price_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(max_price_excl_vat__isnull=True) | Q(max_price_excl_vat__gte=0),
                name="tariff_max_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.id}"

    @property
    def min_price(self) -> dict | None:
        return _price(self.min_price_excl_vat, self.min_price_incl_vat)

    @property
    def max_price(self) -> dict | None:
        return _price(self.max_price_excl_vat, self.max_price_incl_vat)

    def clean(self) -> None:
        errors: dict[str, list] = {}
        checks = (
            ("elements", check_tariff_elements, {"elements": self.elements}),
            ("tariff_alt_text", check_display_texts, {"texts": self.tariff_alt_text}),
            ("type", check_tariff_type, {"tariff_type": self.type or None}),
            ("currency", check_currency, {"currency": self.currency}),
            ("energy_mix", check_energy_mix, {"energy_mix": self.energy_mix}),
        )
        for field, check, kwargs in checks:
            try:
                check(**kwargs)
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.messages)
        for name in ("min_price", "max_price"):
            if getattr(self, f"{name}_incl_vat") is not None and getattr(self, f"{name}_excl_vat") is None:
                errors.setdefault(f"{name}_excl_vat", []).append(
                    f"{name}: excl_vat is required when incl_vat is set"
                )
        for part in ("excl_vat", "incl_vat"):
            low, high = getattr(self, f"min_price_{part}"), getattr(self, f"max_price_{part}")
            if low is not None and high is not None and low > high:
                errors.setdefault(f"max_price_{part}", []).append(
                    f"max_price.{part} must not be below min_price.{part}"
                )
        if self.start_date_time and self.end_date_time and self.end_date_time <= self.start_date_time:
            errors.setdefault("end_date_time", []).append("end_date_time must be after start_date_time")
        if errors:
            raise ValidationError(errors)


def _price(excl_vat: Decimal | None, incl_vat: Decimal | None) -> dict | None:
    if excl_vat is None:
        return None
    price = {"excl_vat": excl_vat}
    if incl_vat is not None:
        price["incl_vat"] = incl_vat
    return price
