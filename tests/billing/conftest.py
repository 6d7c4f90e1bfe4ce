"""Objects to bill with: a station at the shared test location, tariffs on its connectors, an EMSP's token."""

from decimal import Decimal

import pytest

from billing.models import Tariff
from cpo.models import Connector
from ocpp_gateway.authorization import AuthorizationResult, _authorizers, authorizer_register

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


def tariff_make(tariff_id: str, *components: dict, **kwargs) -> Tariff:
    values = dict(
        id=tariff_id,
        country_code="NL",
        party_id="CPO",
        currency="EUR",
        elements=[{"price_components": list(components)}],
    )
    values.update(kwargs)
    tariff = Tariff(**values)
    tariff.full_clean()
    tariff.save()
    return tariff


def component(kind: str, price: str, vat: str | None = "21.0", step_size: int = 1) -> dict:
    data = {"type": kind, "price": Decimal(price), "step_size": step_size}
    if vat is not None:
        data["vat"] = Decimal(vat)
    return data


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
