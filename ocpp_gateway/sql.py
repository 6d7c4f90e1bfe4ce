"""Plain SQL for the paths every charger takes many times an hour (StatusNotification, Authorize, Start and
StopTransaction, MeterValues).

The ORM builds and compiles a query again on every call, and a model per row; on these paths that cost more CPU than
the database's own work (bench/RESULTS.md). Their statements are written out once instead, for PostgreSQL and SQLite
alike (double-quoted names, `%s` placeholders), run on the thread's Django connection (its transaction, its
`execute_wrappers`), with values adapted as the ORM adapts them, so what is stored and compared is what the ORM
would store and compare.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime


def fetch_one(sql: str, params: Sequence[Any]) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run a write; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def for_update() -> str:
    """` FOR UPDATE` where the backend locks rows (SQLite locks the whole database on the first write instead, as
    the ORM's select_for_update does nothing there)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def to_db_datetime(value: datetime | None) -> Any:
    """A timezone-aware datetime as the backend stores it (SQLite: UTC text, the ORM's format)."""
    return connection.ops.adapt_datetimefield_value(value)


def from_db_datetime(value: Any) -> datetime | None:
    """A datetime column as read by a plain cursor (SQLite gives naive UTC), aware in UTC like the ORM's."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
