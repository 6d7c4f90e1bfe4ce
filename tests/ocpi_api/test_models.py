"""Partner: what we keep of a roaming partner's credentials, and how we find it by its token."""

import pytest
from django.db import IntegrityError

from ocpi_api.models import Partner, PartnerStatus
from ocpi_api.selectors import credentials_token_hash, partner_get_by_token
from ocpi_api.services import partner_incoming_token_set, partner_invite, partner_parties_claim

pytestmark = pytest.mark.django_db


def test_invite_stores_token_a_only_as_a_hash_with_a_short_prefix():
    partner, token_a = partner_invite(country_code="nl", party_id="exm", name="Example EMSP")
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.INVITED
    assert (partner.country_code, partner.party_id) == ("NL", "EXM")
    assert partner.incoming_token_hash == credentials_token_hash(token_a)
    assert token_a not in {partner.incoming_token_hash, partner.outgoing_token}
    assert token_a.startswith(partner.incoming_token_prefix) and len(partner.incoming_token_prefix) == 6
    assert 16 <= len(token_a) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in token_a)


def test_partner_is_found_by_token_hash_and_not_by_prefix_or_hash():
    partner, token_a = partner_invite(country_code="NL", party_id="EXM", name="x")
    assert partner_get_by_token(token=token_a) == partner
    assert partner_get_by_token(token=token_a[:6]) is None
    assert partner_get_by_token(token=partner.incoming_token_hash) is None
    assert partner_get_by_token(token=token_a + "x") is None


def test_an_unregistered_partner_is_not_found_by_its_old_token():
    partner, token_a = partner_invite(country_code="NL", party_id="EXM", name="x")
    partner.status = PartnerStatus.UNREGISTERED
    partner.save()
    assert partner_get_by_token(token=token_a) is None


def test_two_invites_get_different_tokens():
    _, a1 = partner_invite(country_code="NL", party_id="EXM", name="x")
    _, a2 = partner_invite(country_code="NL", party_id="EXM", name="x")
    assert a1 != a2


def test_two_registered_partners_cannot_share_a_party():
    for token in ("t1", "t2"):
        partner = Partner(country_code="NL", party_id="EXM", status=PartnerStatus.REGISTERED)
        partner_incoming_token_set(partner=partner, token=token * 20)
        if token == "t2":
            with pytest.raises(IntegrityError):
                partner.save()
        else:
            partner.save()


@pytest.mark.django_db
def test_endpoint_url_and_party_ids_are_the_parties_it_holds_not_the_roles_it_declared():
    partner = Partner(
        country_code="NL",
        party_id="EXM",
        roles=[{"role": "EMSP", "country_code": "de", "party_id": "abc", "business_details": {"name": "x"}}],
        endpoints=[
            {"identifier": "tokens", "role": "SENDER", "url": "https://e/tokens"},
            {"identifier": "locations", "role": "RECEIVER", "url": "https://e/locations"},
        ],
    )
    assert partner.endpoint_url(identifier="tokens") == "https://e/tokens"
    assert partner.endpoint_url(identifier="locations", role="SENDER") is None
    assert partner.party_ids() == set()
    partner.save()
    partner_parties_claim(partner=partner, parties={("NL", "EXM"), ("de", "abc")})
    assert partner.party_ids() == {("NL", "EXM"), ("DE", "ABC")}
