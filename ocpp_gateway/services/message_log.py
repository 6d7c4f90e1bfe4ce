"""The message log: every frame in and out (written in batches by ocpp_gateway.message_log), pruned by
housekeeping."""

import datetime as dt

from django.conf import settings
from django.db import connection
from django.utils import timezone

from cpo.alerts import alert_raise
from cpo.models import AlertKind
from ocpp_gateway.models import MessageLog

# The columns a batch writes, in order; an entry lacks only `clock_skew` when its frame's clock was believed.
LOG_COLUMNS = ("station_id", "identity", "direction", "message_type", "unique_id", "action", "payload", "clock_skew")


def message_log_write(*, entries: list[dict]) -> None:
    """Store a batch of log rows as plain values, without building a model per frame: on PostgreSQL one COPY, else
    one executemany INSERT (the ORM's bulk_create was 7-8 % of the gateway's CPU, bench/RESULTS.md). A row counting
    frames left out (`frames_left_out`, see ocpp_gateway.message_log) also raises the station's limit alert: staff
    learn that a charger talks far more than chargers do."""
    if not entries:
        return
    for entry in entries:
        left_out = entry.pop("frames_left_out", 0)
        if left_out:
            alert_raise(
                kind=AlertKind.STATION_LIMIT,
                subject=entry["identity"],
                message=f"station {entry['identity']}: {left_out} frames not logged: {entry['payload']}",
            )
    table = connection.ops.quote_name(MessageLog._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in (*LOG_COLUMNS, "created_at"))
    adapt_time = connection.ops.adapt_datetimefield_value
    rows = [
        (*(entry.get(c) for c in LOG_COLUMNS), adapt_time(entry["created_at"]))  # clock_skew may be absent
        for entry in entries
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's own cursor: its errors become Django's (OperationalError...), so that a batch the database
            # could not take is kept for the next flush (ocpp_gateway.batching), not dropped as an unknown error.
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * (len(LOG_COLUMNS) + 1))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 - names from the model
            cursor.executemany(sql, rows)


def message_log_prune(*, older_than_days: int | None = None) -> int:
    days = settings.OCPP_MESSAGE_LOG_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - dt.timedelta(days=days)
    deleted, _ = MessageLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
