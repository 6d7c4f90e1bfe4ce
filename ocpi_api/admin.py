from django.contrib import admin

from ocpi_api.models import ChargingPreferences, ClientInfo, Command, Partner, PartnerToken


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "role", "status", "version", "incoming_token_prefix", "registered_at", "updated_at")
    list_filter = ("status", "role")
    search_fields = ("name", "country_code", "party_id", "incoming_token_prefix")
    readonly_fields = (
        "incoming_token_prefix",
        "last_error",
        "last_error_at",
        "created_at",
        "registered_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "country_code", "party_id", "role", "business_details", "roles", "status")}),
        ("Connection", {"fields": ("versions_url", "version", "endpoints", "outgoing_token", "encode_outgoing_token")}),
        ("Network", {"fields": ("allowed_networks", "last_error", "last_error_at")}),
        ("Their token to us", {"fields": ("incoming_token_prefix",)}),
        ("Dates", {"fields": ("created_at", "registered_at", "updated_at")}),
    )


@admin.register(PartnerToken)
class PartnerTokenAdmin(admin.ModelAdmin):
    list_display = ("uid", "type", "country_code", "party_id", "contract_id", "valid", "whitelist", "last_updated")
    list_filter = ("type", "valid", "whitelist", "country_code")
    search_fields = ("uid", "contract_id", "visual_number", "party_id")
    list_select_related = ("partner",)


@admin.register(ClientInfo)
class ClientInfoAdmin(admin.ModelAdmin):
    list_display = ("country_code", "party_id", "role", "status", "partner", "last_updated")
    list_filter = ("status", "role", "partner")


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    """Commands and charging profile requests partners sent: what we answered, what the charger said, whether the
    partner got the result. Read-only: they are a record."""

    list_display = ("id", "command", "partner", "station", "response", "state", "result", "created_at", "delivered_at")
    list_filter = ("command", "state", "response", "result", "partner")
    search_fields = ("id_tag", "session_id", "reservation_id", "station__identity")
    list_select_related = ("partner", "station")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChargingPreferences)
class ChargingPreferencesAdmin(admin.ModelAdmin):
    """Charging preferences partners PUT for their drivers' sessions, with what we answered. Read-only: a record."""

    list_display = (
        "id",
        "session_id",
        "partner",
        "profile_type",
        "departure_time",
        "energy_need",
        "discharge_allowed",
        "response",
        "created_at",
    )
    list_filter = ("response", "profile_type", "partner")
    search_fields = ("session_id",)
    list_select_related = ("partner",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
