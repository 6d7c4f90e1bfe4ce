"""Objects to bill with: a station at the shared test location, tariffs on its connectors, an EMSP's token."""

import pytest

from billing.services import tariff_upsert_from_ocpi
from cpo.models import Connector
from ocpp_gateway.authorization import AuthorizationResult, _authorizers, authorizer_register
from tests.billing.examples import example
from tests.billing.factories import component, tariff_make

EMSP_TOKEN = "EMSP-TOKEN-1"


@pytest.fixture
def emsp_token():
    """An EMSP (NL*EXM) that accepts EMSP_TOKEN in real time with authorization reference REF-1."""

    def emsp(request):
        if request.id_tag == EMSP_TOKEN:
            return AuthorizationResult(
                status="Accepted",
                source="partner:1",
                auth_method="AUTH_REQUEST",
                authorization_reference="REF-1",
                token_type="RFID",
                contract_id="NL-EXM-C00000001-X",
                country_code="NL",
                party_id="EXM",
            )
        return None

    authorizer_register(emsp, first=True)
    yield EMSP_TOKEN
    _authorizers.remove(emsp)


@pytest.fixture
def station(station_factory):
    station, _ = station_factory("CP-BILL-1", evses=2)
    return station


@pytest.fixture
def energy_tariff(station):
    """€ 1.00 start + € 0.35/kWh, 21% VAT, on every connector of the station."""
    tariff = tariff_make("AC-1", component("FLAT", "1.00"), component("ENERGY", "0.35"))
    Connector.objects.filter(evse__station=station).update(tariff_ids=["GONE", tariff.id])
    return tariff


@pytest.fixture
def tariff_17(station):
    """mod_tariffs example 17: reservation € 2.00/h per 10 min, € 4.00 when it expires unused; € 0.50 + € 0.25/kWh."""
    tariff = tariff_upsert_from_ocpi(data=example("tariff_17_reservation_with_expire_fee.json"))
    Connector.objects.update(tariff_ids=[tariff.id])
    return tariff
