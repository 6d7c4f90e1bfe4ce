"""OCPI fixtures: a real EMSP on loopback, our live server as partners see it, registered partners."""

import base64

import pytest

from ocpi_api.models import Partner, PartnerStatus
from ocpi_api.services import partner_incoming_token_set, partner_parties_claim
from tests.ocpi_api.emsp import FakeEmsp


@pytest.fixture
def emsp():
    server = FakeEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def receiving_emsp():
    """An EMSP on loopback that stores what we push (sessions, CDRs, locations, tariffs)."""
    from tests.e2e.emsp import ReceivingEmsp

    server = ReceivingEmsp().start()
    yield server
    server.stop()


@pytest.fixture
def eager():
    """Run queued tasks in-process (as the embedded default does) so dispatch after commit is observable."""
    from cpo.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def queued():
    """Queue tasks for a worker (as with REDIS_URL; in-process broker without it) instead of running them at once, so
    a test drives delivery itself, whichever database and broker the suite runs on."""
    from cpo.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def ocpi_live(live_server, settings):
    """Our app on a real socket; the URLs we publish (versions, endpoints) point at it."""
    settings.OCPI_BASE_URL = live_server.url
    return live_server


def make_partner(*, token: str, country_code="NL", party_id="EXM", status=PartnerStatus.REGISTERED, **fields):
    partner = Partner(
        name=fields.pop("name", f"{country_code} {party_id}"),
        country_code=country_code,
        party_id=party_id,
        status=status,
        roles=[{"role": "EMSP", "country_code": country_code, "party_id": party_id,
                "business_details": {"name": "x"}}],
        version="2.2.1",
        **fields,
    )
    partner_incoming_token_set(partner=partner, token=token)
    partner.save()
    partner_parties_claim(partner=partner, parties={(country_code, party_id)})
    return partner


def auth(token: str, *, encode: bool = True) -> dict:
    value = base64.b64encode(token.encode()).decode() if encode else token
    return {"HTTP_AUTHORIZATION": f"Token {value}"}


@pytest.fixture
def partner(db):
    return make_partner(token="token-of-partner-one")


@pytest.fixture
def other_partner(db):
    return make_partner(token="token-of-partner-two", country_code="DE", party_id="OTH")


@pytest.fixture
def headers(partner):
    return auth("token-of-partner-one")


@pytest.fixture
def other_headers(other_partner):
    return auth("token-of-partner-two")
