"""The tariffs page: everyone with a role reads tariffs and prices a sample session with billing's engine; only
admins create and edit them, through billing's validation, and each change is audited."""

import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Tariff
from billing.services import tariff_seed_demo, tariff_upsert_from_ocpi
from cpo.dashboard.models import AuditLog

pytestmark = pytest.mark.django_db

ELEMENTS = [
    {
        "price_components": [
            {"type": "FLAT", "price": 1.0, "vat": 21.0, "step_size": 1},
            {"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1},
        ]
    }
]


@pytest.fixture
def tariff():
    """€ 1.00 start fee and € 0.35 per kWh, both + 21 % VAT."""
    return tariff_seed_demo(tariff_id="AC-1")


@pytest.fixture
def day_night():
    """Energy € 0.50/kWh from 07:00 to 23:00 local time, € 0.25 at night, no VAT."""
    return tariff_upsert_from_ocpi(
        data={
            "country_code": "NL",
            "party_id": "CPO",
            "id": "DAY-NIGHT",
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}],
                    "restrictions": {"start_time": "07:00", "end_time": "23:00"},
                },
                {"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]},
            ],
        }
    )


def form_data(tariff: Tariff, **changes) -> dict:
    data = {
        "id": tariff.id,
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "currency": tariff.currency,
        "type": tariff.type or "",
        "elements": json.dumps(ELEMENTS),
        "min_price_excl_vat": "",
        "min_price_incl_vat": "",
        "max_price_excl_vat": "",
        "max_price_incl_vat": "",
        "start_date_time": "",
        "end_date_time": "",
        "tariff_alt_text": "[]",
        "tariff_alt_url": "",
        "energy_mix": "",
    }
    data.update(changes)
    return data


PREVIEW = {
    "kwh": "20",
    "minutes": "90",
    "parking_minutes": "0",
    "start": "2026-03-10T18:00",
    "time_zone": "Europe/Amsterdam",
}


# --- Access --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,args",
    [
        ("dashboard:tariffs", []),
        ("dashboard:tariff", ["AC-1"]),
        ("dashboard:tariff-edit", ["AC-1"]),
        ("dashboard:tariff-create", []),
    ],
)
def test_anonymous_users_are_sent_to_log_in_and_users_without_a_role_are_refused(client, client_as, tariff, name, args):
    url = reverse(name, args=args)
    assert client.get(url)["Location"].startswith(reverse("dashboard:login"))
    assert client_as("none").get(url).status_code == 403


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads_the_tariffs_and_prices_a_sample_session(client_as, tariff, role):
    user = client_as(role)
    listing = user.get(reverse("dashboard:tariffs")).content.decode()
    assert "AC-1" in listing and "ENERGY 0.35 +21% VAT" in listing and "FLAT 1.00 +21% VAT" in listing
    page = user.get(reverse("dashboard:tariff", args=["AC-1"]), PREVIEW)
    assert page.status_code == 200
    priced = page.context["priced"]
    # 1.00 + 20 kWh x 0.35 = 8.00 excl. VAT; x 1.21 = 9.68
    assert (priced.total_cost.excl_vat, priced.total_cost.incl_vat) == (Decimal("8.00"), Decimal("9.68"))
    assert 'data-testid="preview-total-incl">9.68<' in page.content.decode()
    assert "&quot;price_components&quot;" in page.content.decode()  # the OCPI object as partners get it


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_edit_or_create_tariffs(client_as, tariff, role):
    user = client_as(role)
    assert b'data-testid="tariff-edit"' not in user.get(reverse("dashboard:tariff", args=["AC-1"])).content
    assert b'data-testid="tariff-create"' not in user.get(reverse("dashboard:tariffs")).content
    assert user.get(reverse("dashboard:tariff-edit", args=["AC-1"])).status_code == 403
    changed = form_data(
        tariff, elements=json.dumps([{"price_components": [{"type": "ENERGY", "price": 9, "step_size": 1}]}])
    )
    assert user.post(reverse("dashboard:tariff-edit", args=["AC-1"]), changed).status_code == 403
    assert user.post(reverse("dashboard:tariff-create"), form_data(tariff, id="NEW")).status_code == 403
    tariff.refresh_from_db()
    assert tariff.elements[0]["price_components"][1]["price"] == Decimal("0.35")
    assert not Tariff.objects.filter(id="NEW").exists() and not AuditLog.objects.exists()


def test_tariff_edits_need_csrf(make_user, tariff):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("adm", "admin"))
    assert browser.post(reverse("dashboard:tariff-edit", args=["AC-1"]), form_data(tariff)).status_code == 403


# --- Editing -------------------------------------------------------------------------------------------------


def test_an_admin_changes_the_energy_price_and_the_change_is_audited(client_as, tariff):
    admin = client_as("admin")
    assert b'data-testid="tariff-edit"' in admin.get(reverse("dashboard:tariff", args=["AC-1"])).content
    elements = [
        {
            "price_components": [
                {"type": "FLAT", "price": 1.0, "vat": 21.0, "step_size": 1},
                {"type": "ENERGY", "price": 0.40, "vat": 21.0, "step_size": 1},
            ]
        }
    ]
    response = admin.post(
        reverse("dashboard:tariff-edit", args=["AC-1"]),
        form_data(tariff, elements=json.dumps(elements), type="REGULAR", id="IGNORED"),
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:tariff", args=["AC-1"])
    tariff.refresh_from_db()
    assert tariff.elements[0]["price_components"][1]["price"] == Decimal("0.4")  # exact, not a float
    assert tariff.type == "REGULAR" and not Tariff.objects.filter(id="IGNORED").exists()  # the id is fixed
    entry = AuditLog.objects.get()
    assert (entry.username, entry.action, entry.payload["tariff_id"]) == ("user-admin", "TariffUpdate", "AC-1")
    priced = admin.get(reverse("dashboard:tariff", args=["AC-1"]), PREVIEW).context["priced"]
    assert priced.total_cost.excl_vat == Decimal("9.00")


def test_billing_validation_refuses_a_bad_element_and_nothing_is_saved(client_as, tariff):
    bad = [{"price_components": [{"type": "KWH", "price": 0.3, "step_size": 1}]}]
    response = client_as("admin").post(
        reverse("dashboard:tariff-edit", args=["AC-1"]), form_data(tariff, elements=json.dumps(bad))
    )
    assert response.status_code == 400
    assert "KWH" in " ".join(response.context["form"].errors["elements"])
    tariff.refresh_from_db()
    assert tariff.elements[0]["price_components"][1]["type"] == "ENERGY" and not AuditLog.objects.exists()


def test_min_above_max_price_is_refused(client_as, tariff):
    response = client_as("admin").post(
        reverse("dashboard:tariff-edit", args=["AC-1"]),
        form_data(tariff, min_price_excl_vat="10", max_price_excl_vat="5"),
    )
    assert response.status_code == 400 and "max_price_excl_vat" in response.context["form"].errors


def test_an_admin_creates_a_tariff_and_cannot_reuse_an_id(client_as, tariff):
    admin = client_as("admin")
    form = admin.get(reverse("dashboard:tariff-create")).context["form"]
    assert (form["country_code"].value(), form["party_id"].value(), form["currency"].value()) == ("NL", "CPO", "EUR")
    response = admin.post(reverse("dashboard:tariff-create"), form_data(tariff, id="DC-FAST", type=""))
    assert response.status_code == 302
    created = Tariff.objects.get(id="DC-FAST")
    assert created.tariff_alt_text == [] and created.type is None
    assert AuditLog.objects.get().action == "TariffCreate"
    taken = admin.post(reverse("dashboard:tariff-create"), form_data(tariff, id="AC-1"))
    assert taken.status_code == 400 and "id" in taken.context["form"].errors


def test_preview_while_editing_prices_the_tariff_as_typed_without_saving_it(client_as, tariff):
    elements = [{"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]}]
    response = client_as("admin").post(
        reverse("dashboard:tariff-edit", args=["AC-1"]),
        {**form_data(tariff, elements=json.dumps(elements)), **PREVIEW, "preview": "1"},
    )
    assert response.status_code == 200
    assert response.context["priced"].total_cost.excl_vat == Decimal("10.00")
    tariff.refresh_from_db()
    assert tariff.elements[0]["price_components"][1]["price"] == Decimal("0.35")


# --- The preview ---------------------------------------------------------------------------------------------


def test_the_preview_reads_the_start_as_local_time_of_the_chosen_zone(client_as, day_night):
    """22:30 in Amsterdam (21:30 UTC in March) for an hour at a steady rate: half the energy at the day price,
    half at night. Read as UTC, all of it would fall in the night."""
    query = {**PREVIEW, "kwh": "10", "minutes": "60", "start": "2026-03-10T22:30"}
    viewer = client_as("viewer")
    priced = viewer.get(reverse("dashboard:tariff", args=["DAY-NIGHT"]), query).context["priced"]
    assert priced.total_cost.excl_vat == Decimal("3.75")  # 5 x 0.50 + 5 x 0.25
    assert len(priced.charging_periods) == 2
    utc = viewer.get(reverse("dashboard:tariff", args=["DAY-NIGHT"]), {**query, "time_zone": "UTC"})
    assert utc.context["priced"].total_cost.excl_vat == Decimal("3.75")  # 22:30 UTC is also local time there
    late = {**query, "start": "2026-03-10T23:30"}
    assert viewer.get(reverse("dashboard:tariff", args=["DAY-NIGHT"]), late).context[
        "priced"
    ].total_cost.excl_vat == Decimal("2.50")


def test_parked_minutes_are_parking_time(client_as):
    tariff_upsert_from_ocpi(
        data={
            "country_code": "NL",
            "party_id": "CPO",
            "id": "PARK",
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "PARKING_TIME", "price": 6.00, "step_size": 60}]}],
        }
    )
    query = {**PREVIEW, "minutes": "90", "parking_minutes": "30"}
    priced = client_as("viewer").get(reverse("dashboard:tariff", args=["PARK"]), query).context["priced"]
    assert priced.total_parking_time == Decimal("0.5000") and priced.total_parking_cost.excl_vat == Decimal("3.00")


def test_an_invalid_preview_shows_the_field_errors(client_as, tariff):
    response = client_as("viewer").get(
        reverse("dashboard:tariff", args=["AC-1"]), {**PREVIEW, "minutes": "30", "parking_minutes": "45"}
    )
    assert response.context["priced"] is None
    assert "Parking must be shorter than the session" in response.content.decode()


def test_a_missing_tariff_is_404(client_as):
    assert client_as("viewer").get(reverse("dashboard:tariff", args=["NOPE"])).status_code == 404


# --- The editor ------------------------------------------------------------------------------------------------


def test_the_live_preview_answers_with_the_priced_session_or_with_what_is_wrong(client_as, tariff):
    """The element editor posts the form as typed (fragment=1) while staff type: the answer is the preview alone."""
    admin = client_as("admin")
    url = reverse("dashboard:tariff-edit", args=["AC-1"])
    elements = [{"price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}]}]
    live = admin.post(
        url, {**form_data(tariff, elements=json.dumps(elements)), **PREVIEW, "preview": "1", "fragment": "1"}
    )
    html = live.content.decode()
    assert live.status_code == 200 and "<html" not in html
    assert 'data-testid="preview-total-excl">8.00<' in html
    wrong = [{"price_components": [{"type": "KWH", "price": 0.4, "step_size": 1}]}]
    refused = admin.post(
        url, {**form_data(tariff, elements=json.dumps(wrong)), **PREVIEW, "preview": "1", "fragment": "1"}
    )
    assert "KWH" in refused.content.decode() and "preview-total-excl" not in refused.content.decode()
    tariff.refresh_from_db()
    assert tariff.elements[0]["price_components"][1]["price"] == Decimal("0.35")  # nothing saved


def test_a_json_typo_says_where_it_is_and_no_energy_mix_is_an_empty_box(client_as, tariff):
    admin = client_as("admin")
    url = reverse("dashboard:tariff-edit", args=["AC-1"])
    page = admin.get(url)
    assert re.search(r'<textarea name="energy_mix"[^>]*>\s*</textarea>', page.content.decode())
    typo = admin.post(url, form_data(tariff, elements='[{"price_components": [}]'))
    assert typo.status_code == 400
    assert typo.context["form"].errors["elements"] == ["Not valid JSON: Expecting value at line 1, column 24."]


def test_a_tariff_page_lists_the_connectors_priced_with_it(client_as, tariff, station_factory, location):
    from cpo.models import Connector, Location

    station, _ = station_factory("CP-TAR", evses=2)
    Connector.objects.filter(evse__station=station, evse__ocpp_evse_id=1).update(tariff_ids=["AC-1"])
    Connector.objects.filter(evse__station=station, evse__ocpp_evse_id=2).update(tariff_ids=["AC-10"])
    viewer = client_as("viewer")
    page = viewer.get(reverse("dashboard:tariff", args=["AC-1"]))
    assert [(c.evse.station.identity, c.evse.ocpp_evse_id) for c in page.context["connectors"]] == [("CP-TAR", 1)]
    Location.objects.filter(pk=location.pk).update(default_tariff_id="AC-1")
    Connector.objects.filter(evse__station=station, evse__ocpp_evse_id=2).update(tariff_ids=[])
    page = viewer.get(reverse("dashboard:tariff", args=["AC-1"]))
    assert page.context["connectors_total"] == 2
    assert "location default" in page.content.decode() and "its own tariff" in page.content.decode()
