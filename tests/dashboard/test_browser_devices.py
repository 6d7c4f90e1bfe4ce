"""Device management in a real browser: an operator starts a firmware campaign on the Firmware page and follows it
on the campaign's page (one station updating at a time, pause, resume); asks a charger for its diagnostics from the
station page and downloads the file it uploaded; sees the station's local list version and resends the list. The
pages and the chargers' sockets are in one daphne that runs its tasks in-process, so this needs no Redis."""

import pytest
from django.core.files.base import ContentFile
from ocpp.v16 import call

from ocpp_gateway.models import DiagnosticsUpload, FirmwareImage, FirmwareUpdate, LocalAuthList
from tests.dashboard.browser import db, expect, log_in, shot
from tests.dashboard.chargers import ChargerThread
from tests.ocpp_gateway.diagnostics_chargers import DIAGNOSTICS, DiagnosticsCharger16
from tests.ocpp_gateway.firmware_chargers import HoldingFirmwareCharger16
from tests.ocpp_gateway.local_list_chargers import ListCharger16
from tests.support import start_daphne_with_uploads, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def devices_daphne(django_db_setup, django_db_blocker, uploads_dir):
    """Tasks in-process; chargers download firmware from it and upload diagnostics to it."""
    server = start_daphne_with_uploads("devices-browser", uploads_dir, OCPP_CALL_TIMEOUT="3")
    yield server
    stop(server)


def boot(charger: ChargerThread, model: str = "W1") -> None:
    charger.send(call.BootNotification(charge_point_model=model, charge_point_vendor="ACME"))


def status_of(identity: str) -> str:
    return db(lambda: FirmwareUpdate.objects.get(station__identity=identity).status)


@pytest.fixture
def firmware_network(make_user, station_factory, settings, uploads_dir):
    """An operator, an image in the server's uploads directory and two stations (made before the browser starts:
    Playwright's sync API keeps an event loop running in the test's thread)."""
    make_user("fiona", "operator")
    settings.OCPP_UPLOADS_DIR = uploads_dir
    image = FirmwareImage(name="B1 firmware", version="3.0.0")
    image.file.save("b1-3.0.0.bin", ContentFile(b"\x7fB1" * 1000))
    return {identity: station_factory(identity, evses=1)[1] for identity in ("FWB-1", "FWB-2")}


def test_an_operator_starts_a_firmware_campaign_follows_it_and_pauses_and_resumes_it(
    devices_daphne, firmware_network, browser
):
    """Two stations, one updating at a time: the second waits while the first installs; paused, nothing new goes
    out even once the first installed; resumed, the second is sent the update."""
    secrets = firmware_network
    chargers = {
        identity: ChargerThread(devices_daphne.ocpp_url(identity), identity, secret, cls=HoldingFirmwareCharger16)
        for identity, secret in secrets.items()
    }
    try:
        for charger in chargers.values():
            boot(charger, "B1")
        context, page = log_in(browser, devices_daphne.http_url, "fiona")
        page.goto(f"{devices_daphne.http_url}/firmware/")
        expect(page.locator("[data-testid=campaigns]")).to_contain_text("No campaign yet.")
        form = page.locator("#campaign-start form")
        form.locator("input[name=name]").fill("B1 to 3.0.0")
        form.locator("input[name=model]").fill("B1")
        form.locator("input[name=rate]").fill("5")
        form.locator("input[name=max_concurrent]").fill("1")
        form.locator("button[type=submit]").click()
        expect(page.locator("h1")).to_contain_text("B1 to 3.0.0")
        expect(page.locator(".messages")).to_contain_text("Campaign B1 to 3.0.0 started: 2 stations, 5 per minute")
        wait_until(lambda: status_of("FWB-1") == "installing", timeout=10)

        page.reload()
        expect(page.locator("[data-testid=campaign-status]")).to_have_text("Running")
        expect(page.locator("[data-testid=campaign-progress]")).to_contain_text("0 installed · 1 pending · 1 under way")
        expect(page.locator("tr[data-station=FWB-1] [data-testid=update-status]")).to_have_text("Installing")
        expect(page.locator("tr[data-station=FWB-1]")).to_contain_text("1 of 3")
        expect(page.locator("tr[data-station=FWB-2] [data-testid=update-status]")).to_have_text("Pending")
        shot(page, "firmware-campaign-running")

        page.click("[data-testid=campaign-pause]")
        expect(page.locator("[data-testid=campaign-status]")).to_have_text("Paused")
        expect(page.locator("[data-testid=campaign-status-reason]")).to_contain_text("paused by fiona")
        expect(page.locator("[data-testid=campaign-pause]")).to_have_count(0)
        chargers["FWB-1"].loop.call_soon_threadsafe(chargers["FWB-1"].cp.release.set)
        wait_until(lambda: status_of("FWB-1") == "installed", timeout=10)
        assert chargers["FWB-2"].cp.updates == []  # paused: nothing new went out

        page.click("[data-testid=campaign-resume]")
        expect(page.locator("[data-testid=campaign-status]")).to_have_text("Running")
        wait_until(lambda: status_of("FWB-2") == "installing", timeout=10)
        page.reload()
        expect(page.locator("tr[data-station=FWB-1] [data-testid=update-status]")).to_have_text("Installed")
        expect(page.locator("tr[data-station=FWB-2] [data-testid=update-status]")).to_have_text("Installing")
        expect(page.locator("[data-testid=campaign-progress]")).to_contain_text("1 installed · 0 pending · 1 under way")

        page.goto(f"{devices_daphne.http_url}/firmware/")
        row = page.locator("[data-testid=campaigns] tbody tr").first
        expect(row).to_contain_text("B1 to 3.0.0")
        expect(row.locator("[data-testid=campaign-status]")).to_have_text("Running")
        shot(page, "firmware-campaigns")
        context.close()
    finally:
        for charger in chargers.values():
            charger.loop.call_soon_threadsafe(charger.cp.release.set)
            charger.close()


@pytest.fixture
def diagnostics_station(make_user, station_factory):
    make_user("dora", "operator")
    return station_factory("DIAG-B", evses=1)[1]


def test_an_operator_requests_diagnostics_and_downloads_the_file_the_charger_uploaded(
    devices_daphne, diagnostics_station, browser
):
    secret = diagnostics_station
    charger = ChargerThread(devices_daphne.ocpp_url("DIAG-B"), "DIAG-B", secret, cls=DiagnosticsCharger16)
    try:
        boot(charger)
        context, page = log_in(browser, devices_daphne.http_url, "dora")
        page.goto(f"{devices_daphne.http_url}/stations/DIAG-B/")
        block = page.locator("[data-testid=diagnostics]")
        expect(block).to_contain_text("None requested.")
        block.locator("input[name=hours]").fill("24")
        block.locator("button[type=submit]").click()
        expect(page.locator(".messages")).to_contain_text("Diagnostics requested: accepted (file diag-CP.zip)")
        wait_until(
            lambda: db(lambda: DiagnosticsUpload.objects.get(station__identity="DIAG-B").status) == "received",
            timeout=10,
        )
        page.reload()
        row = page.locator("[data-testid=diagnostics-uploads] tbody tr").first
        expect(row.locator("[data-testid=diagnostics-status]")).to_have_text("file received")
        expect(row).to_contain_text("dora")
        with page.expect_download() as download:
            row.locator("a", has_text="diag-CP.zip").click()
        assert download.value.suggested_filename == "diag-CP.zip"
        assert open(download.value.path(), "rb").read() == DIAGNOSTICS
        shot(page, "station-diagnostics")
        context.close()
    finally:
        charger.close()
    assert len(charger.cp.requests) == 1


@pytest.fixture
def list_station(make_user, station_factory, local_token):
    make_user("lena", "operator")
    return station_factory("LL-B", evses=1)[1]


def test_an_operator_sees_the_local_list_version_and_resends_the_whole_list(
    devices_daphne, list_station, local_token, browser
):
    secret = list_station
    charger = ChargerThread(devices_daphne.ocpp_url("LL-B"), "LL-B", secret, cls=ListCharger16)
    try:
        boot(charger)
        wait_until(lambda: db(lambda: LocalAuthList.objects.filter(station__identity="LL-B", state="in_sync").exists()))
        context, page = log_in(browser, devices_daphne.http_url, "lena")
        page.goto(f"{devices_daphne.http_url}/stations/LL-B/")
        state = page.locator("[data-testid=local-list-state]")
        expect(state).to_contain_text("version 1")
        expect(state).to_contain_text("1 entries")
        page.locator("[data-testid=local-list] button[type=submit]").click()
        expect(page.locator(".messages")).to_contain_text("Local list sent: version 2")
        expect(state).to_contain_text("version 2")
        expect(state).to_contain_text("Accepted")
        shot(page, "station-local-list")
        context.close()
    finally:
        charger.close()
    assert [(kind, version) for kind, version, _ in charger.cp.local_list.updates] == [("Full", 1), ("Full", 2)]
    assert charger.cp.local_list.entries == {local_token.uid: "Accepted"}
