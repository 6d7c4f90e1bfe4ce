"""The Tariff model, its validation, the admin and the OCPI projection."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from rest_framework.utils.encoders import JSONEncoder as DrfJSONEncoder

from billing.models import Tariff
from billing.selectors import tariff_as_ocpi
from billing.services import tariff_seed_demo, tariff_upsert_from_ocpi
from tests.billing.examples import example, tariff_example_names

ENERGY = {"type": "ENERGY", "price": Decimal("0.25"), "vat": Decimal("10.0"), "step_size": 1}


def make_tariff(**kwargs) -> Tariff:
    values = dict(id="T1", country_code="NL", party_id="CPO", currency="EUR", elements=[{"price_components": [ENERGY]}])
    values.update(kwargs)
    return Tariff(**values)


def messages(exc: ValidationError) -> str:
    return " | ".join(f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs)


def test_a_valid_tariff_passes_full_clean(db):
    make_tariff().full_clean()


@pytest.mark.parametrize(
    "elements, expected",
    [
        ([], "non-empty list"),
        ([{"price_components": []}], "elements[0].price_components: must be a non-empty list"),
        (
            [{"price_components": [dict(ENERGY, type="KWH")]}],
            "elements[0].price_components[0].type: 'KWH' is not a TariffDimensionType",
        ),
        (
            [{"price_components": [dict(ENERGY, price="0.25")]}],
            "elements[0].price_components[0].price: must be a number",
        ),
        ([{"price_components": [dict(ENERGY, price=Decimal("-1"))]}], "price: must be >= 0"),
        ([{"price_components": [dict(ENERGY, step_size=1.5)]}], "step_size: must be an integer"),
        ([{"price_components": [{"type": "ENERGY", "price": 1}]}], "step_size: required"),
        (
            [{"price_components": [ENERGY], "restrictions": {"start_time": "7:00"}}],
            "restrictions.start_time: must be a time of day HH:MM",
        ),
        (
            [{"price_components": [ENERGY], "restrictions": {"end_date": "2024-02-30"}}],
            "is not a calendar date",
        ),
        (
            [{"price_components": [ENERGY], "restrictions": {"day_of_week": ["MON"]}}],
            "'MON' is not a DayOfWeek",
        ),
        (
            [{"price_components": [ENERGY], "restrictions": {"min_kwh": 20, "max_kwh": 10}}],
            "min_kwh must be lower than max_kwh",
        ),
        (
            [{"price_components": [ENERGY], "restrictions": {"reservation": "YES"}}],
            "is not a ReservationRestrictionType",
        ),
        (
            [{"price_components": [ENERGY], "restrictions": {"reservation": "RESERVATION"}}],
            "reservation element can only have FLAT and TIME",
        ),
        ([{"price_components": [ENERGY], "restrictions": {"max_speed": 3}}], "unknown field(s) max_speed"),
    ],
)
def test_a_bad_element_is_refused_with_a_message_naming_its_path(db, elements, expected):
    with pytest.raises(ValidationError) as excinfo:
        make_tariff(elements=elements).full_clean()
    assert "elements" in excinfo.value.message_dict
    assert expected in messages(excinfo.value)


def test_other_fields_are_checked_too(db):
    tariff = make_tariff(
        currency="eur",
        type="CHEAP",
        tariff_alt_text=[{"language": "english", "text": "x"}],
        min_price_excl_vat=Decimal("5"),
        max_price_excl_vat=Decimal("1"),
    )
    with pytest.raises(ValidationError) as excinfo:
        tariff.full_clean()
    fields = excinfo.value.message_dict
    assert {"currency", "type", "tariff_alt_text", "max_price_excl_vat"} <= set(fields)


def test_prices_come_back_from_the_database_as_decimal_not_float(db):
    make_tariff(elements=[{"price_components": [dict(ENERGY, price=Decimal("0.2345"))]}]).save()
    component = Tariff.objects.get(pk="T1").elements[0]["price_components"][0]
    assert component["price"] == Decimal("0.2345") and isinstance(component["price"], Decimal)
    assert isinstance(component["step_size"], int)


@pytest.fixture
def admin_client_logged_in(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def admin_post(client, elements_text: str):
    return client.post(
        "/admin/billing/tariff/add/",
        {
            "country_code": "NL",
            "party_id": "CPO",
            "id": "ADM-1",
            "currency": "EUR",
            "type": "",
            "elements": elements_text,
            "tariff_alt_text": "[]",
            "tariff_alt_url": "",
            "energy_mix": "null",
            "min_price_excl_vat": "",
            "min_price_incl_vat": "",
            "max_price_excl_vat": "",
            "max_price_incl_vat": "",
            "start_date_time_0": "",
            "start_date_time_1": "",
            "end_date_time_0": "",
            "end_date_time_1": "",
        },
    )


def test_the_admin_refuses_a_bad_element_and_shows_why(admin_client_logged_in):
    bad = json.dumps([{"price_components": [{"type": "ENERGYY", "price": 0.3, "step_size": 1}]}])
    response = admin_post(admin_client_logged_in, bad)
    assert response.status_code == 200  # the form again, not a redirect
    assert "&#x27;ENERGYY&#x27; is not a TariffDimensionType" in response.content.decode()
    assert not Tariff.objects.filter(pk="ADM-1").exists()


def test_the_admin_saves_a_good_tariff_with_exact_prices(admin_client_logged_in):
    good = '[{"price_components": [{"type": "ENERGY", "price": 0.3, "vat": 21.0, "step_size": 1}]}]'
    response = admin_post(admin_client_logged_in, good)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Tariff.objects.get(pk="ADM-1").elements[0]["price_components"][0]["price"] == Decimal("0.3")
    listing = admin_client_logged_in.get("/admin/billing/tariff/?q=ADM")
    assert "ENERGY 0.3 +21.0%" in listing.content.decode()


def _shape(value):
    """The JSON type of every leaf, keyed by path."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize("name", tariff_example_names())
def test_tariff_as_ocpi_gives_back_the_example_with_its_field_names_and_types(db, name):
    data = example(name)
    tariff = tariff_upsert_from_ocpi(data=data)
    tariff.refresh_from_db()
    ocpi = json.loads(json.dumps(tariff_as_ocpi(tariff=tariff), cls=DrfJSONEncoder))
    assert list(ocpi) == [k for k in ocpi if k in data or k == "last_updated"]
    assert set(ocpi) == set(data) | {"last_updated"}
    assert _shape({k: v for k, v in ocpi.items() if k != "last_updated"}) == _shape(
        {k: v for k, v in data.items() if k != "last_updated"}
    )
    assert {k: v for k, v in ocpi.items() if k != "last_updated"} == {
        k: v for k, v in data.items() if k != "last_updated"
    }
    assert ocpi["last_updated"].endswith("Z") and "+" not in ocpi["last_updated"]


def test_tariff_as_ocpi_writes_the_validity_window_in_utc_with_z(db):
    tariff = tariff_upsert_from_ocpi(data=example("tariff_6_025kwh_start_max_price.json"))
    assert tariff_as_ocpi(tariff=tariff)["end_date_time"] == "2019-06-30T23:59:59Z"


def test_tariff_seed_demo_is_idempotent_and_uses_our_party(db, settings):
    settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID = "BE", "XYZ"
    first = tariff_seed_demo(tariff_id="DEMO-AC")
    second = tariff_seed_demo(tariff_id="DEMO-AC")
    assert first.pk == second.pk and Tariff.objects.count() == 1
    assert (second.country_code, second.party_id, second.currency) == ("BE", "XYZ", "EUR")
    kinds = {c["type"]: c for e in second.elements for c in e["price_components"]}
    assert kinds["ENERGY"]["price"] == Decimal("0.35") and kinds["FLAT"]["price"] == Decimal("1.00")
    assert kinds["ENERGY"]["vat"] > 0


def test_last_updated_fits_ocpi_datetime_string_25(db):
    tariff = tariff_upsert_from_ocpi(data=example("tariff_8_simple_025kwh.json"))
    Tariff.objects.filter(pk=tariff.pk).update(last_updated=dt.datetime(2024, 5, 1, 12, 0, 1, 987654, tzinfo=dt.UTC))
    tariff.refresh_from_db()
    assert tariff_as_ocpi(tariff=tariff)["last_updated"] == "2024-05-01T12:00:01.987Z"
