"""Every answer under /ocpi/ is the envelope with the HTTP and OCPI status the specification gives it
(status_codes.asciidoc, transport_and_format.asciidoc): what a hostile or sloppy partner sends never gets a 500, an
HTML page or DRF's own format; once a request reached the OCPI layer (valid JSON, an existing resource, an
authenticated and authorized sender) the HTTP status is not an error.

Server-level limits (header and body sizes on a real daphne) are in test_transport_limits.py."""

import json

import pytest

from ocpi_api.models import ClientInfo, PartnerToken
from tests.ocpi_api.factories import auth, make_partner
from tests.ocpi_api.shapes import example
from tests.ocpi_api.test_transport import assert_envelope

pytestmark = pytest.mark.django_db
TOKEN_URL = "/ocpi/2.2.1/tokens/NL/EXM/012345678"


def put(client, url, body, headers, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.put(url, data=data, content_type="application/json", **headers, **extra)


def token(**changes):
    return {**example("token_put_example.json"), "country_code": "NL", "party_id": "EXM", **changes}


# --- The transport layer: what is not parsed JSON is HTTP 400 (status_codes: "When a message does not contain a
# valid JSON string, the HTTP error 400 - Bad request MUST be returned.")


def test_a_body_nested_50000_levels_deep_is_400_2001_not_a_server_error(client, headers):
    body = assert_envelope(put(client, TOKEN_URL, "[" * 50_000 + "]" * 50_000, headers), 400, 2001)
    assert "nested" in body["status_message"]
    assert not PartnerToken.objects.exists()


def test_a_body_nested_deeper_than_any_ocpi_object_is_refused_before_it_reaches_a_serializer(client, headers):
    deep = token(energy_contract={"supplier_name": "x", "contract_id": "c", "n": {"n": {"n": {"n": {}}}}})
    for _ in range(40):
        deep = {"a": deep}
    assert_envelope(put(client, TOKEN_URL, deep, headers), 400, 2001)


def test_malformed_json_is_400_2001(client, headers):
    assert_envelope(put(client, TOKEN_URL, '{"uid": ', headers), 400, 2001)


def test_a_body_above_the_limit_is_413_before_it_is_parsed_or_the_token_checked(client, headers, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = token(contract_id="X" * 20_000)
    assert_envelope(put(client, TOKEN_URL, big, headers), 413, 2000)
    assert_envelope(put(client, TOKEN_URL, big, auth("nobody")), 413, 2000)
    assert not PartnerToken.objects.exists()
    assert_envelope(put(client, TOKEN_URL, token(), headers), 201, 1000)


# --- The OCPI layer: HTTP 200 with the OCPI status


def test_valid_json_with_bad_fields_is_http_200_with_2001(client, headers):
    body = assert_envelope(put(client, TOKEN_URL, token(whitelist="SOMETIMES", valid="yes"), headers), 200, 2001)
    assert "whitelist" in body["status_message"] and "valid" in body["status_message"]
    assert not PartnerToken.objects.exists()
    assert_envelope(put(client, TOKEN_URL, [1, 2], headers), 200, 2001)
    assert_envelope(client.get("/ocpi/2.2.1/locations", {"limit": "many"}, **headers), 200, 2001)


def test_get_of_an_object_that_does_not_exist_stays_404(client, headers):
    assert_envelope(client.get("/ocpi/2.2.1/locations/NOWHERE", **headers), 404, 2003)
    assert_envelope(client.get(TOKEN_URL, **headers), 404, 2004)


# --- Unknown endpoints, methods and OPTIONS


@pytest.mark.parametrize("path", ["/ocpi/2.2.1/nothing-here", "/ocpi/", "/ocpi/2.2.1/tokens", "/ocpi/2.2.2/versions"])
def test_unknown_endpoints_are_404_with_a_generic_client_error(client, headers, path):
    body = assert_envelope(client.get(path, **headers), 404, 2000)
    assert "location" not in body["status_message"].lower()


@pytest.mark.parametrize("path", ["/ocpi/versions", "/ocpi/2.2.1/locations", TOKEN_URL, "/ocpi/2.2.1/nothing"])
def test_options_is_answered_in_the_envelope_not_with_drf_metadata(client, headers, path):
    response = client.options(path, **headers)
    assert response.status_code in (404, 405)
    body = assert_envelope(response, response.status_code, 2000)
    assert body["data"] is None and "OPTIONS" not in response.get("Allow", "")
    assert_envelope(client.options(path), 401 if "nothing" not in path else 404, 2000)


def test_an_unexpected_error_in_a_view_is_500_3000_in_the_envelope(client, headers, monkeypatch):
    from ocpi_api import selectors

    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "partner_token_get", broken)
    body = assert_envelope(client.get(TOKEN_URL, **headers), 500, 3000)
    assert "fire" not in body["status_message"]


# --- Routing headers (transport_and_format "Message Routing Headers")


def routed(client, headers, *, to=None, sender=None, path="/ocpi/2.2.1/locations"):
    extra = {}
    if to:
        extra.update(HTTP_OCPI_TO_COUNTRY_CODE=to[0], HTTP_OCPI_TO_PARTY_ID=to[1])
    if sender:
        extra.update(HTTP_OCPI_FROM_COUNTRY_CODE=sender[0], HTTP_OCPI_FROM_PARTY_ID=sender[1])
    return client.get(path, **headers, **extra)


def test_a_request_addressed_to_a_party_that_is_not_us_is_refused(client, headers):
    body = assert_envelope(routed(client, headers, to=("DE", "XYZ"), sender=("NL", "EXM")), 400, 2001)
    assert "DE/XYZ" in body["status_message"] and body["data"] is None
    assert_envelope(routed(client, headers, to=("nl", "cpo"), sender=("NL", "EXM")), 200, 1000)  # CiString
    # Half an address is no address.
    assert_envelope(client.get("/ocpi/2.2.1/locations", HTTP_OCPI_TO_PARTY_ID="CPO", **headers), 400, 2001)


def test_the_answer_is_addressed_to_the_authenticated_partner_never_to_a_party_it_names(client, headers):
    other = make_partner(token="token-of-partner-two", country_code="DE", party_id="OTH")
    body = assert_envelope(routed(client, headers, to=("NL", "CPO"), sender=("DE", "OTH")), 400, 2001)
    assert "DE/OTH" in body["status_message"]
    response = routed(client, headers, to=("NL", "CPO"), sender=("NL", "EXM"))
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("NL", "EXM")
    response = routed(client, auth("token-of-partner-two"))
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "OTH")
    assert other.pk


def test_a_platform_may_send_from_any_of_its_own_parties(client):
    from ocpi_api.services import partner_parties_claim

    platform = make_partner(token="platform-token", country_code="NL", party_id="PL1")
    partner_parties_claim(partner=platform, parties={("NL", "PL1"), ("BE", "PL2")})
    response = routed(client, auth("platform-token"), to=("NL", "CPO"), sender=("be", "pl2"))
    assert_envelope(response, 200, 1000)
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("BE", "PL2")


def test_configuration_modules_take_no_routing_headers_into_account(client, headers):
    assert_envelope(routed(client, headers, to=("DE", "XYZ"), path="/ocpi/versions"), 200, 1000)


# --- Hub client info: only a hub pushes it (mod_hub_client_info: "Data owner: Hub")

CLIENT_INFO = {
    "country_code": "NL",
    "party_id": "ALL",
    "role": "CPO",
    "status": "PLANNED",
    "last_updated": "2019-06-19T02:11:11Z",
}


def test_hubclientinfo_from_a_partner_that_is_not_a_hub_is_refused(client, headers):
    url = "/ocpi/2.2.1/hubclientinfo/NL/ALL"
    body = assert_envelope(put(client, url, CLIENT_INFO, headers), 403, 2000)
    assert "HUB" in body["status_message"]
    assert_envelope(client.get(url, **headers), 403, 2000)
    assert not ClientInfo.objects.exists()
    make_partner(token="hub-token", country_code="NL", party_id="HUB", role="HUB")
    assert_envelope(put(client, url, CLIENT_INFO, auth("hub-token")), 201, 1000)
