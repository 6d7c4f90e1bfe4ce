"""OCPI fixtures: a real EMSP on loopback, our live server as partners see it, registered partners, and the world of
the session pipeline (a priced station, NL*EXM's token, its owner and another EMSP)."""

import pytest

from cpo.models import Connector
from ocpp_gateway.authorization import AuthorizationResult, _authorizers, authorizer_register
from tests.billing.factories import component, tariff_make
from tests.e2e.emsp import ReceivingEmsp, partner_for
from tests.ocpi_api.factories import EMSP_TOKEN, auth, make_partner


@pytest.fixture
def receiving_emsp():
    """An EMSP on loopback that stores what we push (sessions, CDRs, locations, tariffs)."""
    server = ReceivingEmsp().start()
    yield server
    server.stop()


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


@pytest.fixture
def emsp_token():
    """NL*EXM's token, accepted by whitelist (what ocpi_api's authorizer answers for a pushed ALWAYS token)."""

    def authorize(request):
        if request.id_tag != EMSP_TOKEN:
            return None
        return AuthorizationResult(
            status="Accepted",
            source="partner:test",
            auth_method="WHITELIST",
            token_type="RFID",
            contract_id="NL-EXM-C00000001-X",
            country_code="NL",
            party_id="EXM",
        )

    authorizer_register(authorize, first=True)
    yield EMSP_TOKEN
    _authorizers.remove(authorize)


@pytest.fixture
def session_station(station_factory):
    """CP-SESS with two EVSEs, priced by tariff AC-SESS: € 1.00 per session + € 0.35/kWh, 21% VAT."""
    station, _ = station_factory("CP-SESS", evses=2)
    tariff = tariff_make("AC-SESS", component("FLAT", "1.00"), component("ENERGY", "0.35"))
    Connector.objects.filter(evse__station=station).update(tariff_ids=[tariff.id])
    return station


@pytest.fixture
def session_partners(receiving_emsp, session_station):
    """The token's owner NL*EXM (token-of-the-emsp), and another EMSP DE*OTH (other) on the same platform: it must
    never see the session."""
    return (partner_for(receiving_emsp), partner_for(receiving_emsp, token="other", country_code="DE", party_id="OTH"))


@pytest.fixture
def no_throttle(settings):
    """Session PATCHes go out at once."""
    settings.OCPI_SESSION_PATCH_MIN_INTERVAL = 0
