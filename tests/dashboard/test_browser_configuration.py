"""Staff in a real browser read a charger's configuration on the station page, search it and change a value; the
charger's answer (RebootRequired) is shown with the value. The page and the charger's socket are in one daphne that
runs its tasks in-process (also on Redis, where no Celery worker runs in these tests), so this needs no Redis."""

import pytest
from ocpp.v16 import call

from ocpp_gateway.models import StationVariable
from tests.dashboard.browser import db, expect, log_in, shot
from tests.dashboard.chargers import ChargerThread, Configurable16
from tests.support import start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def eager_daphne(django_db_setup, django_db_blocker):
    server = start_daphne("config-browser", CELERY_TASK_ALWAYS_EAGER="1")
    yield server
    stop(server)


@pytest.fixture
def operator_and_station(make_user, station_factory):
    make_user("otto", "operator")
    return station_factory("CP-CONF", evses=2)


def test_an_operator_searches_the_configuration_and_sets_a_value_that_needs_a_reboot(
    eager_daphne, operator_and_station, browser
):
    live_daphne = eager_daphne
    station, secret = operator_and_station
    charger = ChargerThread(live_daphne.ocpp_url("CP-CONF"), "CP-CONF", secret, cls=Configurable16)
    try:
        charger.send(call.BootNotification(charge_point_model="W1", charge_point_vendor="ACME"))
        wait_until(lambda: db(StationVariable.objects.filter(station_id=station.pk).count) == 3, timeout=10)
        context, _ = log_in(browser, live_daphne.http_url, "otto")
        page = context.new_page()
        page.goto(f"{live_daphne.http_url}/stations/CP-CONF/")
        rows = page.locator("[data-testid=variables] tbody tr")
        expect(rows).to_have_count(3)
        expect(page.locator("[data-testid=variables]")).not_to_contain_text("0011223344556677")

        page.fill("[data-testid=configuration-filter]", "heartbeat")
        page.press("[data-testid=configuration-filter]", "Enter")
        expect(rows).to_have_count(1)
        row = page.locator("tr[data-variable=HeartbeatInterval]")
        row.locator("input[name=value]").fill("60")
        row.locator("button[type=submit]").click()
        row = page.locator("tr[data-variable=HeartbeatInterval]")
        expect(row.locator(".variable-set")).to_contain_text("60 → RebootRequired")
        expect(row.locator(".variable-value")).to_have_text("300")
        expect(page.locator("[data-testid=configuration-filter]")).to_have_value("heartbeat")  # the search is kept
        shot(page, "station-configuration")
    finally:
        charger.close()
    assert charger.cp.changes == [("HeartbeatInterval", "60")]
