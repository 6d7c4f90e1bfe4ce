"""Staff read the dashboard's audit log in the admin; nobody adds, changes or deletes an entry there."""

from django.urls import reverse

from cpo.dashboard.models import AuditLog


def test_the_audit_log_is_listed_and_shown_read_only(admin_client, station_factory):
    station, _ = station_factory("CP-AUDIT", evses=1)
    entry = AuditLog.objects.create(
        username="olga",
        station=station,
        identity=station.identity,
        action="Reset",
        payload={"type": "Soft"},
        ok=True,
        answer={"status": "Accepted"},
    )
    listing = admin_client.get(reverse("admin:dashboard_auditlog_changelist")).content.decode()
    assert "olga" in listing and "CP-AUDIT" in listing and "Reset" in listing
    assert reverse("admin:dashboard_auditlog_add") not in listing
    detail = admin_client.get(reverse("admin:dashboard_auditlog_change", args=[entry.pk]))
    assert detail.status_code == 200 and 'name="action"' not in detail.content.decode()  # no input: read-only
    assert admin_client.get(reverse("admin:dashboard_auditlog_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:dashboard_auditlog_change", args=[entry.pk]), {"action": "Tampered"}
        ).status_code
        == 403
    )
    assert (
        admin_client.post(reverse("admin:dashboard_auditlog_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditLog.objects.get().action == "Reset"
