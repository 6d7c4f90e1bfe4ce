"""The stations list finds the charger staff look for: filtered by status (faulted, offline, charging, available),
sorted by a column (again: reversed), searched by identity, place or vendor, with when each was last seen."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from cpo.dashboard.selectors.stations import station_list
from cpo.models import EVSE, ChargingStation

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(station_factory):
    """CP-1 charging and online, CP-2 with a connector out of order, CP-3 offline and never seen, CP-4 online with a
    station-wide fault reported (Faulted / PowerMeterFailure), CP-5 online and available."""
    now = datetime.now(UTC)
    for number in range(1, 6):
        station_factory(f"CP-{number}", evses=2)
    ChargingStation.objects.filter(identity__in=["CP-1", "CP-2", "CP-4", "CP-5"]).update(online=True)
    for number, minutes in [(1, 1), (2, 30), (4, 5), (5, 60 * 26)]:
        ChargingStation.objects.filter(identity=f"CP-{number}").update(last_seen=now - timedelta(minutes=minutes))
    ChargingStation.objects.filter(identity="CP-4").update(ocpp_status="Faulted", ocpp_error_code="PowerMeterFailure")
    ChargingStation.objects.filter(identity="CP-5").update(vendor="Alfen", model="Eve")
    EVSE.objects.filter(station__identity="CP-1", ocpp_evse_id=1).update(status="CHARGING")
    EVSE.objects.filter(station__identity="CP-2", ocpp_evse_id=2).update(status="OUTOFORDER")
    EVSE.objects.filter(station__identity="CP-5").update(status="AVAILABLE")


def identities(**kwargs) -> list[str]:
    return [s.identity for s in station_list(**kwargs)]


def test_stations_are_filtered_by_status(fleet):
    assert identities(status="faulted") == ["CP-2", "CP-4"]
    assert identities(status="offline") == ["CP-3"]
    assert identities(status="charging") == ["CP-1"]
    assert identities(status="available") == ["CP-5"]


def test_stations_are_sorted_by_last_seen_and_by_faults(fleet):
    assert identities(sort="-last_seen") == ["CP-1", "CP-4", "CP-2", "CP-5", "CP-3"]  # never seen: last
    assert identities(sort="last_seen") == ["CP-5", "CP-2", "CP-4", "CP-1", "CP-3"]
    assert identities(sort="-faulted")[0] == "CP-2"
    assert identities(sort="nonsense") == ["CP-1", "CP-2", "CP-3", "CP-4", "CP-5"]


def test_stations_are_searched_by_vendor_too(fleet):
    assert identities(search="alfen") == ["CP-5"]


def test_the_list_page_filters_sorts_and_shows_last_seen(client_as, fleet):
    viewer = client_as("viewer")
    html = viewer.get(reverse("dashboard:stations"), {"status": "faulted", "sort": "-last_seen"}).content.decode()
    assert html.index('data-station="CP-4"') < html.index('data-station="CP-2"')
    assert 'data-station="CP-1"' not in html
    assert "PowerMeterFailure" in html
    assert '<option value="faulted" selected>' in html
    # The column being sorted offers the other direction, keeping the filter.
    assert 'href="?status=faulted&amp;sort=last_seen" data-sort="last_seen"' in html
    live = viewer.get(reverse("dashboard:stations-live"), {"status": "offline"}).content.decode()
    assert 'data-station="CP-3"' in live and "never" in live and "<html" not in live
    assert "minutes ago" in viewer.get(reverse("dashboard:stations")).content.decode()


def test_status_names_read_as_words(client_as, fleet):
    html = client_as("viewer").get(reverse("dashboard:station", args=["CP-2"])).content.decode()
    assert 'data-status="OUTOFORDER">Out of order</span>' in html
    assert ">OUTOFORDER<" not in html
