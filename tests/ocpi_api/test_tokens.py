"""Tokens Receiver interface: EMSPs push their tokens, each under its own party, and read them back."""

import json

import pytest

from ocpi_api.models import PartnerToken
from tests.ocpi_api.factories import auth, make_partner
from tests.ocpi_api.shapes import example, shape_differences

pytestmark = pytest.mark.django_db
URL = "/ocpi/2.2.1/tokens/NL/EXM/012345678"


def put(client, headers, url, body):
    return client.put(url, data=json.dumps(body), content_type="application/json", **headers)


def patch(client, headers, url, body):
    return client.patch(url, data=json.dumps(body), content_type="application/json", **headers)


def spec_token(name="token_put_example.json", **changes):
    token = example(name)
    token.update({"country_code": "NL", "party_id": "EXM"}, **changes)
    return token


def test_the_spec_put_example_is_created_then_replaced(client, headers):
    body = example("token_put_example.json")  # NL/TNM: register a partner that owns that party
    make_partner(token="tnm-token", country_code="NL", party_id="TNM")
    response = put(client, auth("tnm-token"), "/ocpi/2.2.1/tokens/NL/TNM/012345678", body)
    assert response.status_code == 201 and response.json()["status_code"] == 1000
    response = put(client, auth("tnm-token"), "/ocpi/2.2.1/tokens/NL/TNM/012345678", {**body, "valid": False})
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    token = PartnerToken.objects.get()
    assert (token.uid, token.type, token.valid, token.whitelist, token.group_id) == (
        "012345678",
        "RFID",
        False,
        "ALWAYS",
        "DF000-2001-8999",
    )
    got = client.get("/ocpi/2.2.1/tokens/NL/TNM/012345678", **auth("tnm-token")).json()
    assert got["data"] == {**body, "valid": False}


@pytest.mark.parametrize("name", ["token_example_1_app_user.json", "token_example_2_full_rfid.json"])
def test_the_spec_token_examples_are_accepted_and_returned_in_the_same_shape(client, name):
    body = example(name)
    make_partner(token="de-token", country_code="DE", party_id="TNM")
    url = f"/ocpi/2.2.1/tokens/DE/TNM/{body['uid']}?type={body['type']}"
    assert put(client, auth("de-token"), url, body).status_code == 201
    got = client.get(url, **auth("de-token")).json()["data"]
    assert got == body
    assert shape_differences(got, body) == []


def test_get_answer_has_the_shape_of_the_transport_example(client, headers):
    put(client, headers, URL, spec_token())
    got = client.get(URL, **headers).json()
    assert shape_differences(got, example("transport_and_format_get_token_example.json")) == [
        "$.data.group_id: not in the example"
    ]


def test_patch_changes_only_the_given_fields_and_needs_last_updated(client, headers):
    put(client, headers, URL, spec_token())
    response = patch(client, headers, URL, example("token_patch_example.json"))
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    token = PartnerToken.objects.get()
    assert token.valid is False and token.contract_id == "NL8ACC12E46L89"
    assert token.last_updated.isoformat() == "2019-06-19T02:11:11+00:00"
    response = patch(client, headers, URL, {"valid": True})
    assert response.status_code == 200 and response.json()["status_code"] == 2001
    assert "last_updated" in response.json()["status_message"]
    assert PartnerToken.objects.get().valid is False


def test_patch_of_an_unknown_token_is_404_2004(client, headers):
    response = patch(client, headers, URL, example("token_patch_example.json"))
    assert response.status_code == 404 and response.json()["status_code"] == 2004


def test_get_of_an_unknown_token_or_another_type_is_404_2004(client, headers):
    assert client.get(URL, **headers).json()["status_code"] == 2004
    put(client, headers, URL, spec_token())
    response = client.get(URL + "?type=APP_USER", **headers)
    assert response.status_code == 404 and response.json()["status_code"] == 2004
    assert client.get(URL + "?type=RFID", **headers).status_code == 200
    assert client.get("/ocpi/2.2.1/tokens/nl/exm/012345678", **headers).status_code == 200  # CiString


def test_a_partner_cannot_write_or_read_under_another_party(client, headers, other_headers):
    put(client, headers, URL, spec_token())
    # other_partner is DE/OTH: NL/EXM is not its party.
    for response in (
        put(client, other_headers, URL, spec_token()),
        patch(client, other_headers, URL, example("token_patch_example.json")),
        client.get(URL, **other_headers),
    ):
        assert response.status_code == 404 and response.json()["status_code"] == 2001
    assert PartnerToken.objects.get().valid is True


def test_a_token_of_another_party_in_the_body_is_refused(client, headers):
    response = put(client, headers, URL, spec_token(party_id="TNM"))
    assert response.status_code == 200 and response.json()["status_code"] == 2001


@pytest.mark.parametrize(
    "url, changes",
    [
        (URL, {"uid": "999"}),  # body id differs from the URL
        (URL + "?type=APP_USER", {}),  # type differs from ?type=
        (URL, {"valid": "yes"}),
        (URL, {"valid": 1}),
        (URL, {"whitelist": "SOMETIMES"}),
        (URL, {"type": "BARCODE"}),
        (URL, {"contract_id": 12345}),
        (URL, {"issuer": "x" * 65}),
        (URL, {"last_updated": "last tuesday"}),
        (URL, {"energy_contract": {"contract_id": "no supplier"}}),
        (URL, {"default_profile_type": "TURBO"}),
        ("/ocpi/2.2.1/tokens/NL/EXM/012345678?type=CARD", {}),
    ],
)
def test_wrong_types_and_mismatching_ids_are_200_2001(client, headers, url, changes):
    response = put(client, headers, url, spec_token(**changes))
    assert response.status_code == 200 and response.json()["status_code"] == 2001, response.json()
    assert not PartnerToken.objects.exists()


@pytest.mark.parametrize("field", ["uid", "type", "contract_id", "issuer", "valid", "whitelist", "last_updated"])
def test_put_without_a_required_field_is_200_2001(client, headers, field):
    body = spec_token()
    del body[field]
    response = put(client, headers, URL, body)
    assert response.status_code == 200 and response.json()["status_code"] == 2001
    assert field in response.json()["status_message"]


def test_malformed_json_is_400_2001_and_json_that_is_not_an_object_200_2001(client, headers):
    response = client.put(URL, data="{oops", content_type="application/json", **headers)
    assert response.status_code == 400 and response.json()["status_code"] == 2001
    for data in ("[1, 2]", "null", '"token"'):
        response = client.put(URL, data=data, content_type="application/json", **headers)
        assert response.status_code == 200 and response.json()["status_code"] == 2001, data
    response = client.put(URL, data="uid=1", content_type="application/x-www-form-urlencoded", **headers)
    assert response.status_code == 415 and response.json()["status_code"] == 2001


def test_tokens_need_a_registered_partner(client, partner):
    make_partner(token="token-a", country_code="NL", party_id="INV", status="INVITED")
    for headers in ({}, auth("unknown"), auth("token-a")):
        response = put(client, headers, URL, spec_token())
        assert response.status_code == 401 and response.json()["status_code"] == 2000


def test_optional_fields_left_out_of_a_put_are_cleared(client, headers):
    put(client, headers, URL, spec_token())
    body = spec_token()
    del body["group_id"], body["visual_number"]
    put(client, headers, URL, body)
    token = PartnerToken.objects.get()
    assert token.group_id == "" and token.visual_number == ""
    assert "group_id" not in client.get(URL, **headers).json()["data"]
