from django.contrib import admin
from django.http import HttpRequest

from cpo.dashboard.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the audit log records what staff did; nobody edits or deletes that record, not even in the admin."""

    list_display = ("created_at", "username", "action", "identity", "ok", "error")
    list_filter = ("ok", "action")
    search_fields = ("username", "identity", "action")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False
