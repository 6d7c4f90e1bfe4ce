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


def test_a_48_character_identity_gets_evse_uids_and_ids_within_the_ocpi_lengths_stable_and_distinct(location):
    """OCPI EVSE.uid is CiString(36) and evse_id CiString(48); OCPP identities may have 48 characters."""
    from cpo.services import evse_id_for, evse_uid_for

    long_a, long_b = "A" * 44 + "-001", "A" * 44 + "-002"
    station, _ = station_create(identity=long_a, location=location, evses=2)
    uids = sorted(station.evses.values_list("uid", flat=True))
    assert all(len(uid) <= 36 for uid in uids) and uids[0].endswith("-1") and uids[1].endswith("-2")
    assert all(len(evse_id) <= 48 for evse_id in station.evses.values_list("evse_id", flat=True))
    assert evse_uid_for(identity=long_a, ocpp_evse_id=1) == uids[0]  # stable
    assert evse_uid_for(identity=long_b, ocpp_evse_id=1) != uids[0]  # the same first 27 characters, another uid
    assert evse_id_for(identity=long_b, ocpp_evse_id=1) != evse_id_for(identity=long_a, ocpp_evse_id=1)
    assert evse_uid_for(identity="CP-1", ocpp_evse_id=3) == "CP-1-3"  # short identities keep their readable uid


def test_new_connectors_get_the_chosen_tariff_else_the_locations_default(location):
    location.default_tariff_id = "LOC-DEFAULT"
    location.save()
    chosen, _ = station_create(identity="CP-T1", location=location, tariff_id="CHOSEN")
    default, _ = station_create(identity="CP-T2", location=location)
    none, _ = station_create(identity="CP-T3", location=location, tariff_id="")
    assert Connector.objects.get(evse__station=chosen).tariff_ids == ["CHOSEN"]
    assert Connector.objects.get(evse__station=default).tariff_ids == ["LOC-DEFAULT"]
    assert Connector.objects.get(evse__station=none).tariff_ids == []
