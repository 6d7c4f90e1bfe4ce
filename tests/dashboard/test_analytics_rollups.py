"""Analytics roll-ups: closed days read from per-day/per-hour roll-ups give exactly what the live aggregation over the
sessions and CDRs gives, for any period, time zone and bucket; rebuilding is idempotent; pages and CSVs don't change.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from cpo.dashboard.models import AnalyticsDay, AnalyticsHour, AnalyticsLocationDay, AnalyticsPartnerDay
from cpo.dashboard.selectors import analytics
from cpo.dashboard.selectors.period import Period
from cpo.dashboard.services import analytics_rebuild, analytics_rebuild_recent
from cpo.dashboard.tasks import analytics_rollups_refresh

pytestmark = pytest.mark.django_db

FIRST, LAST = date(2026, 3, 20), date(2026, 4, 2)  # Amsterdam moves to summer time on 29 March


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
def test_figures_from_rollups_equal_the_live_aggregation(analytics_network, time_zone):
    live = {p: everything(*p, time_zone) for p in PERIODS}
    assert live[PERIODS[0]]["days"] and any(row["in_use_pct"] for row in live[PERIODS[0]]["hours"])
    assert len(analytics_rebuild(first=date(2026, 3, 1), last=date(2026, 4, 30))) == 61
    for p in PERIODS:
        assert everything(*p, time_zone) == live[p], p


def test_some_days_built_and_others_live_add_up_to_the_same(analytics_network):
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
        sorted(
            AnalyticsPartnerDay.objects.values_list(
                "day",
                "emsp_country_code",
                "emsp_party_id",
                "currency",
                "cdrs",
                "credits",
                "energy_kwh",
                "revenue_excl_vat",
                "revenue_incl_vat",
            )
        ),
        sorted(AnalyticsDay.objects.values_list("day", flat=True)),
    ]


def test_rebuilding_twice_gives_the_same_rows(analytics_network):
    call_command("analytics_rebuild", "--from", "2026-03-15", "--to", "2026-04-05")
    first = rollup_rows()
    assert all(first) and len(first[3]) == 22
    call_command("analytics_rebuild", "--from", "2026-03-15", "--to", "2026-04-05")
    assert rollup_rows() == first


def test_today_is_never_rolled_up_and_the_beat_task_rebuilds_the_last_closed_days(analytics_network):
    today = datetime.now(UTC).date()
    assert analytics_rebuild(first=today - timedelta(days=1), last=today + timedelta(days=3)) == [
        today - timedelta(days=1)
    ]
    assert analytics_rebuild_recent(days=3) == [today - timedelta(days=n) for n in (3, 2, 1)]
    assert analytics_rollups_refresh.apply(kwargs={"days": 2}).get() == 2


@pytest.mark.parametrize("table", ["energy", "locations", "hours", "revenue"])
def test_pages_and_csvs_are_unchanged_by_the_rollups(client_as, analytics_network, table):
    viewer = client_as("viewer")
    query = {"date_from": FIRST.isoformat(), "date_to": LAST.isoformat(), "time_zone": "Europe/Amsterdam"}
    before_page = viewer.get(reverse("dashboard:analytics"), query)
    before_csv = viewer.get(reverse("dashboard:analytics-csv", args=[table]), query).content
    analytics_rebuild(first=FIRST, last=LAST)
    after_page = viewer.get(reverse("dashboard:analytics"), query)
    assert after_page.context["tables"] == before_page.context["tables"]
    assert after_page.context["charts"] == before_page.context["charts"]
    assert viewer.get(reverse("dashboard:analytics-csv", args=[table]), query).content == before_csv
