"""Sessions Sender interface: an EMSP pulls the sessions of its own tokens (date_from required), paginated."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.services import transaction_bill
from tests.ocpi_api.factories import auth, reading, start, stop
from tests.ocpi_api.shapes import example, shape_differences

pytestmark = pytest.mark.django_db
URL = "/ocpi/2.2.1/sessions"
EXM = auth("token-of-the-emsp")
OTH = auth("other")


@pytest.fixture
def sessions(session_station, session_partners, emsp_token, local_token):
    """Two sessions of NL*EXM (one finished), one of our own card."""
    first = start(session_station)
    reading(session_station, first, 10, 3000)
    stop(session_station, first, 20, 5000)
    second = start(session_station, at=first.started_at + timedelta(hours=1))
    own = start(session_station, id_tag=local_token.uid, at=first.started_at + timedelta(hours=2))
    return [transaction_bill(transaction_pk=tx.pk) for tx in (first, second, own)]


def since(minutes=60):
    return (timezone.now() - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_date_from_is_required(client, sessions):
    response = client.get(URL, **EXM)
    assert response.status_code == 200 and response.json()["status_code"] == 2001
    assert "date_from" in response.json()["status_message"]


def test_an_emsp_sees_the_sessions_of_its_own_tokens_only(client, sessions):
    response = client.get(URL, {"date_from": since()}, **EXM)
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    got = response.json()["data"]
    assert sorted(s["id"] for s in got) == sorted(s.id for s in sessions[:2])
    assert response["X-Total-Count"] == "2"
    assert {s["cdr_token"]["party_id"] for s in got} == {"EXM"}
    other = client.get(URL, {"date_from": since()}, **OTH)
    assert other.json()["data"] == [] and other["X-Total-Count"] == "0"


def test_a_listed_session_has_the_shape_of_the_spec_example(client, sessions):
    got = client.get(URL, {"date_from": since()}, **EXM).json()["data"]
    finished = next(s for s in got if s["status"] == "COMPLETED")
    problems = shape_differences(finished, example("session_example_2_short_finished.json"))
    # Optional fields the example leaves out, and numbers the example happens to write as integers, aside.
    assert [p for p in problems if "not in the example" not in p and "number where the example has int" not in p] == []


def test_pages_follow_last_updated_with_a_next_link(client, sessions):
    page = client.get(URL, {"date_from": since(), "limit": 1}, **EXM)
    assert len(page.json()["data"]) == 1 and page["X-Limit"] == "1" and 'rel="next"' in page["Link"]
    later = client.get(URL, {"date_from": since(-1)}, **EXM)
    assert later.json()["data"] == []


def test_version_details_list_sessions_and_cdrs_as_sender(client, sessions):
    endpoints = client.get("/ocpi/2.2.1", **EXM).json()["data"]["endpoints"]
    mine = {(e["identifier"], e["role"]) for e in endpoints}
    assert {("sessions", "SENDER"), ("cdrs", "SENDER")} <= mine
