"""EVSE-seconds in use per hour: the busy time behind utilisation, peak hours and their roll-ups.

A sweep over the period: +1 at each session start, -1 at its end, 0 at every UTC hour boundary; the running sum is
the number of sessions in progress, constant up to the next event, so each step (which never crosses an hour) adds
sessions x its length to the hour it starts in. PostgreSQL runs it as one window query (rows scanned: two per session
in the period plus one per hour, whatever the sessions' lengths; a charger that never closed its transaction costs two
rows, not one per hour it stayed open). Other databases (SQLite, the embedded default) have no generate_series or time
zones in SQL: there the same steps are taken in Python over each session's part inside the period, so both give the
same sums (tests/dashboard/test_occupancy.py)."""

from collections.abc import Callable, Hashable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from cpo.dashboard.selectors.period import Period, seconds_exact
from ocpp_gateway.models import Transaction

OCCUPANCY_SQL = """
WITH inside AS (
    SELECT GREATEST(t.started_at, %(start)s) AS s, LEAST(COALESCE(t.ended_at, %(now)s), %(end)s) AS e
    FROM {table} t
    WHERE t.started_at < %(end)s AND (t.ended_at IS NULL OR t.ended_at > %(start)s)
), events AS (
    SELECT s AS at, 1 AS delta FROM inside WHERE e > s
    UNION ALL SELECT e, -1 FROM inside WHERE e > s
    UNION ALL SELECT h, 0 FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 hour') h
), steps AS (
    SELECT at, SUM(delta) OVER w AS busy, LEAD(at) OVER w AS next_at
    FROM events WINDOW w AS (ORDER BY at, delta DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT {groups}, SUM(busy * EXTRACT(EPOCH FROM next_at - at)) AS seconds
FROM steps
WHERE next_at > at
GROUP BY {group_by}
"""
HOUR_OF_WEEK_GROUPS = (
    "EXTRACT(ISODOW FROM at AT TIME ZONE %(tz)s)::int AS dow, EXTRACT(HOUR FROM at AT TIME ZONE %(tz)s)::int AS hour",
    "1, 2",
)
UTC_HOUR_GROUPS = ("date_trunc('hour', at AT TIME ZONE 'UTC') AS hour", "1")

K = TypeVar("K", bound=Hashable)


def transactions_overlapping(period: Period) -> QuerySet[Transaction]:
    """Transactions with a part inside the period (a running one lasts until now)."""
    return Transaction.objects.filter(started_at__lt=period.end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=period.start)
    )


def busy_seconds_per_utc_hour(*, period: Period) -> dict[datetime, Decimal]:
    """EVSE-seconds in use per UTC hour of the period (every hour, 0 when nothing ran), keyed by the hour's start."""
    if connection.vendor == "postgresql":
        return {
            hour.replace(tzinfo=UTC): Decimal(seconds or 0)
            for hour, seconds in _sweep_sql(period=period, groups=UTC_HOUR_GROUPS)
        }
    return _sweep(period=period, key=lambda at: at.replace(minute=0, second=0, microsecond=0))


def busy_seconds_per_hour_of_week(*, period: Period, time_zone: str) -> dict[tuple[int, int], Decimal]:
    """EVSE-seconds in use per (ISO weekday, hour) of local time in `time_zone` over the period."""
    if connection.vendor == "postgresql":
        return {
            (dow, hour): Decimal(seconds or 0)
            for dow, hour, seconds in _sweep_sql(period=period, groups=HOUR_OF_WEEK_GROUPS, time_zone=time_zone)
        }
    zone = ZoneInfo(time_zone)

    def local_hour(at: datetime) -> tuple[int, int]:
        local = at.astimezone(zone)
        return local.isoweekday(), local.hour

    return _sweep(period=period, key=local_hour)


def _sweep_sql(*, period: Period, groups: tuple[str, str], time_zone: str = "UTC") -> list[tuple]:
    """PostgreSQL: rows of (group..., EVSE-seconds in use) over the period, by OCCUPANCY_SQL."""
    sql = OCCUPANCY_SQL.format(
        table=connection.ops.quote_name(Transaction._meta.db_table), groups=groups[0], group_by=groups[1]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tz": time_zone, "start": period.start, "end": period.end, "now": timezone.now()})
        return cursor.fetchall()


def _sweep(*, period: Period, key: Callable[[datetime], K]) -> dict[K, Decimal]:
    """The sweep of OCCUPANCY_SQL in Python: EVSE-seconds in use per `key(start of step)`."""
    totals: dict[K, Decimal] = {}
    for at, seconds in _steps(period):
        group = key(at)
        totals[group] = totals.get(group, Decimal(0)) + seconds
    return totals


def _steps(period: Period) -> Iterator[tuple[datetime, Decimal]]:
    """(start, EVSE-seconds) of each step of the sweep, as OCCUPANCY_SQL's `steps` (ordered by time, starts before
    hour boundaries before ends; steps of no length left out)."""
    now = timezone.now()
    events: list[tuple[datetime, int]] = []
    for started_at, ended_at in transactions_overlapping(period).values_list("started_at", "ended_at").order_by():
        start, end = max(started_at, period.start), min(ended_at or now, period.end)
        if end > start:
            events += [(start, 1), (end, -1)]
    hour = period.start
    while hour <= period.end:
        events.append((hour, 0))
        hour += timedelta(hours=1)
    events.sort(key=lambda event: (event[0], -event[1]))
    busy = 0
    for (at, delta), (next_at, _) in pairwise(events):
        busy += delta
        if next_at > at:
            yield at, busy * seconds_exact(next_at - at)
