import pytest

from cpo.models import EVSE, Connector, Location
from cpo.services import station_create, station_secret_check


@pytest.fixture
def location(db):
    return Location.objects.create(
        id="LOC1", name="Test", address="Street 1", city="Town", country="NLD", latitude=52, longitude=4
    )


def test_station_create_generates_a_secret_that_is_only_stored_hashed(location):
    station, secret = station_create(identity="CP-1", location=location, evses=2)
    assert len(secret) >= 16
    assert secret not in station.secret_hash
    assert station_secret_check(secret_hash=station.secret_hash, secret=secret)
    assert not station_secret_check(secret_hash=station.secret_hash, secret=secret + "x")


def test_station_create_makes_one_evse_per_ocpp_connector_with_a_connector_each(location):
    station, _ = station_create(identity="CP-2", location=location, evses=3)
    assert list(EVSE.objects.filter(station=station).values_list("ocpp_evse_id", flat=True)) == [1, 2, 3]
    assert Connector.objects.filter(evse__station=station).count() == 3


def test_a_short_password_is_refused(location):
    with pytest.raises(ValueError, match="a station secret has"):
        station_create(identity="CP-3", location=location, password="short")
