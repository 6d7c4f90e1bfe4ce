"""The load page's history (issue 12, item 6): each time the planner shares a site's limit it leaves a sample (the
limit, what the chargers hold, what the cars draw, per connector too), the page charts the chosen period with the
time-of-day limit as steps, and housekeeping forgets samples past their retention."""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from ocpp.v16 import call as call16

from cpo.dashboard.selectors.load import load_group_history
from cpo.models import LoadGroup, Token
from ocpp_gateway.models import LoadSample, Transaction
from ocpp_gateway.services.housekeeping import load_samples_prune
from ocpp_gateway.services.load_management import load_sample_record
from tests.ocpp_gateway.chargers import ProfiledCharger16, connected, now_iso
from tests.support import StaffBrowser, await_until, start_daphne, stop


@pytest.fixture(scope="module")
def planner_daphne(django_db_setup, django_db_blocker):
    """A daphne running its tasks in-process and reading load groups on every event (no 30 s cache)."""
    server = start_daphne("load-history", CELERY_TASK_ALWAYS_EAGER="1", LOAD_MANAGEMENT_STATIONS_TTL_SECONDS="0")
    yield server
    stop(server)


def history_on(page: str) -> dict:
    found = re.search(r'<script id="load-history-data" type="application/json">(.*?)</script>', page, re.S)
    assert found, "the page has no chart data"
    return json.loads(found.group(1))


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_samples_follow_the_sessions_and_the_page_charts_them(planner_daphne, location, station_factory):
    _, secret1 = station_factory("CP-HIST-1", evses=1)
    _, secret2 = station_factory("CP-HIST-2", evses=1)
    group = LoadGroup.objects.create(name="garage", location=location, limit_amps=Decimal(32))
    Token.objects.create(uid="RFID-H-1")
    Token.objects.create(uid="RFID-H-2")

    async def scenario():
        url1, url2 = planner_daphne.ocpp_url("CP-HIST-1"), planner_daphne.ocpp_url("CP-HIST-2")
        async with (
            connected(url1, "CP-HIST-1", secret1, cls=ProfiledCharger16) as one,
            connected(url2, "CP-HIST-2", secret2, cls=ProfiledCharger16) as two,
        ):
            for cp in (one, two):
                await cp.call(call16.BootNotification(charge_point_model="LM", charge_point_vendor="Test"))
            await await_until(lambda: one.limits("TxDefaultProfile") and two.limits("TxDefaultProfile"), timeout=10)
            first = await one.call(
                call16.StartTransaction(connector_id=1, id_tag="RFID-H-1", meter_start=0, timestamp=now_iso())
            )
            await await_until(lambda: one.limits() == [32.0], timeout=10)
            # The first car draws 11,040 W: 16 A per phase on 3 x 230 V.
            await one.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=first.transaction_id,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampled_value": [{"value": "11040", "measurand": "Power.Active.Import", "unit": "W"}],
                        }
                    ],
                )
            )
            await await_until(lambda: Transaction.objects.filter(power_last=Decimal(11040)).exists(), timeout=10)
            await two.call(
                call16.StartTransaction(connector_id=1, id_tag="RFID-H-2", meter_start=0, timestamp=now_iso())
            )
            await await_until(lambda: one.limits() == [32.0, 16.0] and two.limits() == [16.0], timeout=10)
            await one.call(
                call16.StopTransaction(meter_stop=4000, timestamp=now_iso(), transaction_id=first.transaction_id)
            )
            await await_until(lambda: two.limits() == [16.0, 32.0], timeout=10)
            await await_until(lambda: LoadSample.objects.filter(load_group=group).count() == 3, timeout=10)

    asyncio.run(scenario())
    samples = list(LoadSample.objects.filter(load_group=group).order_by("taken_at"))
    # First car alone; both sharing (the first drawing 16 A); the second alone after the first left.
    assert [(s.limit_amps, s.planned_amps, s.drawn_amps) for s in samples] == [
        (32, 32, 0),
        (32, 32, 16),
        (32, 32, 0),
    ]
    assert [(c["station"], c["evse"], c["planned"], c["drawn"]) for c in samples[1].connectors] == [
        ("CP-HIST-1", 1, 16.0, 16.0),
        ("CP-HIST-2", 1, 16.0, None),
    ]

    staff = StaffBrowser(planner_daphne, role="viewer")
    page = staff.page(f"/load/{group.pk}/?period=1h")
    assert 'id="load-chart"' in page and 'id="load-connectors-chart"' in page
    data = history_on(page)
    assert [point[1] for point in data["planned"]] == [32.0, 32.0, 32.0]
    assert [point[1] for point in data["drawn"]] == [0.0, 16.0, 0.0]
    assert [point[1] for point in data["limit"]] == [32.0, 32.0]  # no time-of-day schedule: one step
    lines = {c["label"]: c for c in data["connectors"]}
    assert [p[1] for p in lines["CP-HIST-1 #1"]["planned"]] == [32.0, 16.0, None]  # a gap once it left
    assert [p[1] for p in lines["CP-HIST-2 #1"]["planned"]] == [None, 16.0, 32.0]
    # The live part carries the same period, so the chart refreshes with the rest of the page.
    assert f'data-live-url="/load/{group.pk}/live/?period=1h"' in page
    assert history_on(staff.page(f"/load/{group.pk}/live/?period=1h"))["samples"] == 3


@pytest.fixture
def evening_group(location):
    """40 A, but 16 A from 17:00 to 21:00 in Amsterdam (CET in December: 16:00 to 20:00 UTC)."""
    return LoadGroup.objects.create(
        name="evening peak",
        location=location,
        limit_amps=Decimal(40),
        schedule=[{"start": "17:00", "end": "21:00", "limit_amps": 16}],
    )


@pytest.mark.django_db
def test_the_time_of_day_limit_is_drawn_as_steps_in_the_locations_time_zone(evening_group):
    now = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
    history = load_group_history(group=evening_group, hours=24, now=now)
    steps = [(datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M"), amps) for ms, amps in history["limit"]]
    assert steps == [("22:00", 40.0), ("16:00", 16.0), ("20:00", 40.0), ("22:00", 40.0)]
    assert history["samples"] == 0 and history["planned"] == []


@pytest.mark.django_db
def test_the_period_selector_picks_the_samples_and_a_viewer_sees_an_empty_period_said_so(client_as, evening_group):
    for minutes_ago, planned in ((5, 20), (90, 30), (60 * 30, 10)):
        LoadSample.objects.create(
            load_group=evening_group,
            taken_at=timezone.now() - timedelta(minutes=minutes_ago),
            limit_amps=40,
            planned_amps=planned,
            drawn_amps=0,
        )
    client = client_as("viewer")

    def planned(period: str) -> list[float]:
        page = client.get(f"/load/{evening_group.pk}/?period={period}").content.decode()
        return [point[1] for point in history_on(page)["planned"]]

    assert planned("1h") == [20.0]
    assert planned("6h") == [30.0, 20.0]
    assert planned("3d") == [10.0, 30.0, 20.0]
    assert planned("nonsense") == [30.0, 20.0]  # the default: 6 hours
    LoadSample.objects.all().delete()
    page = client.get(f"/load/{evening_group.pk}/").content.decode()
    assert 'data-testid="load-chart-empty"' in page and 'id="load-chart"' in page  # the limit is still drawn


@pytest.mark.django_db
def test_housekeeping_forgets_samples_past_their_retention(evening_group, settings):
    settings.LOAD_HISTORY_RETENTION_DAYS = 14
    for days_ago in (20, 15, 13, 0):
        LoadSample.objects.create(
            load_group=evening_group,
            taken_at=timezone.now() - timedelta(days=days_ago),
            limit_amps=40,
            planned_amps=0,
            drawn_amps=0,
        )
    assert load_samples_prune() == 2
    assert LoadSample.objects.count() == 2


@pytest.mark.django_db
def test_a_planner_run_that_changes_no_share_leaves_no_sample_within_a_minute(evening_group, settings):
    """The periodic run every 30 s would otherwise write two samples a minute per group for nothing new."""
    settings.LOAD_HISTORY_MIN_SECONDS = 60
    first = load_sample_record(
        group=evening_group, limits={1: Decimal(40), 2: Decimal(40), 3: Decimal(40)}, sessions=[], held={}
    )
    assert first is not None
    assert (
        load_sample_record(
            group=evening_group, limits={1: Decimal(40), 2: Decimal(40), 3: Decimal(40)}, sessions=[], held={}
        )
        is None
    )
    # The time of day lowered the limit: that is news.
    assert (
        load_sample_record(
            group=evening_group, limits={1: Decimal(16), 2: Decimal(16), 3: Decimal(16)}, sessions=[], held={}
        )
        is not None
    )
    LoadSample.objects.update(taken_at=timezone.now() - timedelta(seconds=61))
    assert (
        load_sample_record(
            group=evening_group, limits={1: Decimal(16), 2: Decimal(16), 3: Decimal(16)}, sessions=[], held={}
        )
        is not None
    )
    assert LoadSample.objects.count() == 3


@pytest.mark.django_db
def test_a_long_period_draws_every_nth_sample_and_always_the_latest(evening_group, monkeypatch):
    monkeypatch.setattr("cpo.dashboard.selectors.load.CHART_POINTS", 2)
    for minutes_ago in (50, 40, 30, 20, 10):
        LoadSample.objects.create(
            load_group=evening_group,
            taken_at=timezone.now() - timedelta(minutes=minutes_ago),
            limit_amps=40,
            planned_amps=minutes_ago,
            drawn_amps=0,
        )
    history = load_group_history(group=evening_group, hours=1)
    assert [point[1] for point in history["planned"]] == [40.0, 10.0]
