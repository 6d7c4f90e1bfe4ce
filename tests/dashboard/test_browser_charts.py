"""Staff in a real browser see the charts of issue 12 items 6 and 7: the load page draws the site's limit (steps by
time of day), the planned and drawn totals and per connector lines, and redraws them live when a session starts;
the station page draws the composite schedule a 2.0.1 station answers. Page and chargers share one daphne that runs
its tasks in-process, so this needs no Redis. Screenshots go to test-output/."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from cpo.models import LoadGroup, Token
from ocpp_gateway.models import CompositeSchedule, LoadSample
from tests.dashboard.browser import db, expect, log_in, shot
from tests.dashboard.chargers import ChargerThread, Scheduling201
from tests.ocpp_gateway.chargers import ProfiledCharger16, now_iso
from tests.support import start_daphne, stop, wait_until

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def charts_daphne(django_db_setup, django_db_blocker):
    server = start_daphne(
        "charts-browser", CELERY_TASK_ALWAYS_EAGER="1", LOAD_MANAGEMENT_STATIONS_TTL_SECONDS="0", OCPP_CALL_TIMEOUT="2"
    )
    yield server
    stop(server)


def series_lengths(page, canvas: str) -> list[int]:
    """How many points each line of the Chart.js chart on `canvas` holds, as drawn in the browser."""
    return page.evaluate(
        "id => Chart.getChart(document.getElementById(id)).data.datasets.map(d => d.data.length)", canvas
    )


@pytest.fixture
def depot(make_user, location, station_factory):
    """A viewer, a station of two EVSEs and its site's limit: 32 A, 48 A at night."""
    make_user("lena", "viewer")
    _, secret = station_factory("CP-CHART", evses=2)
    group = LoadGroup.objects.create(
        name="depot grid",
        location=location,
        limit_amps=Decimal(32),
        schedule=[{"start": "00:00", "end": "06:00", "limit_amps": 48}],
    )
    Token.objects.create(uid="RFID-CHART-1")
    return group, secret


def line_at(page, canvas: str, at_ms: int, value: float, colour: tuple[int, int, int]) -> bool:
    """Whether the chart on `canvas` has a line of `colour` drawn at (`at_ms`, `value`), within a few pixels: read
    from the canvas's pixels, as a person would see it."""
    pixels = page.evaluate(
        """([id, at, value]) => {
          const chart = Chart.getChart(document.getElementById(id));
          const ratio = chart.currentDevicePixelRatio;
          const x = Math.round(chart.scales.x.getPixelForValue(at) * ratio);
          const y = Math.round(chart.scales.y.getPixelForValue(value) * ratio);
          return Array.from(chart.ctx.getImageData(x, y - 3 * ratio, 1, 6 * ratio + 1).data);
        }""",
        [canvas, at_ms, value],
    )
    return any(
        all(abs(pixels[i + k] - colour[k]) < 40 for k in range(3)) and pixels[i + 3] > 200
        for i in range(0, len(pixels), 4)
    )


LIMIT_RED, PLANNED_BLUE = (179, 38, 30), (34, 102, 204)


def local_moment_within_last_day(hour: int) -> int:
    """The last moment, within the past 24 hours, when it was `hour`:30 in Amsterdam (ms since the epoch)."""
    now = datetime.now(ZoneInfo("Europe/Amsterdam"))
    moment = now.replace(hour=hour, minute=30, second=0, microsecond=0)
    if moment > now:
        moment -= timedelta(days=1)
    return int(moment.timestamp() * 1000)


def test_the_load_page_charts_limit_planned_and_drawn_and_redraws_live(charts_daphne, depot, browser):
    group, secret = depot
    charger = ChargerThread(charts_daphne.ocpp_url("CP-CHART"), "CP-CHART", secret, cls=ProfiledCharger16)
    try:
        charger.send(call16.BootNotification(charge_point_model="LM", charge_point_vendor="Test"))
        wait_until(lambda: charger.cp.limits("TxDefaultProfile"), timeout=10)
        context, page = log_in(browser, charts_daphne.http_url, "lena")
        page.goto(f"{charts_daphne.http_url}/load/{group.pk}/?period=24h")
        chart = page.locator("#load-chart")
        expect(chart).to_have_attribute("data-ready", "1")
        expect(page.locator("[data-testid=load-chart-empty]")).to_be_visible()
        limit, planned, drawn = series_lengths(page, "load-chart")
        assert (planned, drawn) == (0, 0) and limit >= 3  # the night's higher limit is a step of its own
        # 48 A in the night, 32 A by day, in Amsterdam's time.
        night, day = local_moment_within_last_day(3), local_moment_within_last_day(12)
        assert line_at(page, "load-chart", night, 48, LIMIT_RED) and not line_at(
            page, "load-chart", night, 32, LIMIT_RED
        )
        assert line_at(page, "load-chart", day, 32, LIMIT_RED) and not line_at(page, "load-chart", day, 48, LIMIT_RED)

        charger.send(call16.StartTransaction(connector_id=1, id_tag="RFID-CHART-1", meter_start=0, timestamp=now_iso()))
        wait_until(lambda: db(LoadSample.objects.filter(load_group_id=group.pk).count) == 1, timeout=10)
        # No reload: the planner's sample reaches the page, which fetches its live part and draws again.
        expect(chart).to_have_attribute("data-samples", "1", timeout=10_000)
        expect(page.locator("#load-connectors-chart")).to_have_attribute("data-ready", "1")
        # One sample: planned is held from it to the end of the period; the car has not reported its draw yet.
        assert series_lengths(page, "load-chart")[1:] == [2, 1]
        assert series_lengths(page, "load-connectors-chart") == [2, 1]  # CP-CHART #1 planned and drawn
        expect(page.locator("[data-testid=planned-total]")).to_contain_text("32")
        shot(page, "load-chart")
        context.close()
    finally:
        charger.close()


@pytest.fixture
def scheduling_station(make_user, station_factory):
    make_user("omar", "operator")
    return station_factory("CS-CHART", evses=2)


def test_the_station_page_draws_the_composite_schedule_an_operator_asked_for(
    charts_daphne, scheduling_station, browser
):
    station, secret = scheduling_station
    charger = ChargerThread(charts_daphne.ocpp_url("CS-CHART"), "CS-CHART", secret, version="2.0.1", cls=Scheduling201)
    try:
        charger.send(call201.BootNotification(charging_station={"model": "S2", "vendor_name": "A"}, reason="PowerUp"))
        context, page = log_in(browser, charts_daphne.http_url, "omar")
        page.goto(f"{charts_daphne.http_url}/stations/CS-CHART/")
        block = page.locator("#composite-schedule-1")
        expect(block.locator("[data-testid=schedule-state]")).to_have_text("Not asked yet.")
        block.locator("select[name=unit]").select_option("W")
        block.locator("[data-testid=ask-schedule]").click()
        block = page.locator("#composite-schedule-1")
        expect(block).to_have_attribute("data-state", "ok")
        expect(page.locator("#schedule-chart-1")).to_have_attribute("data-ready", "1")
        assert series_lengths(page, "schedule-chart-1") == [3]  # two periods and the end of the hour
        # 11 kW for the first half hour (from 12:00 UTC), 7.4 kW for the second.
        start = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp() * 1000)
        quarter, three_quarters = start + 15 * 60_000, start + 45 * 60_000
        assert line_at(page, "schedule-chart-1", quarter, 11000, PLANNED_BLUE)
        assert not line_at(page, "schedule-chart-1", quarter, 7400, PLANNED_BLUE)
        assert line_at(page, "schedule-chart-1", three_quarters, 7400, PLANNED_BLUE)
        expect(block.locator("[data-testid=schedule-periods]")).to_contain_text("7400.0")
        expect(page.locator("#composite-schedule-2")).to_have_attribute("data-state", "empty")
        shot(page, "composite-schedule")
        context.close()
    finally:
        charger.close()
    assert db(lambda: CompositeSchedule.objects.get(station_id=station.pk).requested_by) == "omar"
