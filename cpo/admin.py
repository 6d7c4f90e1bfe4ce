from urllib.parse import quote

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from cpo.models import EVSE, Alert, ChargingStation, Connector, LoadGroup, Location, Token


class EVSEInline(admin.TabularInline):
    model = EVSE
    extra = 0
    fields = (
        "uid",
        "evse_id",
        "station",
        "ocpp_evse_id",
        "registered",
        "status",
        "ocpp_status",
        "physical_reference",
    )
    readonly_fields = ("status", "ocpp_status")
    show_change_link = True


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "city", "country", "parking_type", "publish", "default_tariff_id", "last_updated")
    list_filter = ("publish", "country", "parking_type")
    search_fields = ("id", "name", "address", "city", "postal_code")
    inlines = [EVSEInline]


class ConnectorInline(admin.TabularInline):
    model = Connector
    extra = 0


@admin.register(EVSE)
class EVSEAdmin(admin.ModelAdmin):
    list_display = (
        "uid",
        "evse_id",
        "location",
        "station",
        "ocpp_evse_id",
        "registered",
        "status",
        "ocpp_status",
        "status_updated",
    )
    list_filter = ("status", "registered", "location")
    search_fields = ("uid", "evse_id", "station__identity", "location__name")
    list_select_related = ("location", "station")
    inlines = [ConnectorInline]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ("evse", "connector_id", "standard", "format", "power_type", "max_electric_power", "tariff_ids")
    list_filter = ("standard", "power_type", "format")
    search_fields = ("evse__uid", "evse__evse_id")
    list_select_related = ("evse",)


@admin.action(description="Accept selected stations (BootNotification answers Accepted)")
def accept_stations(modeladmin, request, queryset):
    queryset.update(registration_status="Accepted")


@admin.register(ChargingStation)
class ChargingStationAdmin(admin.ModelAdmin):
    list_display = (
        "identity",
        "location",
        "vendor",
        "model",
        "firmware_version",
        "ocpp_version",
        "registration_status",
        "security_profile",
        "online",
        "last_seen",
    )
    list_filter = ("online", "registration_status", "security_profile", "ocpp_version", "vendor", "location")
    search_fields = ("identity", "vendor", "model", "serial_number", "location__name")
    list_select_related = ("location",)
    readonly_fields = (
        "message_log_link",
        "auth_failures_link",
        "online",
        "connected_since",
        "last_seen",
        "last_boot",
        "connection_channel",
        "created_at",
        "ocpp_status",
        "ocpp_error_code",
        "status_info",
        "vendor_id",
        "vendor_error_code",
        "status_updated",
    )
    exclude = ("secret_hash",)
    actions = [accept_stations]

    @admin.display(description="OCPP message log")
    def message_log_link(self, obj: ChargingStation) -> str:
        url = reverse("admin:ocpp_gateway_messagelog_changelist") + f"?identity={quote(obj.identity)}"
        return format_html('<a href="{}">frames of {}</a>', url, obj.identity)

    @admin.display(description="Failed authentications")
    def auth_failures_link(self, obj: ChargingStation) -> str:
        url = reverse("admin:ocpp_gateway_stationauthfailure_changelist") + f"?identity={quote(obj.identity)}"
        return format_html('<a href="{}">refused handshakes of {}</a>', url, obj.identity)


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("uid", "type", "contract_id", "visual_number", "group_id", "valid", "expiry_date")
    list_filter = ("type", "valid")
    search_fields = ("uid", "contract_id", "visual_number")


@admin.register(LoadGroup)
class LoadGroupAdmin(admin.ModelAdmin):
    """Load management: a site's current limit; the gateway applies a change within LOAD_MANAGEMENT_STATIONS_TTL."""

    list_display = ("name", "location", "limit_amps", "phase_limits", "phases", "min_charging_amps", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "location__id", "location__name")
    autocomplete_fields = ("evses",)
    fieldsets = (
        (None, {"fields": ("name", "location", "evses", "enabled")}),
        ("Limit", {"fields": ("phases", "limit_amps", "min_charging_amps", "voltage")}),
        (
            "A limit per phase",
            {
                "fields": (("limit_amps_l1", "limit_amps_l2", "limit_amps_l3"),),
                "description": "Where other loads share the connection on one phase, give that phase less; empty: "
                "the limit above. A single-phase group has only L1.",
            },
        ),
        ("Times of day", {"fields": ("schedule",)}),
    )

    @admin.display(description="Per phase (A)")
    def phase_limits(self, obj: LoadGroup) -> str:
        limits = [getattr(obj, field) for field in LoadGroup.PHASE_LIMIT_FIELDS.values()]
        if all(limit is None for limit in limits):
            return "–"
        phases = range(1, obj.phases + 1) if obj.phases == 1 else range(1, 4)
        return " · ".join(f"L{p} {limits[p - 1] if limits[p - 1] is not None else obj.limit_amps}" for p in phases)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are raised and resolved by the platform, and by operators on the dashboard (audited)."""

    list_display = ("kind", "subject", "count", "first_seen", "last_seen", "resolved_at", "resolved_by")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("subject", "message")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
