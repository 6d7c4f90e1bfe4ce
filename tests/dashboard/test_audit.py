"""The audit log page (admins): who did what, when, to which station and how it ended, filtered, and as CSV whose
text cannot run as a spreadsheet formula. Others get a 403 page that keeps the layout and says why."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.urls import reverse

from cpo.dashboard.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries(station_factory):
    station, _ = station_factory("CP-AU", evses=1)
    rows = [
        (
            "olga",
            "RemoteStopTransaction",
            station,
            True,
            {"status": "Accepted"},
            "",
            datetime(2026, 3, 9, 10, tzinfo=UTC),
        ),
        ("olga", "Reset", station, False, None, "offline: CP-AU is offline", datetime(2026, 3, 10, 9, tzinfo=UTC)),
        ("=cmd|' /C calc'!A0", "PartnerInvite", None, True, None, "", datetime(2026, 3, 10, 11, tzinfo=UTC)),
    ]
    for username, action, st, ok, answer, error, at in rows:
        entry = AuditLog.objects.create(
            username=username,
            action=action,
            station=st,
            identity=st.identity if st else "",
            ok=ok,
            answer=answer,
            error=error,
            payload={"type": "Hard"} if action == "Reset" else {},
        )
        AuditLog.objects.filter(pk=entry.pk).update(created_at=at)


def test_admins_read_the_audit_log_newest_first_with_the_result_as_words(client_as, entries):
    html = client_as("admin").get(reverse("dashboard:audit")).content.decode()
    what = [
        html.index(f'data-testid="what">{action}<') for action in ("PartnerInvite", "Reset", "RemoteStopTransaction")
    ]
    assert what == sorted(what)
    assert ">Accepted<" in html and "offline: CP-AU is offline" in html and "type: Hard" in html


def test_the_audit_log_is_filtered_by_who_what_station_result_and_day(client_as, entries):
    admin_client = client_as("admin")
    url = reverse("dashboard:audit")

    def actions(**params) -> list[str]:
        return [e.action for e in admin_client.get(url, params).context["page"]]

    assert actions(username="olga") == ["Reset", "RemoteStopTransaction"]
    assert actions(result="failed") == ["Reset"]
    assert actions(identity="cp-au", action="RemoteStopTransaction") == ["RemoteStopTransaction"]
    assert actions(date_from="2026-03-10", date_to="2026-03-10") == ["PartnerInvite", "Reset"]
    refused = admin_client.get(url, {"date_from": "2026-03-10", "date_to": "2026-03-01"})
    assert "The period ends before it starts" in refused.content.decode()


def test_the_audit_log_exports_as_safe_csv_with_the_filters(client_as, entries):
    response = client_as("admin").get(reverse("dashboard:audit-export"), {"date_from": "2026-03-10"})
    assert response["Content-Disposition"] == 'attachment; filename="audit-log.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["username"], r["action"], r["result"], r["answer_or_error"]) for r in rows] == [
        ("'=cmd|' /C calc'!A0", "PartnerInvite", "ok", "answered with no content"),
        ("olga", "Reset", "failed", "offline: CP-AU is offline"),
    ]
    assert rows[1]["created_at"] == "2026-03-10T09:00:00Z"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_others_get_a_403_page_with_the_layout_and_the_reason(client_as, entries, role):
    user = client_as(role)
    for name in ("dashboard:audit", "dashboard:audit-export"):
        response = user.get(reverse(name))
        assert response.status_code == 403
    html = user.get(reverse("dashboard:audit")).content.decode()
    assert 'data-testid="reason">This needs the admin role.<' in html
    assert f"with the <b>{role}</b> role" in html
    assert 'id="main-nav"' in html and "dashboard.css" in html
    assert "Audit log</a>" not in html  # the navigation does not offer what the role may not open


def test_the_audit_log_is_in_the_django_admin_read_only():
    assert AuditLog in admin.site._registry
