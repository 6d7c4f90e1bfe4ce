"""The OCPI 2.2.1 Tariff (mod_tariffs.asciidoc), Session (mod_sessions.asciidoc) and CDR (mod_cdrs.asciidoc),
stored in OCPI shape so that serialising them is a projection.

`elements` holds the list of TariffElement objects exactly as OCPI writes them (price_components with type,
price, vat, step_size; optional restrictions). `clean()` runs the `check_*` validation so the admin refuses
bad input; services call `full_clean()` before saving.
"""

from decimal import Decimal
from typing import Any

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
from billing.enums import AuthMethod, SessionStatus, TariffType
from cpo.models import LastUpdatedModel
from ocpp_gateway.models import Reservation, Transaction

MONEY: dict[str, Any] = dict(max_digits=12, decimal_places=4, null=True, blank=True)


class Tariff(LastUpdatedModel):
    """OCPI Tariff. `id` is the OCPI Tariff.id; the spec says it "uniquely identifies the tariff within the
    CPO's platform (and suboperator platforms)", so it is the primary key, which also makes
    Connector.tariff_ids direct lookups. `min_price`/`max_price` are OCPI Price objects split in two columns
    each (incl_vat is optional)."""

    country_code = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 of the CPO that owns the tariff")
    party_id = models.CharField(max_length=3)
    id = models.CharField(max_length=36, primary_key=True, verbose_name="tariff id")
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR")
    type = models.CharField(  # noqa: DJ001 - OCPI: an absent tariff type (null) is not an empty string
        max_length=14, choices=TariffType.choices, null=True, blank=True
    )
    tariff_alt_text = models.JSONField(default=list, blank=True, help_text='[{"language": "en", "text": "..."}]')
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
    energy_mix = models.JSONField(null=True, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)

    class Meta:
        ordering = ["country_code", "party_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id", "id"], name="tariff_unique_per_party"),
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
                errors.setdefault(f"{name}_excl_vat", []).append(f"{name}: excl_vat is required when incl_vat is set")
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


# --- Sessions and CDRs
# ----------------------------------------------------------------------------------------------


def _money(*, required: bool = False) -> tuple[models.DecimalField, models.DecimalField]:
    """An OCPI Price as two columns, `<name>_excl_vat` and `<name>_incl_vat`."""
    options: dict[str, Any] = dict(max_digits=12, decimal_places=4)
    if not required:
        options.update(null=True, blank=True)
    return models.DecimalField(**options), models.DecimalField(**options)


class Session(LastUpdatedModel):
    """OCPI Session, one per gateway Transaction (`transaction` is unique: a retried or concurrent task finds
    the row another one wrote), or one per accepted Reservation (mod_sessions "Reservation": status RESERVATION
    from the reservation on; the same session becomes the charging session when the reservation's token charges,
    or is COMPLETED when it expires or is cancelled). Written only by `billing.services` (`session_write`,
    `reservation_bill`).

    `emsp_country_code`/`emsp_party_id` name the EMSP whose token started the session, the only partner it is
    sent to (empty: one of this CPO's own tokens). `tariffs` and `cdr_location` are not Session fields in
    OCPI: they are the snapshots taken when the session started ("The CDR object shall always contain
    information like Location, EVSE, Tariffs and Token as they were *at the start* of the charging session"),
    used to price the session and copied into its CDR, so editing a tariff or a location mid-session changes
    neither. `total_cost` is null when no tariff applies ("When omitted ... it does not imply the session is/was
    free of charge")."""

    country_code = models.CharField(max_length=2, help_text="This CPO (OCPI_COUNTRY_CODE)")
    party_id = models.CharField(max_length=3, help_text="This CPO (OCPI_PARTY_ID)")
    id = models.CharField(max_length=36, primary_key=True, verbose_name="session id")
    transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="ocpi_session"
    )
    reservation = models.OneToOneField(
        Reservation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ocpi_session",
        help_text="The reservation this session started as (status RESERVATION), if any",
    )
    emsp_country_code = models.CharField(max_length=2, blank=True, help_text="Owner of the token")
    emsp_party_id = models.CharField(max_length=3, blank=True, help_text="Owner of the token")
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField(null=True, blank=True)
    kwh = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    cdr_token = models.JSONField(help_text="OCPI CdrToken: country_code, party_id, uid, type, contract_id")
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    authorization_reference = models.CharField(max_length=36, blank=True)
    location_id = models.CharField(max_length=36)
    evse_uid = models.CharField(max_length=36)
    connector_id = models.CharField(max_length=36)
    meter_id = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    charging_periods = models.JSONField(
        default=list, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder
    )
    total_cost_excl_vat, total_cost_incl_vat = _money()
    status = models.CharField(max_length=12, choices=SessionStatus.choices, db_index=True)
    tariffs = models.JSONField(
        default=list,
        blank=True,
        encoder=DecimalJSONEncoder,
        decoder=DecimalJSONDecoder,
        help_text="OCPI Tariff(s) as they were when the session started",
    )
    cdr_location = models.JSONField(
        default=dict, blank=True, encoder=DecimalJSONEncoder, help_text="OCPI CdrLocation at the start"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_date_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id", "id"], name="session_unique_per_party"),
            models.CheckConstraint(
                condition=Q(end_date_time__isnull=True) | Q(end_date_time__gte=models.F("start_date_time")),
                name="session_ends_after_it_starts",
            ),
            models.CheckConstraint(condition=Q(kwh__gte=0), name="session_energy_not_negative"),
            models.CheckConstraint(
                condition=Q(transaction__isnull=False) | Q(reservation__isnull=False),
                name="session_of_a_transaction_or_reservation",
            ),
            models.CheckConstraint(
                condition=~Q(status=SessionStatus.COMPLETED) | Q(end_date_time__isnull=False),
                name="session_completed_has_end",
            ),
            models.CheckConstraint(
                condition=Q(total_cost_excl_vat__isnull=True, total_cost_incl_vat__isnull=True)
                | Q(total_cost_excl_vat__gte=0, total_cost_incl_vat__gte=0),
                name="session_total_cost_complete",
            ),
        ]
        indexes = [models.Index(fields=["emsp_country_code", "emsp_party_id", "last_updated"])]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} session {self.id}"

    @property
    def total_cost(self) -> dict | None:
        return _price(self.total_cost_excl_vat, self.total_cost_incl_vat)


class Cdr(LastUpdatedModel):
    """OCPI CDR, immutable: written once by `billing.services.cdr_create` (or `cdr_credit`), never updated
    (a database trigger refuses any UPDATE, see migration 0003) and never deleted (`on_delete=PROTECT` from
    its session and from its credit). A correction is a credit CDR: `credit=True`, `credit_reference` the
    original (its column is the OCPI `credit_reference_id`), the cost totals negated.

    A late stop that changes the priced result re-issues it: a credit for the current CDR and a new one with
    `reissue_of` the credited CDR (`cdr_correct`).

    The database holds the invariants: one non-credit CDR per session besides re-issues (each replaces one CDR),
    one credit per CDR, an end not before
    the start, energy and durations not negative, a credit CDR references its original and costs <= 0, a
    normal one costs >= 0. `session` is the OCPI `session_id` (its column holds Session.id). `tariffs`,
    `cdr_location` and `cdr_token` are the snapshots taken when the session started."""

    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    id = models.CharField(
        max_length=39, primary_key=True, verbose_name="CDR id", help_text="36 at most, 39 for a credit CDR"
    )
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="cdrs")
    emsp_country_code = models.CharField(max_length=2, blank=True, help_text="Owner of the token")
    emsp_party_id = models.CharField(max_length=3, blank=True, help_text="Owner of the token")
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField()
    cdr_token = models.JSONField()
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    authorization_reference = models.CharField(max_length=36, blank=True)
    cdr_location = models.JSONField(encoder=DecimalJSONEncoder)
    meter_id = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    tariffs = models.JSONField(default=list, blank=True, encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    charging_periods = models.JSONField(encoder=DecimalJSONEncoder, decoder=DecimalJSONDecoder)
    signed_data = models.JSONField(null=True, blank=True)
    total_cost_excl_vat, total_cost_incl_vat = _money(required=True)
    total_fixed_cost_excl_vat, total_fixed_cost_incl_vat = _money()
    total_energy = models.DecimalField(max_digits=12, decimal_places=4, help_text="kWh")
    total_energy_cost_excl_vat, total_energy_cost_incl_vat = _money()
    total_time = models.DecimalField(max_digits=12, decimal_places=4, help_text="hours")
    total_time_cost_excl_vat, total_time_cost_incl_vat = _money()
    total_parking_time = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, help_text="hours")
    total_parking_cost_excl_vat, total_parking_cost_incl_vat = _money()
    total_reservation_cost_excl_vat, total_reservation_cost_incl_vat = _money()
    remark = models.CharField(max_length=255, blank=True)
    invoice_reference_id = models.CharField(max_length=39, blank=True)
    credit = models.BooleanField(default=False)
    credit_reference = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credits",
        help_text="The CDR this one credits (OCPI credit_reference_id)",
    )
    reissue_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reissue",
        help_text="The credited CDR of the same session this one replaces (a late stop corrected the session)",
    )
    home_charging_compensation = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-last_updated", "id"]
        verbose_name = "CDR"
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id", "id"], name="cdr_unique_per_party"),
            models.UniqueConstraint(
                fields=["session"], condition=Q(credit=False, reissue_of__isnull=True), name="cdr_one_per_session"
            ),
            models.CheckConstraint(
                condition=Q(reissue_of__isnull=True) | Q(credit=False), name="cdr_credit_not_reissued"
            ),
            models.UniqueConstraint(
                fields=["credit_reference"], condition=Q(credit=True), name="cdr_one_credit_per_cdr"
            ),
            models.CheckConstraint(
                condition=Q(end_date_time__gte=models.F("start_date_time")), name="cdr_ends_after_it_starts"
            ),
            models.CheckConstraint(condition=Q(total_energy__gte=0), name="cdr_energy_not_negative"),
            models.CheckConstraint(
                condition=Q(total_time__gte=0) & (Q(total_parking_time__isnull=True) | Q(total_parking_time__gte=0)),
                name="cdr_durations_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(
                    credit=True, credit_reference__isnull=False, total_cost_excl_vat__lte=0, total_cost_incl_vat__lte=0
                )
                | Q(
                    credit=False, credit_reference__isnull=True, total_cost_excl_vat__gte=0, total_cost_incl_vat__gte=0
                ),
                name="cdr_credit_references_and_negates",
            ),
        ]
        indexes = [
            models.Index(fields=["emsp_country_code", "emsp_party_id", "last_updated"]),
            # exports of a period by charging date (the dashboard's CDR list and CSV)
            models.Index(fields=["start_date_time"], name="cdr_start_date_time"),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} CDR {self.id}"

    @property
    def total_cost(self) -> dict:
        return _price(self.total_cost_excl_vat, self.total_cost_incl_vat)
