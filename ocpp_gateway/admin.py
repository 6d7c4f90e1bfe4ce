from django.contrib import admin

from ocpp_gateway.models import (
    ChargingProfile,
    CompositeSchedule,
    ConfigurationBaseline,
    FirmwareImage,
    FirmwareUpdate,
    GatewayProcess,
    MessageLog,
    MeterValue,
    StationAuthFailure,
    StationCertificate,
    Transaction,
    TransactionEvent,
)


class TransactionEventInline(admin.TabularInline):
    model = TransactionEvent
    extra = 0
    can_delete = False
    readonly_fields = ("seq_no", "event_type", "trigger_reason", "timestamp", "offline", "payload")


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = (
        "transaction_id",
        "station",
        "ocpp_evse_id",
        "id_tag",
        "auth_status",
        "status",
        "started_at",
        "ended_at",
        "meter_start",
        "meter_stop",
        "stop_reason",
        "ended_by",
    )
    list_filter = ("status", "ended_by", "ocpp_version", "auth_status", "stop_reason")
    search_fields = ("transaction_id", "station__identity", "id_tag")
    date_hierarchy = "started_at"
    list_select_related = ("station",)
    inlines = [TransactionEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]  # what chargers said is a record, not for editing


@admin.register(MeterValue)
class MeterValueAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "station", "transaction", "measurand", "value", "unit", "phase", "context")
    list_filter = ("measurand", "context", "unit")
    search_fields = ("station__identity", "transaction__transaction_id")
    list_select_related = ("station", "transaction")
    raw_id_fields = ("station", "transaction")


@admin.register(MessageLog)
class MessageLogAdmin(admin.ModelAdmin):
    """The OCPP message log; filter by station (search its identity) to see one charger's conversation."""

    list_display = (
        "created_at",
        "identity",
        "direction",
        "message_type",
        "action",
        "unique_id",
        "clock_skew",
        "short_payload",
    )
    list_filter = ("direction", "message_type", "action", ("clock_skew", admin.EmptyFieldListFilter))
    search_fields = ("identity", "unique_id", "action")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="payload")
    def short_payload(self, obj: MessageLog) -> str:
        return obj.payload if len(obj.payload) <= 120 else obj.payload[:117] + "..."


@admin.register(StationAuthFailure)
class StationAuthFailureAdmin(admin.ModelAdmin):
    """Refused charger handshakes and lockouts: the brute-force audit trail (read-only)."""

    list_display = ("created_at", "identity", "address", "reason", "station")
    list_filter = ("reason",)
    search_fields = ("identity", "address")
    date_hierarchy = "created_at"
    list_select_related = ("station",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ChargingProfile)
class ChargingProfileAdmin(admin.ModelAdmin):
    """Every charging profile sent to a station (partner, staff, load planner) and the charger's answer."""

    list_display = (
        "created_at",
        "station",
        "ocpp_evse_id",
        "purpose",
        "limit",
        "charging_rate_unit",
        "source",
        "status",
    )
    list_filter = ("source", "purpose", "status")
    list_display_links = ("created_at",)
    search_fields = ("station__identity",)
    list_select_related = ("station",)
    readonly_fields = [f.name for f in ChargingProfile._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CompositeSchedule)
class CompositeScheduleAdmin(admin.ModelAdmin):
    """Composite schedules staff asked stations for (GetCompositeSchedule) and what each answered; a record."""

    list_display = ("created_at", "station", "ocpp_evse_id", "duration", "status", "charging_rate_unit", "requested_by")
    list_filter = ("status",)
    list_display_links = ("created_at",)
    search_fields = ("station__identity",)
    list_select_related = ("station",)
    readonly_fields = [f.name for f in CompositeSchedule._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StationCertificate)
class StationCertificateAdmin(admin.ModelAdmin):
    """Certificates signed for stations (profile 3); a record, not for editing."""

    list_display = ("station", "serial_number", "subject", "status", "not_before", "not_after")
    list_filter = ("status", "certificate_type")
    search_fields = ("station__identity", "serial_number", "subject")
    list_select_related = ("station",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(ConfigurationBaseline)
class ConfigurationBaselineAdmin(admin.ModelAdmin):
    """Expected configuration per charger model; differences are flagged on the station page."""

    list_display = ("vendor", "model", "name", "value")
    list_filter = ("vendor", "model")
    search_fields = ("name", "value")


@admin.register(FirmwareImage)
class FirmwareImageAdmin(admin.ModelAdmin):
    """Upload a firmware image (served to stations through signed, expiring links) or reference one by URL; campaigns
    and single-station updates start from the dashboard."""

    list_display = ("name", "version", "file", "location", "created_at")
    search_fields = ("name", "version")


@admin.register(FirmwareUpdate)
class FirmwareUpdateAdmin(admin.ModelAdmin):
    list_display = ("station", "image", "campaign", "status", "charger_status", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("station__identity",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GatewayProcess)
class GatewayProcessAdmin(admin.ModelAdmin):
    """The gateway processes holding leases (services/liveness.py): which are alive, since when. Written by the
    processes themselves."""

    list_display = ("id", "host", "pid", "started_at", "renewed_since", "renewed_at")
    ordering = ("-started_at",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
