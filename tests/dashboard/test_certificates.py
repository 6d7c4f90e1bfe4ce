"""The station page shows the station's client certificate and warns when it expires soon."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from ocpp_gateway.models import StationCertificate


def certificate(station, *, days_left: float, serial: str) -> StationCertificate:
    now = timezone.now()
    return StationCertificate.objects.create(
        station=station,
        serial_number=serial,
        subject=f"CN={station.identity},O=Test CPO",
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=days_left),
        certificate_pem="-----BEGIN CERTIFICATE-----\n...",
        status=StationCertificate.Status.INSTALLED,
    )


def test_the_station_page_warns_about_a_certificate_that_expires_soon(client_as, station_factory, settings):
    settings.OCPP_CERTIFICATE_EXPIRY_ALERT_DAYS = 30
    station, _ = station_factory("CP-PAGE", security_profile=3)
    certificate(station, days_left=7, serial="BB01")
    page = client_as("viewer").get(reverse("dashboard:station", args=["CP-PAGE"])).content.decode()
    assert "BB01" in page
    assert 'data-testid="certificate-alert"' in page


def test_a_renewed_certificate_is_shown_without_a_warning(client_as, station_factory):
    station, _ = station_factory("CP-PAGE", security_profile=3)
    certificate(station, days_left=7, serial="BB01")
    certificate(station, days_left=365, serial="BB02")
    page = client_as("viewer").get(reverse("dashboard:station", args=["CP-PAGE"])).content.decode()
    assert "BB02" in page and "BB01" not in page
    assert 'data-testid="certificate-alert"' not in page
