"""Transport and format: the envelope on every answer, 401s, request/correlation ids, routing headers, versions."""

import re
import uuid

import pytest

from ocpi_api.models import PartnerStatus
from ocpi_api.modules import ModuleID
from ocpi_api.registry import MODULES_2_2_1
from tests.ocpi_api.factories import auth, make_partner
from tests.ocpi_api.shapes import example, shape_differences

ENVELOPE = {"data", "status_code", "status_message", "timestamp"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$")  # OCPI DateTime: string(25), UTC

pytestmark = pytest.mark.django_db


def assert_envelope(response, http_status, status_code):
    assert response.status_code == http_status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ENVELOPE
    assert body["status_code"] == status_code
    assert TIMESTAMP.match(body["timestamp"])
    return body


@pytest.mark.parametrize(
    "path",
    ["/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials", "/ocpi/2.2.1/locations", "/ocpi/2.2.1/locations/LOC1"],
)
def test_missing_malformed_or_unknown_token_is_401_in_the_envelope(client, partner, path):
    assert_envelope(client.get(path), 401, 2000)
    assert_envelope(client.get(path, HTTP_AUTHORIZATION="Token"), 401, 2000)
    assert_envelope(client.get(path, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz"), 401, 2000)
    assert_envelope(client.get(path, **auth("not-a-known-token")), 401, 2000)
    assert_envelope(client.get(path, **auth("not-a-known-token", encode=False)), 401, 2000)


def test_base64_and_plain_tokens_are_both_accepted(client, partner):
    assert_envelope(client.get("/ocpi/versions", **auth("token-of-partner-one")), 200, 1000)
    assert_envelope(client.get("/ocpi/versions", **auth("token-of-partner-one", encode=False)), 200, 1000)


def test_an_unregistered_partner_is_401(client):
    make_partner(token="old-token", status=PartnerStatus.UNREGISTERED)
    assert_envelope(client.get("/ocpi/versions", **auth("old-token")), 401, 2000)


def test_unknown_endpoints_and_methods_are_enveloped(client, headers):
    assert_envelope(client.get("/ocpi/2.2.1/nothing-here", **headers), 404, 2000)
    assert_envelope(client.get("/ocpi/", **headers), 404, 2000)
    assert_envelope(
        client.post("/ocpi/2.2.1/locations", data={}, content_type="application/json", **headers), 405, 2000
    )
    assert_envelope(client.delete("/ocpi/versions", **headers), 405, 2000)


def test_request_and_correlation_ids_are_echoed_or_generated(client, headers):
    response = client.get("/ocpi/versions", HTTP_X_REQUEST_ID="req-1", HTTP_X_CORRELATION_ID="corr-1", **headers)
    assert (response["X-Request-ID"], response["X-Correlation-ID"]) == ("req-1", "corr-1")
    response = client.get("/ocpi/versions", **headers)
    uuid.UUID(response["X-Request-ID"])
    uuid.UUID(response["X-Correlation-ID"])
    assert client.get("/ocpi/2.2.1/nowhere")["X-Request-ID"]
    assert client.get("/ocpi/versions", HTTP_X_REQUEST_ID="r2")["X-Request-ID"] == "r2"  # on a 401 too


def test_routing_headers_on_functional_modules_only(client, headers):
    response = client.get(
        "/ocpi/2.2.1/locations",
        HTTP_OCPI_FROM_COUNTRY_CODE="NL",
        HTTP_OCPI_FROM_PARTY_ID="EXM",
        HTTP_OCPI_TO_COUNTRY_CODE="NL",
        HTTP_OCPI_TO_PARTY_ID="CPO",
        **headers,
    )
    assert response.status_code == 200
    assert response["OCPI-from-country-code"] == "NL" and response["OCPI-from-party-id"] == "CPO"
    assert response["OCPI-to-country-code"] == "NL" and response["OCPI-to-party-id"] == "EXM"
    # Without the request headers, the partner's own party is the addressee.
    response = client.get("/ocpi/2.2.1/locations", **headers)
    assert response["OCPI-to-party-id"] == "EXM"
    versions = client.get("/ocpi/versions", **headers)
    assert "OCPI-from-party-id" not in versions and "OCPI-to-party-id" not in versions


def test_versions_lists_2_2_1_with_our_base_url(client, headers, settings):
    settings.OCPI_BASE_URL = "https://cpo.example.com"
    body = assert_envelope(client.get("/ocpi/versions", **headers), 200, 1000)
    assert body["data"] == [{"version": "2.2.1", "url": "https://cpo.example.com/ocpi/2.2.1"}]
    assert not shape_differences(body, example("transport_and_format_version_info_example.json"))


def test_version_details_lists_every_module_with_its_role(client, headers, settings):
    settings.OCPI_BASE_URL = "https://cpo.example.com"
    body = assert_envelope(client.get("/ocpi/2.2.1/", **headers), 200, 1000)
    assert body["data"]["version"] == "2.2.1"
    endpoints = {(e["identifier"], e["role"]): e["url"] for e in body["data"]["endpoints"]}
    assert endpoints[("credentials", "SENDER")] == "https://cpo.example.com/ocpi/2.2.1/credentials"
    assert endpoints[("locations", "SENDER")] == "https://cpo.example.com/ocpi/2.2.1/locations"
    assert not shape_differences(body, example("transport_and_format_version_details_example.json"))
    assert endpoints[("tokens", "RECEIVER")] == "https://cpo.example.com/ocpi/2.2.1/tokens"
    # Every Sender URL listed answers a GET (Receiver objects live below their module URL).
    for (_identifier, role), url in endpoints.items():
        if role == "SENDER":
            path = url.removeprefix("https://cpo.example.com")
            # date_from: required by the sessions Sender interface (mod_sessions), harmless for the others
            assert client.get(path, {"date_from": "2000-01-01T00:00:00Z"}, **headers).status_code == 200, path


def test_we_serve_every_module_of_2_2_1():
    """The credentials handshake accepts a partner offering any 2.2.1 ModuleID (`check_partner_endpoints`): that
    holds because the registry serves them all."""
    assert {module.identifier for module in MODULES_2_2_1} == ModuleID.ALL
