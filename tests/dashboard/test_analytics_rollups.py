"""Analytics roll-ups: closed days read from per-day/per-hour roll-ups give exactly what the live aggregation over the
sessions and CDRs gives, for any period, time zone and bucket; rebuilding is idempotent; pages and CSVs don't change.
"""

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from cpo.dashboard.models import AnalyticsDay, AnalyticsHour, AnalyticsLocationDay, AnalyticsPartnerDay
from cpo.dashboard.selectors import analytics
from cpo.dashboard.selectors.period import Period
from cpo.dashboard.services import analytics_rebuild, analytics_rebuild_recent
from cpo.dashboard.tasks import analytics_rollups_refresh
from cpo.models import Location
from ocpp_gateway.models import Transaction
from tests.dashboard.cdrs import make_cdr, make_session
from tests.dashboard.test_partners import registered_partner

pytestmark = pytest.mark.django_db

FIRST, LAST = date(2026, 3, 20), date(2026, 4, 2)  # Amsterdam moves to summer time on 29 March


@pytest.fixture
def network(station_factory, location):
    """Two locations, three stations, ~150 sessions over two weeks (some across midnight, some longer than a day, one
    never closed) and CDRs of two partners with a credit."""
    rng = random.Random(7)
    other = Location.objects.create(id="LOC-T2", name="Other", address="Weg 2", city="Gouda", postal_code="2801AA",
                                    country="NLD", latitude=Decimal("52.0"), longitude=Decimal("4.7"),
                                    time_zone="Europe/Amsterdam")
    from cpo.services import station_create

    stations = [station_factory("CP-R1", evses=2)[0], station_factory("CP-R2", evses=3)[0],
                station_create(identity="CP-R3", location=other, evses=2)[0]]
    number = 0
    start0 = datetime(2026, 3, 18, tzinfo=UTC)
    for station in stations:
        for evse in station.evses.all():
            moment = start0 + timedelta(minutes=rng.randrange(600))
            while moment < datetime(2026, 4, 4, tzinfo=UTC):
                number += 1
                hours = rng.choice([0.25, 0.5, 1, 2.5, 7, 13, 30])
                kwh = Decimal(rng.randrange(1, 60000)) / 1000
                Transaction.objects.create(
                    station=station, evse=evse, transaction_id=str(number), ocpp_version="1.6",
                    ocpp_evse_id=evse.ocpp_evse_id, connector_id=1, id_tag="T", started_at=moment,
                    ended_at=moment + timedelta(hours=hours), meter_start=Decimal(500),
                    meter_stop=Decimal(500) + kwh * 1000, status="ENDED")
                moment += timedelta(hours=hours, minutes=rng.randrange(5, 900), seconds=rng.randrange(60))
    Transaction.objects.create(  # a charger that never closed its transaction
        station=stations[0], evse=stations[0].evses.first(), transaction_id="open", ocpp_version="1.6",
        ocpp_evse_id=1, connector_id=1, id_tag="T", started_at=datetime(2026, 3, 25, 6, 30, tzinfo=UTC),
        meter_start=Decimal(0), meter_last=Decimal(4200), status="ACTIVE")
    registered_partner()
    registered_partner("DE", "ABC", "Abc Mobility")
    for i in range(40):
        start = datetime(2026, 3, 19, 12, tzinfo=UTC) + timedelta(hours=9 * i, minutes=7 * i)
        emsp = [("NL", "EXM"), ("DE", "ABC"), ("", "")][i % 3]
        cdr = make_cdr(make_session(station=stations[i % 3], number=10_000 + i, start=start,
                                    kwh=Decimal(i + 1), emsp=emsp, uid=f"U{i}"),
                       issued=start + timedelta(hours=1, minutes=30), energy=(Decimal(i) / 3, Decimal(i) / 2))
        if i % 7 == 0:
            make_cdr(cdr.session, issued=start + timedelta(hours=20), credit_of=cdr)
    return stations


PERIODS = [(FIRST, LAST), (date(2026, 3, 24), date(2026, 3, 24)), (date(2026, 3, 10), date(2026, 4, 10))]


def everything(first: date, last: date, time_zone: str) -> dict:
    period = Period.of_days(first, last)
    return {
        "days": analytics.energy_per_bucket(period=period, bucket="day", time_zone=time_zone),
        "weeks": analytics.energy_per_bucket(period=period, bucket="week", time_zone=time_zone),
        "locations": analytics.utilisation_per_location(period=period),
        "hours": analytics.hour_of_week(period=period, time_zone=time_zone),
        "revenue": analytics.revenue_per_partner(period=period),
    }


@pytest.mark.parametrize("time_zone", ["Europe/Amsterdam", "UTC", "America/New_York", "Asia/Kolkata"])
def test_figures_from_rollups_equal_the_live_aggregation(network, time_zone):
    live = {p: everything(*p, time_zone) for p in PERIODS}
    assert live[PERIODS[0]]["days"] and any(row["in_use_pct"] for row in live[PERIODS[0]]["hours"])
    assert len(analytics_rebuild(first=date(2026, 3, 1), last=date(2026, 4, 30))) == 61
    for p in PERIODS:
        assert everything(*p, time_zone) == live[p], p


def test_some_days_built_and_others_live_add_up_to_the_same(network):
    live = everything(FIRST, LAST, "Europe/Amsterdam")
    analytics_rebuild(first=date(2026, 3, 22), last=date(2026, 3, 26))
    analytics_rebuild(first=date(2026, 3, 29), last=date(2026, 3, 29))
    split = analytics.analytics_split(period=Period.of_days(FIRST, LAST))
    assert split.built == [(date(2026, 3, 22), date(2026, 3, 26)), (date(2026, 3, 29), date(2026, 3, 29))]
    assert len(split.live) == 3
    assert everything(FIRST, LAST, "Europe/Amsterdam") == live


def rollup_rows() -> list:
    return [
        sorted(AnalyticsHour.objects.values_list("hour", "sessions", "energy_wh", "busy_seconds")),
        sorted(AnalyticsLocationDay.objects.values_list("day", "location_id", "sessions", "energy_wh", "busy_seconds")),
        sorted(AnalyticsPartnerDay.objects.values_list("day", "emsp_country_code", "emsp_party_id", "currency", "cdrs",
                                                       "credits", "energy_kwh", "revenue_excl_vat",
                                                       "revenue_incl_vat")),
        sorted(AnalyticsDay.objects.values_list("day", flat=True)),
    ]


def test_rebuilding_twice_gives_the_same_rows(network):
    call_command("analytics_rebuild", "--from", "2026-03-15", "--to", "2026-04-05")
    first = rollup_rows()
    assert all(first) and len(first[3]) == 22
    call_command("analytics_rebuild", "--from", "2026-03-15", "--to", "2026-04-05")
    assert rollup_rows() == first


def test_today_is_never_rolled_up_and_the_beat_task_rebuilds_the_last_closed_days(network):
    today = datetime.now(UTC).date()
    assert analytics_rebuild(first=today - timedelta(days=1), last=today + timedelta(days=3)) == [
        today - timedelta(days=1)]
    assert analytics_rebuild_recent(days=3) == [today - timedelta(days=n) for n in (3, 2, 1)]
    assert analytics_rollups_refresh.apply(kwargs={"days": 2}).get() == 2


@pytest.mark.parametrize("table", ["energy", "locations", "hours", "revenue"])
def test_pages_and_csvs_are_unchanged_by_the_rollups(client_as, network, table):
    viewer = client_as("viewer")
    query = {"date_from": FIRST.isoformat(), "date_to": LAST.isoformat(), "time_zone": "Europe/Amsterdam"}
    before_page = viewer.get(reverse("dashboard:analytics"), query)
    before_csv = viewer.get(reverse("dashboard:analytics-csv", args=[table]), query).content
    analytics_rebuild(first=FIRST, last=LAST)
    after_page = viewer.get(reverse("dashboard:analytics"), query)
    assert after_page.context["tables"] == before_page.context["tables"]
    assert after_page.context["charts"] == before_page.context["charts"]
    assert viewer.get(reverse("dashboard:analytics-csv", args=[table]), query).content == before_csv
