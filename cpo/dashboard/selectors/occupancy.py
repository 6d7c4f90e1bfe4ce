"""EVSE-seconds in use, per hour: the analytics' busy time (utilisation, peak hours) and its roll-ups."""

from django.db import connection
from django.utils import timezone

from cpo.dashboard.selectors.period import Period
from ocpp_gateway.models import Transaction

# EVSE-seconds in use per local (weekday, hour) or per UTC hour, by a sweep over the period: +1 at each session start,
# -1 at its end, 0 at every hour boundary; the running sum is the number of sessions in progress, constant up to the
# next event, so each step (which never crosses an hour) adds sessions x its length to the hour it starts in. Rows
# scanned: two per session in the period plus one per hour, whatever the sessions' lengths (a charger that never
# closed its transaction costs two rows, not one per hour it stayed open).
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
HOUR_OF_WEEK_GROUPS = ("EXTRACT(ISODOW FROM at AT TIME ZONE %(tz)s)::int AS dow, "
                       "EXTRACT(HOUR FROM at AT TIME ZONE %(tz)s)::int AS hour", "1, 2")
UTC_HOUR_GROUPS = ("date_trunc('hour', at AT TIME ZONE 'UTC') AS hour", "1")


def occupancy_seconds(*, period: Period, groups: tuple[str, str], time_zone: str = "UTC") -> list[tuple]:
    """PostgreSQL only: rows of (group..., EVSE-seconds in use) over the period, by OCCUPANCY_SQL."""
    sql = OCCUPANCY_SQL.format(table=connection.ops.quote_name(Transaction._meta.db_table), groups=groups[0],
                               group_by=groups[1])
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tz": time_zone, "start": period.start, "end": period.end, "now": timezone.now()})
        return cursor.fetchall()
