"""Staff in a real browser (Debian's Chromium driven by Playwright) against a live daphne, with a simulated OCPP 1.6
charger on the same server: the pages update live as the charger reports, and a remote stop sent from the station
page ends the transaction. Screenshots go to test-output/."""

import csv
import io
import re
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from ocpp.routing import after, on
from ocpp.v16 import call
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action

from billing.services import tariff_seed_demo
from cpo.dashboard.models import AuditLog
from ocpi_api.models import OutboxStatus
from ocpp_gateway.models import Transaction
from tests.dashboard.browser import CHROMIUM, db, expect, log_in, shot
from tests.dashboard.chargers import ChargerThread
from tests.dashboard.factories import T0, make_cdr, make_session, push, registered_partner
from tests.ocpp_gateway.chargers import Charger16, now_iso
from tests.support import OUTPUT

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not shutil.which("chromium"),
        reason="Debian's chromium is not installed (apt-get install -y chromium)",
    ),
]


class StoppingCharger(Charger16):
    """Accepts RemoteStopTransaction, then stops the transaction as a real charger does."""

    meter_stop = 5200

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id, **kwargs):
        self.received.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return result16.RemoteStopTransaction(status="Accepted")

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id, **kwargs):
        await self.call(
            call.StopTransaction(
                meter_stop=self.meter_stop, timestamp=now_iso(), transaction_id=transaction_id, reason="Remote"
            )
        )
        await self.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
        )


@pytest.fixture
def operator_and_station(make_user, station_factory, local_token):
    make_user("olga", "operator")
    station, secret = station_factory("CP-LIVE", evses=2)
    return station, secret, local_token


@pytest.mark.parametrize("width", [1400, 390], ids=["desktop", "phone"])
def test_staff_watch_a_charge_live_and_stop_it_remotely(live_daphne, operator_and_station, browser, width):
    station, secret, local_token = operator_and_station
    context, overview = log_in(browser, live_daphne.http_url, "olga", viewport={"width": width, "height": 900})
    suffix = "" if width == 1400 else f"-{width}"
    page = context.new_page()
    page.goto(f"{live_daphne.http_url}/stations/CP-LIVE/")
    expect(page.locator("#live-state")).to_have_text("● live")
    connector = page.locator("#station-live tr[data-evse='1']")
    expect(connector.locator("[data-testid=status]")).to_have_text("Unknown")
    expect(page.locator("[data-testid=online]")).to_have_text("offline")

    charger = ChargerThread(live_daphne.ocpp_url("CP-LIVE"), "CP-LIVE", secret, cls=StoppingCharger)
    try:
        charger.send(
            call.BootNotification(charge_point_model="Wallbox X", charge_point_vendor="ACME", firmware_version="1.2.3")
        )
        charger.send(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now_iso())
        )
        # No reload: the websocket event makes the page fetch its live part again.
        expect(connector.locator("[data-testid=status]")).to_have_text("Available")
        expect(page.locator("[data-testid=online]")).to_have_text("online")
        expect(page.locator("[data-testid=ocpp-version]")).to_have_text("OCPP 1.6J")
        shot(page, "station-available" + suffix)

        start = charger.send(
            call.StartTransaction(connector_id=1, id_tag=local_token.uid, meter_start=1000, timestamp=now_iso())
        )
        charger.send(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Charging", timestamp=now_iso())
        )
        expect(connector.locator("[data-testid=status]")).to_have_text("Charging")
        expect(connector.locator("[data-testid=transaction]")).to_contain_text(str(start.transaction_id))
        charger.send(
            call.MeterValues(
                connector_id=1,
                transaction_id=start.transaction_id,
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampledValue": [
                            {"value": "3400", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                            {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                        ],
                    }
                ],
            )
        )
        expect(connector.locator("[data-testid=energy]")).to_have_text("2.40")
        expect(overview.locator("[data-testid=active-count]")).to_have_text("1")
        expect(overview.locator("[data-testid=connectors-by-status]")).to_contain_text("Charging 1")
        expect(overview.locator("[data-testid=active-sessions]")).to_contain_text("CP-LIVE")
        expect(overview.locator("#map")).to_have_attribute("data-colours", "charging")  # the map follows too
        shot(page, "station-charging" + suffix)
        shot(overview, "overview-charging" + suffix)

        # The stop asks first, naming the session and the station; saying no sends nothing.
        questions = []

        def answer(dialog, accept):
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", lambda dialog: answer(dialog, False))
        page.locator("[data-testid=stop]").click()
        expect(connector.locator("[data-testid=status]")).to_have_text("Charging")
        assert questions == [
            f"Stop charging session {start.transaction_id} (token {local_token.uid}, connector 1) on station CP-LIVE?"
        ]
        assert charger.cp.received == []
        page.once("dialog", lambda dialog: answer(dialog, True))
        page.locator("[data-testid=stop]").click()  # waits for the charger's answer, then shows it by the form
        result = page.locator("#command-remote-stop [data-testid=command-result]")
        expect(result).to_have_text("RemoteStopTransaction: Accepted")
        expect(result).to_be_in_viewport()
        expect(connector.locator("[data-testid=transaction]")).to_have_text("–")
        expect(connector.locator("[data-testid=status]")).to_have_text("Available")
        expect(overview.locator("[data-testid=active-count]")).to_have_text("0")
        expect(page.locator("[data-testid=audit] [data-testid=answer]").first).to_have_text("Accepted")
        expect(page.locator("[data-testid=audit]")).to_contain_text("olga")
        shot(page, "station-stopped" + suffix)
        assert charger.cp.received == [("RemoteStopTransaction", {"transaction_id": start.transaction_id})]
    finally:
        charger.close()

    tx = db(Transaction.objects.get, station=station)
    assert tx.status == "ENDED" and tx.stop_reason == "Remote" and tx.meter_stop == 5200
    audit = db(AuditLog.objects.get, action="RemoteStopTransaction")
    assert audit.username == "olga" and audit.ok and audit.answer == {"status": "Accepted"}
    assert audit.payload == {"transactionId": start.transaction_id}

    session = context.new_page()
    session.goto(f"{live_daphne.http_url}/sessions/{tx.pk}/")
    expect(session.locator("[data-testid=session-status]")).to_have_text("Ended")
    expect(session.locator("[data-testid=session-energy]")).to_have_text("4.20 kWh")
    expect(session.locator("#meter-chart")).to_have_attribute("data-ready", "1")
    shot(session, "session-detail" + suffix)

    overview.reload()
    expect(overview.locator("#map")).to_have_attribute("data-ready", "1")
    expect(overview.locator("#map")).to_have_attribute("data-colours", "available")
    expect(overview.locator("#map .leaflet-interactive")).to_have_count(1)
    shot(overview, "overview-after" + suffix)
    context.close()


@pytest.fixture
def viewer(make_user):
    return make_user("vera", "viewer")


def test_the_login_page_refuses_a_wrong_password_and_the_live_socket_refuses_strangers(live_daphne, viewer, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_daphne.http_url}/stations/")
    assert "/login/?next=/stations/" in page.url
    page.fill("input[name=username]", "vera")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".msg.error")).to_contain_text("correct username and password")
    shot(page, "login-refused")
    # Without a session the dashboard socket is closed before it opens.
    closed = page.evaluate("""() => new Promise(resolve => {
        const ws = new WebSocket(`ws://${location.host}/ws/dashboard/`);
        ws.onopen = () => resolve("open");
        ws.onclose = () => resolve("closed");
    })""")
    assert closed == "closed"
    context.close()


@pytest.fixture
def billed(make_user, station_factory):
    """An admin, and two CDRs of NL*EXM: one delivered, one whose push failed."""
    make_user("ada", "admin")
    partner = registered_partner()
    station, _ = station_factory("CP-BILL", evses=1)
    first = make_cdr(make_session(station=station, number=1, start=T0, kwh=Decimal("20")), issued=T0)
    second = make_cdr(
        make_session(station=station, number=2, start=T0 + timedelta(hours=2), kwh=Decimal("10.5"), uid="TOKEN-2"),
        issued=T0 + timedelta(hours=3),
        energy=(Decimal("3.68"), Decimal("4.45")),
    )
    push(partner, OutboxStatus.SENT, sent_at=T0, key=f"cdrs:NL:CPO:{first.id}")
    push(partner, OutboxStatus.FAILED, attempts=5, error="ReadTimeout", key=f"cdrs:NL:CPO:{second.id}")
    return partner


def test_staff_filter_cdrs_and_export_them_as_csv(live_daphne, billed, browser):
    context, _ = log_in(browser, live_daphne.http_url, "ada")
    page = context.new_page()
    page.goto(f"{live_daphne.http_url}/cdrs/")
    page.select_option("select[name=partner]", str(billed.pk))
    page.fill("input[name=issued_from]", "2026-03-10")
    page.fill("input[name=issued_to]", "2026-03-10")
    page.click("[data-testid=cdr-filters] button")
    expect(page.locator("[data-testid=cdrs] tbody tr")).to_have_count(2)
    expect(page.locator("tr[data-cdr='CDR-S2'] [data-testid=push-state]")).to_have_text("failed")
    expect(page.locator("tr[data-cdr='CDR-S1'] [data-testid=push-state]")).to_have_text("delivered")
    shot(page, "cdrs")
    with page.expect_download() as download_info:
        page.click("[data-testid=cdr-export]")
    download = download_info.value
    assert download.suggested_filename == "cdrs_nl-exm_2026-03-10_2026-03-10.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert sorted((r["id"], r["total_cost_excl_vat"], r["push_state"]) for r in rows) == [
        ("CDR-S1", "8.0000", "delivered"),
        ("CDR-S2", "4.6800", "failed"),
    ]
    (OUTPUT / "dashboard-cdrs.csv").write_text(open(download.path(), encoding="utf-8").read())

    page.click("tr[data-cdr='CDR-S2'] a")
    expect(page.locator("[data-testid=total-excl]")).to_have_text("4.68")
    expect(page.locator("#push")).to_contain_text("ReadTimeout")
    shot(page, "cdr-detail")
    context.close()


def test_admins_see_partners_tariffs_and_analytics(live_daphne, billed, browser):
    db(tariff_seed_demo, tariff_id="AC-1")
    context, _ = log_in(browser, live_daphne.http_url, "ada")
    page = context.new_page()
    page.goto(f"{live_daphne.http_url}/partners/")
    expect(page.locator("[data-testid=partners]")).to_contain_text("Example EMSP")
    expect(page.locator(f"tr[data-partner='{billed.pk}'] [data-testid=failed]")).to_have_text("1")
    shot(page, "partners")
    page.goto(
        f"{live_daphne.http_url}/tariffs/AC-1/?kwh=20&minutes=90&parking_minutes=0&start=2026-03-10T18:00"
        "&time_zone=Europe/Amsterdam"
    )
    expect(page.locator("[data-testid=preview-total-incl]")).to_have_text("9.68")
    shot(page, "tariff-preview")
    page.goto(f"{live_daphne.http_url}/analytics/?date_from=2026-03-01&date_to=2026-03-31")
    expect(page.locator("#energy-chart")).to_have_attribute("data-ready", "1")
    expect(page.locator("#revenue-chart")).to_have_attribute("data-ready", "1")
    expect(page.locator("[data-testid=table-revenue]")).to_contain_text("12.68")
    shot(page, "analytics")
    context.close()


XSS_NAME = '<img src=x onerror="window.__xss = 1">Evil Plaza'


def test_a_location_name_with_markup_is_shown_as_text_on_the_map_and_nothing_breaks_the_csp(
    live_daphne, viewer, station_factory, browser
):
    """Whoever can edit a location must not run script in staff sessions: the map's tooltip shows the name as
    text, and the page reports no Content-Security-Policy violation (no inline script or style left anywhere)."""
    station, _ = db(station_factory, "CP-XSS", evses=1)
    db(lambda: type(station.location).objects.filter(pk=station.location_id).update(name=XSS_NAME, city="<b>Town</b>"))
    context, page = log_in(browser, live_daphne.http_url, "vera")
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.reload()
    expect(page.locator("#map")).to_have_attribute("data-ready", "1")
    page.locator("#map .leaflet-marker-icon").first.hover()
    tooltip = page.locator(".leaflet-tooltip").last
    expect(tooltip).to_contain_text(XSS_NAME)
    expect(tooltip).to_contain_text("<b>Town</b>")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator(".leaflet-tooltip img").count() == 0
    for path in ("/stations/", "/sessions/", "/cdrs/", "/analytics/", f"/stations/{station.identity}/"):
        page.goto(f"{live_daphne.http_url}{path}")
    shot(page, "xss-as-text")
    assert violations == []
    context.close()


def test_two_stations_of_one_site_are_a_cluster_coloured_by_the_charging_one_and_spread_on_click(
    live_daphne, viewer, station_factory, browser
):
    """Stations share their location's position: they are one numbered circle, blue because one charges (an idle
    station never hides a charging one), and two station markers once staff click it."""
    from cpo.models import EVSE

    db(station_factory, "CP-SITE-1", evses=1)
    db(station_factory, "CP-SITE-2", evses=1)
    db(lambda: EVSE.objects.filter(station__identity="CP-SITE-1").update(status="AVAILABLE"))
    db(lambda: EVSE.objects.filter(station__identity="CP-SITE-2").update(status="CHARGING"))
    context, page = log_in(browser, live_daphne.http_url, "vera")
    expect(page.locator("#map")).to_have_attribute("data-ready", "2")
    cluster = page.locator("#map .map-cluster")
    expect(cluster).to_have_count(1)
    expect(cluster).to_have_text("2")
    expect(cluster).to_have_class(re.compile(r"\bmap-charging\b"))
    cluster.click()
    expect(page.locator("#map .map-station")).to_have_count(2)
    expect(page.locator("#map .map-station.map-charging")).to_have_count(1)
    shot(page, "map-site-spread")
    context.close()
