"""Staff see open alerts on the overview and on the alerts page; operators resolve them by hand, audited."""

import pytest
from django.urls import reverse

from cpo.alerts import alert_raise
from cpo.dashboard.models import AuditLog
from cpo.models import Alert, AlertKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def tamper():
    alert = alert_raise(kind=AlertKind.SECURITY_EVENT, subject="CP-1 TamperDetectionActivated", message="lid open")
    alert_raise(kind=AlertKind.SECURITY_EVENT, subject="CP-1 TamperDetectionActivated", message="lid open again")
    return alert


def test_open_alerts_are_on_the_overview_and_the_alerts_page(client_as, tamper):
    client = client_as("viewer")
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="overview-alerts"' in overview and "CP-1 TamperDetectionActivated" in overview
    assert "lid open again" in overview and "2×" in overview
    page = client.get(reverse("dashboard:alerts")).content.decode()
    assert "CP-1 TamperDetectionActivated" in page and 'data-testid="resolve"' not in page  # viewers cannot resolve


def test_a_viewer_cannot_resolve(client_as, tamper):
    response = client_as("viewer").post(reverse("dashboard:alert-resolve", args=[tamper.pk]))
    assert response.status_code == 403
    assert Alert.objects.get().resolved_at is None and not AuditLog.objects.exists()


def test_an_operator_resolves_an_alert_and_it_is_audited(client_as, tamper):
    client = client_as("operator")
    assert 'data-testid="resolve"' in client.get(reverse("dashboard:alerts")).content.decode()
    response = client.post(reverse("dashboard:alert-resolve", args=[tamper.pk]))
    assert response.status_code == 302 and response.url == reverse("dashboard:alerts")
    alert = Alert.objects.get()
    assert alert.resolved_at is not None and alert.resolved_by == "user-operator"
    audit = AuditLog.objects.get()
    assert (audit.username, audit.action, audit.payload["subject"]) == (
        "user-operator",
        "AlertResolve",
        "CP-1 TamperDetectionActivated",
    )
    client.post(reverse("dashboard:alert-resolve", args=[tamper.pk]))  # twice: nothing more happens
    assert AuditLog.objects.count() == 1
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="overview-alerts"' not in overview


def test_resolving_an_unknown_alert_is_404(client_as):
    assert client_as("operator").post(reverse("dashboard:alert-resolve", args=[999])).status_code == 404
