"""The OCPI projections of Sessions and CDRs against the spec's examples, and the spec's CDR example reproduced
end to end from a charger's transaction."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from rest_framework.utils.encoders import JSONEncoder as DrfJSONEncoder

from billing.selectors import cdr_as_ocpi, session_as_ocpi
from billing.services import cdr_create, session_sync
from cpo.models import EVSE, Connector, Location
from cpo.services import station_create
from ocpp_gateway.authorization import AuthorizationResult, _authorizers, authorizer_register
from tests.billing.examples import example
from tests.billing.factories import HOUR, T0, component, start, stop, tariff_make


def as_json(data: dict) -> dict:
    """What a partner receives: DRF's encoder, parsed back."""
    return json.loads(json.dumps(data, cls=DrfJSONEncoder))


def shape(value):
    """The JSON type of every field, recursively (lists: the shape of their first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def test_a_completed_session_has_the_fields_and_types_of_the_spec_example(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    stop(station, tx, T0 + HOUR, 41120)
    ours = as_json(session_as_ocpi(session=session_sync(transaction_pk=tx.pk)))
    spec = example("session_example_2_short_finished.json")
    assert set(ours) - set(spec) == {"authorization_reference"}  # optional; this EMSP gave one
    assert set(spec) <= set(ours)
    for key in ("cdr_token", "total_cost"):
        assert shape(ours[key]) == shape(spec[key])
    assert shape(ours["charging_periods"][0]) == shape(spec["charging_periods"][2])  # with tariff_id
    assert (ours["kwh"], ours["status"], ours["total_cost"]) == (
        41.12,
        "COMPLETED",
        {"excl_vat": 15.39, "incl_vat": 18.62},
    )
    assert ours["start_date_time"] == "2026-11-20T10:00:00Z" and ours["end_date_time"] == "2026-11-20T11:00:00Z"
    assert ours["last_updated"].endswith("Z") and len(ours["last_updated"]) <= 25


def test_an_active_session_has_the_fields_of_the_spec_example(station, energy_tariff, emsp_token):
    tx = start(station, emsp_token, meter_start=0)
    ours = as_json(session_as_ocpi(session=session_sync(transaction_pk=tx.pk, now=T0)))
    spec = example("session_example_1_simple_start.json")
    assert set(ours) - set(spec) == {"authorization_reference", "charging_periods"}
    assert set(spec) <= set(ours)
    assert (ours["kwh"], ours["status"]) == (0, "ACTIVE") and "end_date_time" not in ours


@pytest.fixture
def spec_cdr_scenario(db, settings):
    """The network and the token of the spec's cdr_example.json: CPO BE*BEC, location LOC1 in Gent, EVSE 3256,
    tariff 12 (€ 2.00/h excl. 10% VAT, per 5 minutes), token 012345678 of DE*TNM (whitelisted)."""
    settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID = "BE", "BEC"
    location = Location.objects.create(
        id="LOC1",
        name="Gent Zuid",
        address="F.Rooseveltlaan 3A",
        city="Gent",
        postal_code="9000",
        country="BEL",
        latitude=Decimal("3.729944"),
        longitude=Decimal("51.047599"),
        time_zone="Europe/Brussels",
    )
    station, _ = station_create(identity="BEC-GENT-1", location=location, evses=0)
    evse = EVSE.objects.create(
        uid="3256", location=location, station=station, ocpp_evse_id=1, evse_id="BE*BEC*E041503003"
    )
    tariff = tariff_make("12", component("TIME", "2.00", vat="10.0", step_size=300), country_code="BE", party_id="BEC")
    Connector.objects.create(
        evse=evse,
        connector_id="1",
        standard="IEC_62196_T2",
        format="SOCKET",
        power_type="AC_1_PHASE",
        tariff_ids=[tariff.id],
    )

    def emsp(request):
        if request.id_tag == "012345678":
            return AuthorizationResult(
                status="Accepted",
                source="partner:9",
                auth_method="WHITELIST",
                token_type="RFID",
                contract_id="DE8ACC12E46L89",
                country_code="DE",
                party_id="TNM",
            )
        return None

    authorizer_register(emsp, first=True)
    yield station
    _authorizers.remove(emsp)


def test_the_spec_cdr_example_end_to_end(spec_cdr_scenario):
    """A 1.6 charger charges 15.342 kWh from 21:39:09 to 23:37:32 UTC: 1.973 h billed per 5 minutes is 2 h,
    € 4.00 excl. and € 4.40 incl. VAT, as in cdr_example.json."""
    station = spec_cdr_scenario
    started = dt.datetime(2015, 6, 29, 21, 39, 9, tzinfo=dt.UTC)
    tx = start(station, "012345678", meter_start=0, at=started)
    stop(station, tx, dt.datetime(2015, 6, 29, 23, 37, 32, tzinfo=dt.UTC), 15342)
    cdr = cdr_create(session=session_sync(transaction_pk=tx.pk))
    ours = as_json(cdr_as_ocpi(cdr=cdr))
    spec = example("cdr_example.json")

    assert set(ours) - set(spec) == {"session_id"}  # optional, and we have the Sessions module
    assert set(spec) <= set(ours)
    for key in (
        "country_code",
        "party_id",
        "start_date_time",
        "end_date_time",
        "cdr_token",
        "auth_method",
        "cdr_location",
        "currency",
        "total_cost",
        "total_energy",
        "total_time_cost",
    ):
        assert ours[key] == spec[key], key
    assert round(ours["total_time"], 3) == spec["total_time"]
    drop = lambda tariff: {k: v for k, v in tariff.items() if k != "last_updated"}  # noqa: E731
    assert [drop(t) for t in ours["tariffs"]] == [drop(t) for t in spec["tariffs"]]
    [period] = ours["charging_periods"]
    [spec_period] = spec["charging_periods"]
    assert (period["start_date_time"], period["tariff_id"]) == (spec_period["start_date_time"], "12")
    volumes = {d["type"]: d["volume"] for d in period["dimensions"]}
    assert round(volumes["TIME"], 3) == spec_period["dimensions"][0]["volume"]
    assert volumes["ENERGY"] == 15.342  # we also report the energy of the period
    assert ours["id"] == ours["session_id"] and len(ours["id"]) <= 36


def test_a_connector_without_a_tariff_is_priced_with_its_locations_default_tariff(db):
    from billing.selectors import tariff_for_connector

    location = Location.objects.create(
        id="LOC-DEF", address="Street 1", city="Town", country="NLD", latitude=52, longitude=4
    )
    station, _ = station_create(identity="CP-DEF", location=location, tariff_id="")
    connector = Connector.objects.get(evse__station=station)
    tariff = tariff_make("LOC-DEFAULT", component("ENERGY", "0.30"))
    assert tariff_for_connector(connector=connector, at=T0) is None  # no tariff anywhere: flagged to staff
    location.default_tariff_id = tariff.id
    location.save()
    assert tariff_for_connector(connector=connector, at=T0) == tariff
    own = tariff_make("OWN", component("ENERGY", "0.40"))
    Connector.objects.filter(pk=connector.pk).update(tariff_ids=[own.id])
    connector.refresh_from_db()
    assert tariff_for_connector(connector=connector, at=T0) == own
