"""An admin edits a tariff with the element forms in a real browser (Chromium), at desktop and phone width: the price
preview follows as they type, the connectors priced with it are listed, and the saved tariff is what partners get.
Screenshots in test-output/."""

from decimal import Decimal

import pytest
from ocpp.v16 import call

from billing.models import Tariff
from billing.services import tariff_seed_demo
from cpo.models import Connector
from tests.dashboard.browser import db, expect, log_in, overflow, shot
from tests.dashboard.chargers import ChargerThread

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = pytest.mark.parametrize("width", [1400, 390], ids=["desktop", "phone"])


@pytest.fixture
def priced_site(make_user, station_factory):
    """The demo tariff AC-1 (1.00 start fee, 0.35 per kWh excl. VAT) on the first connector of CP-TARIFF."""
    make_user("ada", "admin")
    tariff_seed_demo(tariff_id="AC-1")
    station, _ = station_factory("CP-TARIFF", evses=2)
    Connector.objects.filter(evse__station=station, evse__ocpp_evse_id=1).update(tariff_ids=["AC-1"])


@WIDTHS
def test_a_tariff_edited_with_forms_is_priced_as_typed(live_daphne, priced_site, browser, width):
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport={"width": width, "height": 900})
    page.goto(f"{live_daphne.http_url}/tariffs/AC-1/edit/")
    total = page.locator("[data-testid=preview-result] [data-testid=preview-total-excl]")
    expect(total).to_have_text("8.00")  # 20 kWh x 0.35 + 1.00, priced as the page opens
    expect(page.locator("[data-testid=tariff-connectors]")).to_contain_text("CP-TARIFF")
    energy = page.locator("[data-testid=component]").nth(1)
    expect(energy.locator("[data-testid=component-type]")).to_have_value("ENERGY")
    energy.locator("[data-testid=component-price]").fill("0.50")
    expect(total).to_have_text("11.00")  # no click: the preview follows the form
    page.fill("#id_kwh", "10")
    page.keyboard.press("Tab")  # done with the field (on a phone: the keyboard's Done) before saving
    expect(total).to_have_text("6.00")
    assert overflow(page) == 0
    shot(page, f"tariff-editor-{width}")
    page.click("button[name=save]")
    expect(page.locator("[data-testid=components]")).to_contain_text("ENERGY 0.50 +21% VAT")
    saved = db(lambda: Tariff.objects.get(pk="AC-1").elements[0]["price_components"][1]["price"])
    assert Decimal(str(saved)) == Decimal("0.5")
    context.close()


@pytest.fixture
def site(make_user, location):
    make_user("ada", "admin")
    tariff_seed_demo(tariff_id="AC-1")


@WIDTHS
def test_an_admin_onboards_a_charger_with_a_tariff_and_it_connects(live_daphne, site, browser, width):
    """Onboarding as staff do it: the station created with the tariff, the password read off the page, the charger
    configured with it connects and boots, and the tariff's page lists the new connectors."""
    identity = f"CP-NEW-{width}"
    context, page = log_in(browser, live_daphne.http_url, "ada", viewport={"width": width, "height": 900})
    page.goto(f"{live_daphne.http_url}/onboarding/")
    form = page.locator("[data-testid=station-create]")
    form.locator("input[name=identity]").fill(identity)
    form.locator("select[name=location]").select_option("LOC-T1")
    form.locator("input[name=evses]").fill("2")
    form.locator("select[name=tariff]").select_option("AC-1")
    form.locator("button[type=submit]").click()
    secret = page.locator("[data-testid=secret]").inner_text()
    assert overflow(page) == 0
    shot(page, f"onboarded-{width}")
    charger = ChargerThread(live_daphne.ocpp_url(identity), identity, secret)
    try:
        charger.send(call.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME"))
        page.goto(f"{live_daphne.http_url}/stations/{identity}/")
        expect(page.locator("#station-live [data-testid=online]")).to_have_text("online")
        page.goto(f"{live_daphne.http_url}/tariffs/AC-1/")
        expect(page.locator("[data-testid=tariff-connectors] tbody tr")).to_have_count(2)
        expect(page.locator("[data-testid=tariff-connectors]")).to_contain_text(identity)
        shot(page, f"onboarded-tariff-{width}")
    finally:
        charger.close()
    context.close()
