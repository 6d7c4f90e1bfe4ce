"""Staff see a charger whose clock is off: the station page says by how much and when, and the overview lists the
station under "needs attention" while the skew is recent (OCPP_CLOCK_WARNING_HOURS)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cpo.models import ChargingStation

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-SKEW", evses=1)
    return station


def test_the_station_page_shows_the_last_clock_skew_observed(client_as, station):
    ChargingStation.objects.filter(pk=station.pk).update(clock_skew=365 * 86400, clock_skew_at=timezone.now())
    html = client_as("viewer").get(reverse("dashboard:station", args=["CP-SKEW"])).content.decode()
    assert 'data-testid="clock-skew"' in html and "365 days ahead" in html


def test_a_recent_clock_skew_needs_attention_on_the_overview_and_an_old_one_does_not(client_as, station):
    viewer = client_as("viewer")
    ChargingStation.objects.filter(pk=station.pk).update(clock_skew=-1_000_000_000, clock_skew_at=timezone.now())
    html = viewer.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="clock-attention"' in html and "CP-SKEW" in html and "11574 days behind" in html
    ChargingStation.objects.filter(pk=station.pk).update(clock_skew_at=timezone.now() - timedelta(days=3))
    html = viewer.get(reverse("dashboard:overview")).content.decode()
    assert 'data-testid="clock-attention"' not in html


def test_a_station_with_a_sane_clock_shows_no_warning(client_as, station):
    html = client_as("viewer").get(reverse("dashboard:station", args=["CP-SKEW"])).content.decode()
    assert 'data-testid="clock-skew"' not in html
