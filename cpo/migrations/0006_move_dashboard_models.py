"""The audit log and the analytics roll-ups now belong to the dashboard app (cpo.dashboard, label "dashboard").

State only: cpo forgets the models here and the dashboard's 0001_initial declares them on the same tables
(`db_table` keeps the cpo_* names), so no table is dropped, created or copied."""

from django.db import migrations

MOVED = ["AuditLog", "AnalyticsDay", "AnalyticsHour", "AnalyticsLocationDay", "AnalyticsPartnerDay"]


class Migration(migrations.Migration):
    dependencies = [
        ("cpo", "0005_analytics_rollups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name=name) for name in MOVED],
            database_operations=[],
        ),
    ]
