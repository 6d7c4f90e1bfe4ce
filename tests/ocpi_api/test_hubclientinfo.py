"""HubClientInfo Receiver interface: a hub tells us which parties behind it are connected."""

import json

import pytest

from ocpi_api.models import ClientInfo
from tests.ocpi_api.factories import auth, make_partner

pytestmark = pytest.mark.django_db
URL = "/ocpi/2.2.1/hubclientinfo/NL/ALL"
# The specification's example (mod_hub_client_info.asciidoc) without its trailing comma, plus last_updated,
# which the ClientInfo object requires.
EXAMPLE = {
    "country_code": "NL",
    "party_id": "ALL",
    "role": "CPO",
    "status": "PLANNED",
    "last_updated": "2019-06-19T02:11:11Z",
}


@pytest.fixture
def hub_headers(db):
    make_partner(token="hub-token", country_code="NL", party_id="HUB", role="HUB")
    return auth("hub-token")


def put(client, headers, body, url=URL):
    return client.put(url, data=json.dumps(body), content_type="application/json", **headers)


def test_put_then_get_and_update(client, hub_headers):
    response = put(client, hub_headers, EXAMPLE)
    assert response.status_code == 201 and response.json()["status_code"] == 1000
    assert "OCPI-from-party-id" not in response  # configuration module: not routed
    got = client.get(URL, **hub_headers).json()
    assert got["status_code"] == 1000 and got["data"] == EXAMPLE
    response = put(client, hub_headers, {**EXAMPLE, "status": "CONNECTED"})
    assert response.status_code == 200
    assert ClientInfo.objects.get().status == "CONNECTED"


def test_unknown_client_info_is_404_2003(client, hub_headers):
    response = client.get("/ocpi/2.2.1/hubclientinfo/DE/XYZ", **hub_headers)
    assert response.status_code == 404 and response.json()["status_code"] == 2003


def test_each_hub_sees_only_what_it_pushed(client, hub_headers):
    put(client, hub_headers, EXAMPLE)
    make_partner(token="other-hub-token", country_code="DE", party_id="HUB", role="HUB")
    assert client.get(URL, **auth("other-hub-token")).status_code == 404


@pytest.mark.parametrize(
    "changes",
    [{"party_id": "OTH"}, {"status": "ASLEEP"}, {"role": "KING"}, {"last_updated": None}, {"country_code": 31}],
)
def test_bad_client_info_is_200_2001(client, hub_headers, changes):
    response = put(client, hub_headers, {**EXAMPLE, **changes})
    assert response.status_code == 200 and response.json()["status_code"] == 2001
    assert not ClientInfo.objects.exists()


def test_malformed_json_and_missing_token(client, hub_headers):
    response = client.put(URL, data="{", content_type="application/json", **hub_headers)
    assert response.status_code == 400 and response.json()["status_code"] == 2001
    assert put(client, {}, EXAMPLE).status_code == 401
    assert put(client, auth("nope"), EXAMPLE).status_code == 401
