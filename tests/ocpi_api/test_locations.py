"""Locations Sender interface: what partners pull, page by page, and single objects."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from billing.encoding import ocpi_datetime
from cpo.models import EVSE, Connector, EvseStatus, Location
from tests.ocpi_api.shapes import example, shape_differences

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def set_last_updated(model, pk, when):
    model.objects.filter(pk=pk).update(last_updated=when)  # update() bypasses auto_now


def make_location(index: int, *, when: datetime | None = None, publish=True) -> Location:
    """A location shaped like location_example.json: two EVSEs, the first with two connectors."""
    location = Location.objects.create(
        id=f"LOC{index}",
        publish=publish,
        name="Gent Zuid",
        address="F.Rooseveltlaan 3A",
        city="Gent",
        postal_code="9000",
        country="BEL",
        latitude="51.047599",
        longitude="3.729944",
        parking_type="ON_STREET",
        time_zone="Europe/Brussels",
    )
    for number, connectors in ((1, 2), (2, 1)):
        evse = EVSE.objects.create(
            uid=f"{index}-{number}",
            location=location,
            ocpp_evse_id=number,
            evse_id=f"BE*BEC*E04150300{number}",
            status=EvseStatus.AVAILABLE,
            capabilities=["RESERVABLE"],
            physical_reference=str(number),
            floor_level=f"-{number}",
        )
        for connector in range(1, connectors + 1):
            c = Connector.objects.create(
                evse=evse,
                connector_id=str(connector),
                standard="IEC_62196_T2",
                format="CABLE",
                power_type="AC_3_PHASE",
                max_voltage=220,
                max_amperage=16,
                tariff_ids=["11"],
            )
            set_last_updated(Connector, c.pk, when or T0)
        set_last_updated(EVSE, evse.pk, when or T0)
    set_last_updated(Location, location.pk, when or T0)
    return location


def get(client, headers, url, **params):
    response = client.get(url, params, **headers)
    return response, response.json()


def test_location_has_exactly_the_fields_and_types_of_the_spec_example(client, headers):
    make_location(1)
    response, body = get(client, headers, "/ocpi/2.2.1/locations")
    assert response.status_code == 200 and body["status_code"] == 1000
    spec = example("location_example.json")
    assert shape_differences(body["data"][0], spec) == []
    _, location = get(client, headers, "/ocpi/2.2.1/locations/LOC1")
    assert shape_differences(location["data"], spec) == []
    _, evse = get(client, headers, "/ocpi/2.2.1/locations/LOC1/1-1")
    assert shape_differences(evse["data"], spec["evses"][0]) == []
    _, connector = get(client, headers, "/ocpi/2.2.1/locations/LOC1/1-1/2")
    assert shape_differences(connector["data"], spec["evses"][0]["connectors"][0]) == []
    assert connector["data"]["id"] == "2"
    assert location["data"]["coordinates"] == {"latitude": "51.047599", "longitude": "3.729944"}
    assert location["data"]["country_code"] == "NL" and location["data"]["party_id"] == "CPO"


def test_empty_optional_fields_are_left_out_not_null(client, headers):
    location = Location.objects.create(id="BARE", address="a", city="c", country="NLD", latitude=52, longitude=4)
    evse = EVSE.objects.create(uid="E1", location=location, ocpp_evse_id=1)
    Connector.objects.create(evse=evse, connector_id="1")
    _, body = get(client, headers, "/ocpi/2.2.1/locations/BARE")
    data = body["data"]
    assert None not in data.values()
    assert {"name", "postal_code", "state", "parking_type", "facilities", "opening_times"}.isdisjoint(data)
    assert {"evse_id", "capabilities", "floor_level", "physical_reference"}.isdisjoint(data["evses"][0])
    assert {"max_electric_power", "tariff_ids", "terms_and_conditions"}.isdisjoint(data["evses"][0]["connectors"][0])
    assert data["coordinates"] == {"latitude": "52.000000", "longitude": "4.000000"}


def test_live_evse_status_is_shown(client, headers):
    make_location(1)
    EVSE.objects.filter(uid="1-2").update(status=EvseStatus.CHARGING)
    _, body = get(client, headers, "/ocpi/2.2.1/locations/LOC1/1-2")
    assert body["data"]["status"] == "CHARGING"


def test_unpublished_locations_are_never_shown(client, headers):
    make_location(1, publish=False)
    make_location(2)
    response, body = get(client, headers, "/ocpi/2.2.1/locations")
    assert [loc["id"] for loc in body["data"]] == ["LOC2"] and response["X-Total-Count"] == "1"
    for path in ("/ocpi/2.2.1/locations/LOC1", "/ocpi/2.2.1/locations/LOC1/1-1", "/ocpi/2.2.1/locations/LOC1/1-1/1"):
        response, body = get(client, headers, path)
        assert response.status_code == 404 and body["status_code"] == 2003


@pytest.mark.parametrize(
    "path",
    [
        "/ocpi/2.2.1/locations/NOPE",
        "/ocpi/2.2.1/locations/LOC1/NOPE",
        "/ocpi/2.2.1/locations/LOC1/1-1/9",
        "/ocpi/2.2.1/locations/LOC1/2-1",
    ],
)
def test_unknown_location_evse_or_connector_is_404_2003(client, headers, path):
    make_location(1)
    make_location(2)
    response, body = get(client, headers, path)
    assert response.status_code == 404 and body["status_code"] == 2003


def test_pages_oldest_first_with_total_limit_and_next_link(client, headers, settings):
    settings.OCPI_PAGINATION_MAX_LIMIT = 2
    for index in range(5):
        make_location(index, when=T0 + timedelta(hours=5 - index))  # LOC4 is the oldest
    response, body = get(client, headers, "/ocpi/2.2.1/locations", limit=1000)
    assert [loc["id"] for loc in body["data"]] == ["LOC4", "LOC3"]
    assert response["X-Total-Count"] == "5" and response["X-Limit"] == "2"
    seen = [loc["id"] for loc in body["data"]]
    while "Link" in response:
        link = response["Link"]
        assert link.endswith('>; rel="next"') and link.startswith("<http://testserver/ocpi/2.2.1/locations?")
        url = link[1 : link.index(">")]
        response = client.get(url, **headers)
        seen += [loc["id"] for loc in response.json()["data"]]
    assert seen == ["LOC4", "LOC3", "LOC2", "LOC1", "LOC0"]


def test_date_from_is_inclusive_date_to_exclusive_and_the_link_keeps_them(client, headers):
    for index in range(6):
        make_location(index, when=T0 + timedelta(hours=index))
    params = {"date_from": "2024-01-01T01:00:00Z", "date_to": "2024-01-01T05:00:00Z", "limit": 2}
    response, body = get(client, headers, "/ocpi/2.2.1/locations", **params)
    assert [loc["id"] for loc in body["data"]] == ["LOC1", "LOC2"]
    assert response["X-Total-Count"] == "4"
    query = parse_qs(urlsplit(response["Link"][1 : response["Link"].index(">")]).query)
    assert query == {
        "offset": ["2"],
        "limit": ["2"],
        "date_from": ["2024-01-01T01:00:00Z"],
        "date_to": ["2024-01-01T05:00:00Z"],
    }
    response, body = get(client, headers, "/ocpi/2.2.1/locations", offset=2, **params)
    assert [loc["id"] for loc in body["data"]] == ["LOC3", "LOC4"]
    assert "Link" not in response
    # Without a zone designator a DateTime is UTC.
    _, body = get(client, headers, "/ocpi/2.2.1/locations", date_from="2024-01-01T05:00:00")
    assert [loc["id"] for loc in body["data"]] == ["LOC5"]


def test_a_changed_connector_or_evse_moves_the_location_into_a_later_window(client, headers):
    make_location(1, when=T0)
    make_location(2, when=T0)
    later = timezone.now()
    Connector.objects.filter(evse__uid="1-1", connector_id="2").update(last_updated=later)
    EVSE.objects.filter(uid="2-2").update(last_updated=later)
    _, body = get(client, headers, "/ocpi/2.2.1/locations", date_from=(later - timedelta(seconds=1)).isoformat())
    assert sorted(loc["id"] for loc in body["data"]) == ["LOC1", "LOC2"]
    loc1 = next(loc for loc in body["data"] if loc["id"] == "LOC1")
    assert loc1["last_updated"] == ocpi_datetime(later)
    assert loc1["evses"][0]["last_updated"] == loc1["last_updated"]
    assert loc1["evses"][1]["last_updated"] == "2024-01-01T00:00:00Z"
    _, body = get(client, headers, "/ocpi/2.2.1/locations", date_to=(later - timedelta(seconds=1)).isoformat())
    assert body["data"] == []


def test_offset_past_the_end_is_an_empty_page(client, headers):
    make_location(1)
    response, body = get(client, headers, "/ocpi/2.2.1/locations", offset=5)
    assert response.status_code == 200 and body["status_code"] == 1000 and body["data"] == []
    assert response["X-Total-Count"] == "1" and "Link" not in response


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "-1"},
        {"offset": "abc"},
        {"limit": "0"},
        {"limit": "1.5"},
        {"date_from": "yesterday"},
        {"date_to": "2024-13-45T00:00:00Z"},
    ],
)
def test_bad_pagination_parameters_are_200_2001(client, headers, params):
    response, body = get(client, headers, "/ocpi/2.2.1/locations", **params)
    assert response.status_code == 200 and body["status_code"] == 2001
    assert body["status_message"]


def test_another_partner_sees_the_same_locations(client, headers, other_headers):
    make_location(1)
    assert (
        get(client, headers, "/ocpi/2.2.1/locations")[1]["data"]
        == get(client, other_headers, "/ocpi/2.2.1/locations")[1]["data"]
    )
