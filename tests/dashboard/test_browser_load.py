"""The load-management page in a real browser (Debian's Chromium) against a live daphne: a charger's per-phase meter
values show, without a reload, as what is drawn on each phase of the site against that phase's limit."""

from decimal import Decimal

import pytest
from ocpp.v16 import call
from playwright.sync_api import expect

from cpo.models import LoadGroup, Token
from tests.dashboard.browser import db, log_in, shot
from tests.dashboard.chargers import ChargerThread
from tests.ocpp_gateway.chargers import now_iso

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_staff_watch_each_phase_fill_up_as_a_single_phase_car_charges(
    live_daphne,
    make_user,
    location,
    station_factory,
    browser,
):
    db(make_user, "vera", "viewer")
    _, secret = db(station_factory, "CP-PHASE-LIVE", evses=1)
    group = db(
        LoadGroup.objects.create,
        name="garage grid",
        location=location,
        limit_amps=Decimal(32),
        limit_amps_l1=Decimal(20),
    )
    db(Token.objects.create, uid="RFID-PHASE")
    context, page = log_in(browser, live_daphne.http_url, "vera")
    page.goto(f"{live_daphne.http_url}/load/{group.pk}/")
    expect(page.locator("[data-testid=limit]")).to_have_text("L1 20.0 A · L2 32.0 A · L3 32.0 A")
    l1, l2 = page.locator("[data-testid=phase-L1]"), page.locator("[data-testid=phase-L2]")
    expect(l1.locator("[data-testid=phase-drawn]")).to_have_text("0.0")

    charger = ChargerThread(live_daphne.ocpp_url("CP-PHASE-LIVE"), "CP-PHASE-LIVE", secret)
    try:
        charger.send(call.BootNotification(charge_point_model="Wallbox", charge_point_vendor="ACME"))
        start = charger.send(
            call.StartTransaction(connector_id=1, id_tag="RFID-PHASE", meter_start=0, timestamp=now_iso())
        )
        # The car charges on one phase: its meter shows current on L1 only.
        charger.send(
            call.MeterValues(
                connector_id=1,
                transaction_id=start.transaction_id,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {"value": amps, "measurand": "Current.Import", "phase": phase, "unit": "A"}
                            for phase, amps in (("L1", "15.6"), ("L2", "0.0"), ("L3", "0.0"))
                        ],
                    }
                ],
            )
        )
        expect(l1.locator("[data-testid=phase-drawn]")).to_have_text("15.6")
        expect(l2.locator("[data-testid=phase-drawn]")).to_have_text("0.0")
        expect(l1.locator("[data-testid=phase-limit]")).to_have_text("20.0")
        expect(page.locator("[data-testid=load-sessions]")).to_contain_text("CP-PHASE-LIVE")
        shot(page, "load-phases")
    finally:
        charger.close()
        context.close()
