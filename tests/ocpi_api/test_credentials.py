"""The credentials handshake over real HTTP, in both directions, and the credentials module's rules."""

import base64
import io
import re

import httpx
import pytest
from django.core.management import CommandError, call_command

from ocpi_api.models import Partner, PartnerStatus
from ocpi_api.selectors import credentials_token_hash
from ocpi_api.services import partner_invite
from tests.ocpi_api.emsp import FakeEmsp, auth_header
from tests.ocpi_api.factories import auth


@pytest.fixture
def emsp():
    """The other party of the handshake (tests/ocpi_api/emsp.py)."""
    server = FakeEmsp().start()
    yield server
    server.stop()


def invite(ocpi_live) -> tuple[str, str]:
    """`manage.py ocpi_invite`, as staff would run it; returns token A and the versions URL it printed."""
    out = io.StringIO()
    call_command("ocpi_invite", "--country-code", "NL", "--party-id", "EXM", "--name", "Example EMSP", stdout=out)
    token_a = re.search(r"token A: (\S+)", out.getvalue()).group(1)
    versions_url = re.search(r"versions URL: (\S+)", out.getvalue()).group(1)
    return token_a, versions_url


# --- Direction 1: the EMSP registers with us ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_invited_emsp_registers_over_http_and_token_a_dies(ocpi_live, emsp):
    token_a, versions_url = invite(ocpi_live)
    assert versions_url == f"{ocpi_live.url}/ocpi/versions"

    response = emsp.register_with(versions_url=versions_url, token_a=token_a)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status_code"] == 1000
    data = body["data"]
    token_c = data["token"]
    assert token_c not in (token_a, emsp.token_b)
    assert data["url"] == versions_url
    assert data["roles"] == [
        {"role": "CPO", "business_details": {"name": "Open CPO"}, "party_id": "CPO", "country_code": "NL"}
    ]
    # We fetched its versions and endpoints with its token B, base64-encoded, over HTTP.
    fetched = [r for r in emsp.requests if r["method"] == "GET"]
    assert [r["path"] for r in fetched] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert {r["headers"]["Authorization"] for r in fetched} == {auth_header(emsp.token_b)}
    assert all(r["headers"].get("X-Request-ID") and r["headers"].get("X-Correlation-ID") for r in fetched)

    partner = Partner.objects.get()
    assert partner.status == PartnerStatus.REGISTERED
    assert (partner.country_code, partner.party_id, partner.role) == ("NL", "EXM", "EMSP")
    assert partner.outgoing_token == emsp.token_b
    assert partner.incoming_token_hash == credentials_token_hash(token_c)
    assert partner.endpoint_url(identifier="tokens", role="SENDER") == f"{emsp.base_url}/emsp/2.2.1/tokens"
    assert partner.version == "2.2.1" and partner.versions_url == emsp.versions_url

    locations_url = f"{ocpi_live.url}/ocpi/2.2.1/locations"
    assert httpx.get(locations_url, headers={"Authorization": auth_header(token_a)}).status_code == 401
    assert httpx.get(versions_url, headers={"Authorization": auth_header(token_a)}).status_code == 401
    ok = httpx.get(locations_url, headers={"Authorization": auth_header(token_c)})
    assert ok.status_code == 200 and ok.json()["status_code"] == 1000
    # A second POST, now with token C, is refused: already registered.
    again = httpx.post(
        f"{ocpi_live.url}/ocpi/2.2.1/credentials",
        json=emsp.credentials(emsp.token_b),
        headers={"Authorization": auth_header(token_c)},
    )
    assert again.status_code == 405 and again.json()["status_code"] == 2000


@pytest.mark.django_db(transaction=True)
def test_token_a_cannot_reach_functional_modules_before_registering(ocpi_live):
    token_a, versions_url = invite(ocpi_live)
    headers = {"Authorization": auth_header(token_a)}
    assert httpx.get(versions_url, headers=headers).status_code == 200
    assert httpx.get(f"{ocpi_live.url}/ocpi/2.2.1", headers=headers).status_code == 200
    assert httpx.get(f"{ocpi_live.url}/ocpi/2.2.1/credentials", headers=headers).json()["data"]["token"] == token_a
    response = httpx.get(f"{ocpi_live.url}/ocpi/2.2.1/locations", headers=headers)
    assert response.status_code == 401
    assert response.json()["status_code"] == 2000
    # PUT and DELETE need a registration first.
    put = httpx.put(f"{ocpi_live.url}/ocpi/2.2.1/credentials", headers=headers, json={})
    assert put.status_code == 405
    assert httpx.delete(f"{ocpi_live.url}/ocpi/2.2.1/credentials", headers=headers).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_partner_that_wants_plain_tokens_is_called_with_a_plain_token(ocpi_live, emsp):
    emsp.plain_tokens_only = True
    token_a, versions_url = invite(ocpi_live)
    response = emsp.register_with(versions_url=versions_url, token_a=token_a)
    assert response.json()["status_code"] == 1000
    assert Partner.objects.get().encode_outgoing_token is False
    assert emsp.requests[-1]["headers"]["Authorization"] == f"Token {emsp.token_b}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "breakage, status_code",
    [
        ("down", 3001),
        ("http500", 3001),
        ("no_2_2_1", 3002),
        ("no_endpoints", 3003),
        ("no_mutual_module", 3003),
        ("bad_endpoints", 3001),
    ],
)
def test_registration_fails_with_3xxx_when_the_partner_api_is_unusable(ocpi_live, emsp, breakage, status_code):
    token_a, versions_url = invite(ocpi_live)
    credentials = emsp.credentials(emsp.token_b)
    if breakage == "down":
        credentials["url"] = "http://127.0.0.1:9/ocpi/versions"  # discard port: nothing listens
    elif breakage == "http500":
        emsp.fail_with_http = 500
    elif breakage == "no_2_2_1":
        emsp.versions_override = [{"version": "2.1.1", "url": f"{emsp.base_url}/2.1.1"}]
    elif breakage == "no_endpoints":
        emsp.endpoints_override = []
    elif breakage == "no_mutual_module":
        emsp.endpoints_override = [
            {"identifier": "credentials", "role": "SENDER", "url": f"{emsp.base_url}/c"},
            {"identifier": "x-private", "role": "RECEIVER", "url": f"{emsp.base_url}/s"},
        ]
    elif breakage == "bad_endpoints":
        emsp.endpoints_override = [{"identifier": 5}]
    response = httpx.post(
        f"{ocpi_live.url}/ocpi/2.2.1/credentials",
        json=credentials,
        headers={"Authorization": auth_header(token_a)},
        timeout=30,
    )
    body = response.json()
    assert body["status_code"] == status_code, body
    assert set(body) == {"data", "status_code", "status_message", "timestamp"}
    partner = Partner.objects.get()
    assert partner.status == PartnerStatus.INVITED  # token A still works: the partner may try again
    assert partner.incoming_token_hash == credentials_token_hash(token_a)


# --- Direction 2: we register with the EMSP ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ocpi_register_does_the_handshake_with_a_real_emsp(ocpi_live, emsp):
    out = io.StringIO()
    call_command("ocpi_register", "--versions-url", emsp.versions_url, "--token", emsp.token_a, stdout=out)

    assert "registered partner" in out.getvalue()
    # During our POST the EMSP called back our live server with the token we sent it, and got our endpoints.
    assert emsp.callback["status"] == 200
    identifiers = {e["identifier"]: e for e in emsp.callback["details"]["data"]["endpoints"]}
    assert identifiers["credentials"]["url"] == f"{ocpi_live.url}/ocpi/2.2.1/credentials"
    post = next(r for r in emsp.requests if r["method"] == "POST")
    assert post["headers"]["Authorization"] == auth_header(emsp.token_a)
    assert post["body"]["url"] == f"{ocpi_live.url}/ocpi/versions"
    assert post["body"]["roles"][0]["role"] == "CPO"

    partner = Partner.objects.get()
    assert partner.status == PartnerStatus.REGISTERED
    assert (partner.country_code, partner.party_id, partner.role) == ("NL", "EXM", "EMSP")
    assert partner.outgoing_token == emsp.token_c  # we call it with token C from now on
    assert partner.incoming_token_hash == credentials_token_hash(emsp.our_token)
    # It can now use our functional modules with the token we gave it.
    response = httpx.get(
        f"{ocpi_live.url}/ocpi/2.2.1/locations", headers={"Authorization": auth_header(emsp.our_token)}
    )
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_ocpi_register_with_a_wrong_token_a_fails_and_stores_no_usable_partner(ocpi_live, emsp):
    with pytest.raises(CommandError, match="3001"):
        call_command("ocpi_register", "--versions-url", emsp.versions_url, "--token", "wrong-token")
    assert not Partner.objects.filter(status=PartnerStatus.REGISTERED).exists()


@pytest.mark.django_db(transaction=True)
def test_ocpi_register_against_a_partner_without_2_2_1_is_3002(ocpi_live, emsp):
    emsp.versions_override = [{"version": "2.1.1", "url": f"{emsp.base_url}/2.1.1"}]
    with pytest.raises(CommandError, match="3002"):
        call_command("ocpi_register", "--versions-url", emsp.versions_url, "--token", emsp.token_a)
    assert not Partner.objects.exists()


# --- PUT, GET, DELETE ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_put_rekeys_and_refetches_endpoints_then_delete_unregisters(ocpi_live, emsp):
    token_a, versions_url = invite(ocpi_live)
    token_c = emsp.register_with(versions_url=versions_url, token_a=token_a).json()["data"]["token"]
    credentials_url = f"{ocpi_live.url}/ocpi/2.2.1/credentials"

    got = httpx.get(credentials_url, headers={"Authorization": auth_header(token_c)}).json()
    assert got["status_code"] == 1000 and got["data"]["token"] == token_c

    emsp.token_b = "a-new-token-b-for-the-cpo"
    emsp.endpoints_override = emsp.endpoints()[:3]
    fetched_before = len(emsp.requests)
    response = httpx.put(
        credentials_url, json=emsp.credentials(emsp.token_b), headers={"Authorization": auth_header(token_c)}
    )
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    new_token = response.json()["data"]["token"]
    assert new_token != token_c
    assert len(emsp.requests) == fetched_before + 2  # versions and details fetched again
    partner = Partner.objects.get()
    assert partner.outgoing_token == "a-new-token-b-for-the-cpo"
    assert len(partner.endpoints) == 3
    assert httpx.get(credentials_url, headers={"Authorization": auth_header(token_c)}).status_code == 401

    deleted = httpx.delete(credentials_url, headers={"Authorization": auth_header(new_token)})
    assert deleted.status_code == 200 and deleted.json()["status_code"] == 1000
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.UNREGISTERED
    assert partner.outgoing_token == "" and partner.incoming_token_hash is None
    again = httpx.delete(credentials_url, headers={"Authorization": auth_header(new_token)})
    assert again.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": "x", "url": "not a url", "roles": []},
        {
            "token": "has space",
            "url": "https://e.example/versions",
            "roles": [{"role": "EMSP", "party_id": "EXM", "country_code": "NL", "business_details": {"name": "x"}}],
        },
        {
            "token": 12345,
            "url": "https://e.example/versions",
            "roles": [{"role": "EMSP", "party_id": "EXM", "country_code": "NL", "business_details": {"name": "x"}}],
        },
        {
            "token": "t",
            "url": "https://e.example/versions",
            "roles": [{"role": "KING", "party_id": "EXM", "country_code": "NL", "business_details": {"name": "x"}}],
        },
        {
            "token": "t",
            "url": "https://e.example/versions",
            "roles": [{"role": "EMSP", "party_id": "EXMX", "country_code": "NL", "business_details": {}}],
        },
        {"token": "t", "url": "https://e.example/versions", "roles": "EMSP"},
        [1, 2],
    ],
)
def test_malformed_credentials_are_2001(client, body):
    _, token_a = partner_invite(country_code="NL", party_id="EXM", name="x")
    response = client.post("/ocpi/2.2.1/credentials", data=body, content_type="application/json", **auth(token_a))
    assert response.status_code == 200
    assert response.json()["status_code"] == 2001
    assert Partner.objects.get().status == PartnerStatus.INVITED


@pytest.mark.django_db
def test_credentials_body_that_is_not_json_is_400_2001(client):
    _, token_a = partner_invite(country_code="NL", party_id="EXM", name="x")
    response = client.post(
        "/ocpi/2.2.1/credentials", data="{not json", content_type="application/json", **auth(token_a)
    )
    assert response.status_code == 400
    assert response.json()["status_code"] == 2001


@pytest.mark.django_db
def test_credentials_without_or_with_unknown_token_is_401(client):
    partner_invite(country_code="NL", party_id="EXM", name="x")
    for method in ("get", "post", "put", "delete"):
        response = getattr(client, method)("/ocpi/2.2.1/credentials")
        assert response.status_code == 401, method
        assert response.json()["status_code"] == 2000
        response = getattr(client, method)("/ocpi/2.2.1/credentials", **auth("unknown"))
        assert response.status_code == 401, method


def test_token_in_the_authorization_header_is_base64_of_utf8():
    from ocpi_api.auth import authorization_header_value, authorization_token_candidates

    assert authorization_header_value(token="example-token") == "Token ZXhhbXBsZS10b2tlbg=="
    assert authorization_header_value(token="example-token", encode=False) == "Token example-token"
    # The specification's own example encodes a trailing newline; we accept it.
    assert authorization_token_candidates("Token ZXhhbXBsZS10b2tlbgo=")[0] == "example-token"
    assert authorization_token_candidates("Token example-token") == ["example-token"]
    assert authorization_token_candidates("Bearer abc") == []
    assert base64.b64decode("ZXhhbXBsZS10b2tlbg==") == b"example-token"
