import datetime as dt
import json

from django.contrib import admin, messages
from django.db import models, transaction
from django.http import HttpResponse
from django.utils.html import format_html

from billing.encoding import DecimalJSONEncoder
from billing.models import Cdr, Session, Tariff
from billing.selectors import (
    cdr_as_ocpi,
    session_as_ocpi,
    settlement_as_csv,
    settlement_summary,
    tariff_as_ocpi,
)
from billing.services import cdr_credit


def _components(tariff: Tariff) -> str:
    """One line per dimension, e.g. "ENERGY 0.35 +21%, FLAT 1.00 +21%" (first occurrence of each)."""
    seen: dict[str, str] = {}
    for element in tariff.elements or []:
        conditional = " (restricted)" if element.get("restrictions") else ""
        for component in element.get("price_components", []):
            kind = component.get("type")
            if kind not in seen:
                vat = f" +{component['vat']}%" if component.get("vat") is not None else ""
                seen[kind] = f"{kind} {component.get('price')}{vat}{conditional}"
    return ", ".join(seen.values())


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    """Elements are edited as OCPI JSON; `Tariff.clean` validates them and the form shows each problem with
    its path (e.g. `elements[0].price_components[1].type: 'KWH' is not a TariffDimensionType ...`)."""

    list_display = (
        "id",
        "country_code",
        "party_id",
        "currency",
        "type",
        "price_summary",
        "start_date_time",
        "end_date_time",
        "last_updated",
    )
    list_filter = ("type", "currency", "country_code", "party_id")
    search_fields = ("id", "party_id", "tariff_alt_url", "tariff_alt_text")
    readonly_fields = ("last_updated", "ocpi_preview")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("country_code", "party_id", "id", "currency", "type")}),
        (
            "Price",
            {
                "fields": (
                    "elements",
                    ("min_price_excl_vat", "min_price_incl_vat"),
                    ("max_price_excl_vat", "max_price_incl_vat"),
                )
            },
        ),
        ("Validity", {"fields": ("start_date_time", "end_date_time")}),
        ("Information", {"fields": ("tariff_alt_text", "tariff_alt_url", "energy_mix")}),
        ("OCPI", {"fields": ("last_updated", "ocpi_preview")}),
    )

    @admin.display(description="price components")
    def price_summary(self, tariff: Tariff) -> str:
        return _components(tariff)

    @admin.display(description="as sent to partners (OCPI Tariff)")
    def ocpi_preview(self, tariff: Tariff) -> str:
        if tariff.last_updated is None:
            return "-"
        text = json.dumps(tariff_as_ocpi(tariff=tariff), cls=DecimalJSONEncoder, indent=2)
        return format_html("<pre>{}</pre>", text)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    """Sessions are written by `billing.services.session_sync` from what the charger reported; staff read
    them here."""

    list_display = (
        "id",
        "status",
        "emsp_country_code",
        "emsp_party_id",
        "location_id",
        "evse_uid",
        "start_date_time",
        "end_date_time",
        "kwh",
        "total_cost_excl_vat",
        "total_cost_incl_vat",
        "currency",
        "last_updated",
    )
    list_filter = ("status", "emsp_country_code", "emsp_party_id", "auth_method")
    search_fields = ("id", "location_id", "evse_uid", "authorization_reference", "cdr_token__uid")
    date_hierarchy = "start_date_time"
    list_select_related = ("transaction",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["ocpi_preview"]

    @admin.display(description="as sent to the partner (OCPI Session)")
    def ocpi_preview(self, session: Session) -> str:
        text = json.dumps(session_as_ocpi(session=session), cls=DecimalJSONEncoder, indent=2)
        return format_html("<pre>{}</pre>", text)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Cdr)
class CdrAdmin(admin.ModelAdmin):
    """CDRs are immutable: every field is read-only and nothing can be added or deleted here. A correction is
    a credit CDR (the action below)."""

    list_display = (
        "id",
        "credit",
        "emsp_country_code",
        "emsp_party_id",
        "start_date_time",
        "end_date_time",
        "total_energy",
        "total_cost_excl_vat",
        "total_cost_incl_vat",
        "currency",
        "last_updated",
    )
    list_filter = ("credit", "emsp_country_code", "emsp_party_id", "currency")
    search_fields = ("id", "session__id", "authorization_reference", "cdr_token__uid")
    date_hierarchy = "last_updated"
    actions = ("issue_credit", "settlement_csv")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["ocpi_preview"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Viewing only: there is no save button, and the database refuses an UPDATE anyway.
        return False

    @admin.display(description="as sent to the partner (OCPI CDR)")
    def ocpi_preview(self, cdr: Cdr) -> str:
        text = json.dumps(cdr_as_ocpi(cdr=cdr), cls=DecimalJSONEncoder, indent=2)
        return format_html("<pre>{}</pre>", text)

    @admin.action(description="Issue a credit CDR for the selected CDRs", permissions=["credit"])
    def issue_credit(self, request, queryset) -> None:
        """One credit CDR per selected original (a CDR already credited keeps its one credit; credit CDRs are
        skipped). ocpi_api announces the credit (billing.events.cdr_issued) and POSTs it to the EMSP."""
        issued, skipped = [], 0
        for cdr in queryset.filter(credit=False):
            with transaction.atomic():
                already = cdr.credits.exists()
                credit = cdr_credit(cdr=cdr, reason=f"credited by {request.user.get_username()}")
            if already:
                skipped += 1
            else:
                issued.append(credit.id)
        skipped += queryset.filter(credit=True).count()
        if issued:
            self.message_user(request, f"Credit CDR(s) issued: {', '.join(issued)}", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} selected CDR(s) were credits or already credited", messages.WARNING)

    def has_credit_permission(self, request) -> bool:
        return request.user.has_perm("billing.add_cdr") or request.user.is_superuser

    @admin.action(description="Settlement CSV for the partners and months of the selected CDRs")
    def settlement_csv(self, request, queryset) -> HttpResponse:
        """The same CSV as `manage.py settlement`, one block of rows per (partner, month) among the selection
        (each row covers all of that partner's CDRs of that month, not only the selected ones)."""
        keys = sorted(
            {
                (
                    cdr.emsp_country_code,
                    cdr.emsp_party_id,
                    cdr.last_updated.astimezone(dt.UTC).strftime("%Y-%m"),
                )
                for cdr in queryset.only("emsp_country_code", "emsp_party_id", "last_updated")
            }
        )
        rows = [
            row
            for country_code, party_id, month in keys
            for row in settlement_summary(country_code=country_code, party_id=party_id, month=month)
        ]
        response = HttpResponse(settlement_as_csv(rows=rows), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="settlement.csv"'
        return response

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
