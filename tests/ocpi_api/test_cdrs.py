"""CDRs Sender interface: an EMSP pulls the CDRs (credits included) of its own tokens, paginated."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Cdr
from billing.services import cdr_credit, transaction_bill
from tests.ocpi_api.factories import auth, reading, start, stop
from tests.ocpi_api.shapes import example, shape_differences

pytestmark = pytest.mark.django_db
URL = "/ocpi/2.2.1/cdrs"


@pytest.fixture
def cdrs(session_station, session_partners, emsp_token, local_token):
    """A CDR of NL*EXM and its credit, and a CDR of our own card."""
    mine = start(session_station)
    reading(session_station, mine, 10, 3000)
    stop(session_station, mine, 20, 5000)
    own = start(session_station, id_tag=local_token.uid, at=mine.started_at + timedelta(hours=1))
    stop(session_station, own, 80, 2000)
    for tx in (mine, own):
        transaction_bill(transaction_pk=tx.pk)
    original = Cdr.objects.get(session__transaction=mine)
    return original, cdr_credit(cdr=original, reason="wrong tariff")


def test_an_emsp_gets_its_cdrs_and_credits_without_date_from(client, cdrs):
    response = client.get(URL, **auth("token-of-the-emsp"))
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    got = response.json()["data"]
    assert [c["id"] for c in got] == [c.id for c in cdrs]
    assert got[1]["credit"] is True and got[1]["credit_reference_id"] == cdrs[0].id
    assert got[1]["total_cost"]["excl_vat"] == -got[0]["total_cost"]["excl_vat"]
    problems = shape_differences(got[0], example("cdr_example.json"))
    required = (
        "country_code",
        "party_id",
        "id",
        "start_date_time",
        "end_date_time",
        "cdr_token",
        "auth_method",
        "cdr_location",
        "currency",
        "charging_periods",
        "total_cost",
        "total_energy",
        "total_time",
        "last_updated",
    )
    assert not [p for p in problems if any(p.startswith(f"$.{name}: ") for name in required)]


def test_another_emsp_gets_none_of_them(client, cdrs):
    response = client.get(URL, **auth("other"))
    assert response.json()["data"] == [] and response["X-Total-Count"] == "0"


def test_date_filters_and_pagination(client, cdrs):
    now = timezone.now()
    page = client.get(URL, {"limit": 1}, **auth("token-of-the-emsp"))
    assert page["X-Total-Count"] == "2" and 'rel="next"' in page["Link"]
    future = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get(URL, {"date_from": future}, **auth("token-of-the-emsp")).json()["data"] == []
    bad = client.get(URL, {"date_from": "yesterday"}, **auth("token-of-the-emsp"))
    assert bad.status_code == 200 and bad.json()["status_code"] == 2001
