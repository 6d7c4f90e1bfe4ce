"""The dashboard's models moved out of the cpo app in migration state only: rows written before the move (cpo
0005) are the dashboard's after it, and the content types (so permissions and admin history) follow."""

from datetime import UTC, date, datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("cpo", "0005_analytics_rollups"), ("dashboard", None)]
AFTER = [("cpo", "0006_move_dashboard_models"), ("dashboard", "0001_initial")]


def migrate(targets):
    """Migrate the two apps to `targets`; the models as they are there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([target for target in targets if target[1]]).apps


def migrate_to_latest() -> None:
    """Back to where every other test expects the database: every app's latest migration."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_the_dashboards_after_it(station_factory):
    station, _ = station_factory("CP-MOVE", evses=1)
    try:
        old = migrate(BEFORE)
        old.get_model("cpo", "AuditLog").objects.create(
            username="olga", station_id=station.pk, identity="CP-MOVE", action="Reset", ok=True
        )
        old.get_model("cpo", "AnalyticsDay").objects.create(
            day=date(2026, 3, 1), built_at=datetime(2026, 3, 2, tzinfo=UTC)
        )
        ContentType.objects.filter(app_label="dashboard").update(app_label="cpo")  # as before the move
        ContentType.objects.clear_cache()
        new = migrate(AFTER)
    finally:
        migrate_to_latest()
    entry = new.get_model("dashboard", "AuditLog").objects.get()
    assert (entry.username, entry.station_id, entry.action) == ("olga", station.pk, "Reset")
    assert list(new.get_model("dashboard", "AnalyticsDay").objects.values_list("day", flat=True)) == [date(2026, 3, 1)]
    labels = set(ContentType.objects.filter(model__in=["auditlog", "analyticsday"]).values_list("app_label", flat=True))
    assert labels == {"dashboard"}
