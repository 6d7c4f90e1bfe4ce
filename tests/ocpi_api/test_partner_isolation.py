"""Each (country_code, party_id) belongs to one partner, whatever role it was declared in: a newcomer that declares
another partner's party is refused, and can neither take over that partner's tokens nor read its data."""

import httpx
import pytest

from ocpi_api.models import Partner, PartnerStatus, PartnerToken
from ocpi_api.services import partner_invite
from tests.ocpi_api.emsp import FakeEmsp, auth_header
from tests.ocpi_api.factories import auth, make_partner

TOKEN_URL = "/ocpi/2.2.1/tokens/NL/EXM/012345678"


def token_body(country_code="NL", party_id="EXM") -> dict:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": "012345678",
        "type": "RFID",
        "contract_id": f"{country_code}{party_id}C12345678X",
        "issuer": "TheNewMotion",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-11-30T10:00:00Z",
    }


@pytest.fixture
def newcomer_emsp():
    server = FakeEmsp(country_code="NL", party_id="EX3", name="Newcomer")
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_newcomer_declaring_another_partners_party_is_refused_and_stays_unregistered(ocpi_live, newcomer_emsp):
    owner = make_partner(token="token-of-the-owner", country_code="NL", party_id="EXM")
    newcomer, token_a = partner_invite(country_code="NL", party_id="EX3", name="Newcomer")
    newcomer_emsp.extra_roles = [
        {"role": "EMSP", "country_code": "NL", "party_id": "EXM", "business_details": {"name": "Not them"}}
    ]

    response = newcomer_emsp.register_with(versions_url=f"{ocpi_live.url}/ocpi/versions", token_a=token_a)

    assert response.json()["status_code"] == 2001, response.text
    assert "NL/EXM" in response.json()["status_message"]
    newcomer.refresh_from_db()
    assert newcomer.status == PartnerStatus.INVITED
    assert ("NL", "EXM") not in newcomer.party_ids()
    assert ("NL", "EXM") in owner.party_ids()


@pytest.mark.django_db(transaction=True)
def test_a_newcomer_cannot_claim_our_own_party(ocpi_live, newcomer_emsp, settings):
    _, token_a = partner_invite(country_code="NL", party_id="EX3", name="Newcomer")
    newcomer_emsp.extra_roles = [
        {
            "role": "CPO",
            "country_code": settings.OCPI_COUNTRY_CODE,
            "party_id": settings.OCPI_PARTY_ID,
            "business_details": {"name": "Us?"},
        }
    ]
    response = newcomer_emsp.register_with(versions_url=f"{ocpi_live.url}/ocpi/versions", token_a=token_a)
    assert response.json()["status_code"] == 2001, response.text


@pytest.mark.django_db(transaction=True)
def test_a_credentials_update_that_claims_another_partners_party_is_refused(ocpi_live, newcomer_emsp):
    make_partner(token="token-of-the-owner", country_code="NL", party_id="EXM")
    _, token_a = partner_invite(country_code="NL", party_id="EX3", name="Newcomer")
    assert (
        newcomer_emsp.register_with(versions_url=f"{ocpi_live.url}/ocpi/versions", token_a=token_a).json()[
            "status_code"
        ]
        == 1000
    )
    token_c = newcomer_emsp.our_token
    newcomer_emsp.extra_roles = [
        {"role": "EMSP", "country_code": "NL", "party_id": "EXM", "business_details": {"name": "Not them"}}
    ]

    response = httpx.put(
        f"{ocpi_live.url}/ocpi/2.2.1/credentials",
        json=newcomer_emsp.credentials(newcomer_emsp.token_b),
        headers={"Authorization": auth_header(token_c)},
        timeout=30,
    )

    assert response.json()["status_code"] == 2001, response.text
    newcomer = Partner.objects.get(party_id="EX3")
    assert newcomer.party_ids() == {("NL", "EX3")}
    # The refused update changed nothing: the old token still works.
    ok = httpx.get(f"{ocpi_live.url}/ocpi/2.2.1/locations", headers={"Authorization": auth_header(token_c)})
    assert ok.json()["status_code"] == 1000


@pytest.mark.django_db
def test_tokens_never_move_to_another_partner_even_with_a_forged_role(client):
    owner = make_partner(token="token-of-the-owner", country_code="NL", party_id="EXM")
    response = client.put(TOKEN_URL, data=token_body(), content_type="application/json", **auth("token-of-the-owner"))
    assert response.json()["status_code"] == 1000
    # A partner whose stored roles name NL/EXM (as a takeover would have left them) still gets nothing of it.
    forged = make_partner(token="token-of-the-forger", country_code="NL", party_id="EX3")
    forged.roles = [*forged.roles, {"role": "EMSP", "country_code": "NL", "party_id": "EXM", "business_details": {}}]
    forged.save()

    for response in (
        client.put(TOKEN_URL, data=token_body(), content_type="application/json", **auth("token-of-the-forger")),
        client.patch(
            TOKEN_URL,
            data={"valid": False, "last_updated": "2026-11-30T11:00:00Z"},
            content_type="application/json",
            **auth("token-of-the-forger"),
        ),
        client.get(TOKEN_URL, **auth("token-of-the-forger")),
    ):
        assert response.json()["status_code"] != 1000, response.content

    token = PartnerToken.objects.get()
    assert token.partner == owner and token.valid is True
    assert client.get(TOKEN_URL, **auth("token-of-the-owner")).json()["status_code"] == 1000
