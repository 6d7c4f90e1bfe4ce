"""Busy time (EVSE-seconds in use) per hour: each session counts for its part inside the period, a running one until
now; PostgreSQL's window query and the Python sweep other databases use give the same sums."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection

from cpo.dashboard.selectors import occupancy
from cpo.dashboard.selectors.occupancy import busy_seconds_per_hour_of_week, busy_seconds_per_utc_hour
from cpo.dashboard.selectors.period import Period
from ocpp_gateway.models import Transaction
from tests.dashboard.factories import clock

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 9, tzinfo=UTC)


def charge(station, number: int, start: datetime, end: datetime | None, evse: int = 1) -> Transaction:
    return Transaction.objects.create(
        station=station,
        evse=station.evses.get(ocpp_evse_id=evse),
        transaction_id=str(number),
        ocpp_version="1.6",
        ocpp_evse_id=evse,
        connector_id=1,
        id_tag="T",
        started_at=start,
        ended_at=end,
        meter_start=0,
        status="ENDED" if end else "ACTIVE",
    )


def test_each_session_counts_for_its_part_inside_each_hour(station_factory):
    station, _ = station_factory("CP-O1", evses=3)
    charge(station, 1, DAY + timedelta(hours=8), DAY + timedelta(hours=10))
    charge(station, 2, DAY + timedelta(hours=9, minutes=15), DAY + timedelta(hours=9, minutes=45, microseconds=5), 2)
    charge(station, 3, DAY - timedelta(hours=2), DAY + timedelta(minutes=30), 3)  # started the day before
    charge(station, 4, DAY + timedelta(hours=23, minutes=40), None, 2)  # still running
    with clock(DAY + timedelta(days=5)):
        hours = busy_seconds_per_utc_hour(period=Period.of_days(DAY.date(), DAY.date()))
    assert len(hours) == 24 and sum(hours.values()) == Decimal("12000.000005")
    assert {hour.hour: seconds for hour, seconds in hours.items() if seconds} == {
        0: 1800,
        8: 3600,
        9: Decimal("5400.000005"),
        23: 1200,
    }
    with clock(DAY + timedelta(hours=23, minutes=50)):  # the running one counts until now
        assert (
            busy_seconds_per_utc_hour(period=Period.of_days(DAY.date(), DAY.date()))[DAY + timedelta(hours=23)] == 600
        )


def test_hours_of_the_week_are_local_hours(station_factory):
    station, _ = station_factory("CP-O2", evses=1)
    charge(station, 1, DAY + timedelta(hours=8, minutes=30), DAY + timedelta(hours=9, minutes=30))  # Monday
    week = busy_seconds_per_hour_of_week(
        period=Period.of_days(DAY.date(), DAY.date() + timedelta(days=6)), time_zone="Europe/Amsterdam"
    )
    assert {key: seconds for key, seconds in week.items() if seconds} == {(1, 9): 1800, (1, 10): 1800}


@pytest.mark.parametrize("time_zone", ["Europe/Amsterdam", "America/New_York", "Asia/Kolkata"])
def test_the_python_sweep_gives_what_postgresql_gives(analytics_network, monkeypatch, time_zone):
    if connection.vendor != "postgresql":
        pytest.skip("compares with PostgreSQL's window query (CI's second pass)")
    periods = [
        Period.of_days(datetime(2026, 3, 20).date(), datetime(2026, 4, 2).date()),
        Period.of_days(datetime(2026, 3, 29).date(), datetime(2026, 3, 29).date()),
    ]
    with clock(datetime(2026, 3, 30, 12, 34, 56, 789, tzinfo=UTC)):  # the open transaction runs until now
        in_sql = [
            (busy_seconds_per_utc_hour(period=p), busy_seconds_per_hour_of_week(period=p, time_zone=time_zone))
            for p in periods
        ]
        monkeypatch.setattr(occupancy, "connection", SimpleNamespace(vendor="sqlite"))
        in_python = [
            (busy_seconds_per_utc_hour(period=p), busy_seconds_per_hour_of_week(period=p, time_zone=time_zone))
            for p in periods
        ]
    assert in_python == in_sql and any(sum(hours.values()) for hours, _ in in_sql)
