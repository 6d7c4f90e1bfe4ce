from django.contrib import admin

from ocpi_api.models import ClientInfo, Partner, PartnerToken


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "role", "status", "version", "incoming_token_prefix", "registered_at", "updated_at")
    list_filter = ("status", "role")
    search_fields = ("name", "country_code", "party_id", "incoming_token_prefix")
    readonly_fields = ("incoming_token_prefix", "created_at", "registered_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "country_code", "party_id", "role", "business_details", "roles", "status")}),
        ("Connection", {"fields": ("versions_url", "version", "endpoints", "outgoing_token", "encode_outgoing_token")}),
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
