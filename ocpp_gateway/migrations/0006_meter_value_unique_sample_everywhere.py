"""The meter sample dedup as a unique index on expressions, enforced on SQLite too (the NULLS NOT DISTINCT
constraint it replaces was never created there, so SQLite databases may hold repeated samples: dropped first)."""

import django.db.models.functions.comparison
from django.db import migrations, models


def repeated_samples_delete(apps, schema_editor):
    """Keep the first of each repeated sample, where the old constraint did not exist (SQLite). Where it did
    (PostgreSQL 15+) there are none, and a big table is not scanned for nothing."""
    if schema_editor.connection.features.supports_nulls_distinct_unique_constraints:
        return
    schema_editor.execute(
        "DELETE FROM ocpp_gateway_metervalue WHERE id NOT IN (SELECT MIN(id) FROM ocpp_gateway_metervalue "
        "GROUP BY station_id, COALESCE(transaction_id, -1), COALESCE(ocpp_evse_id, -1), timestamp, measurand, "
        "phase, location, context)"
    )


class Migration(migrations.Migration):

    dependencies = [
        ("ocpp_gateway", "0005_transaction_ended_at_index"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="metervalue",
            name="meter_value_unique_sample",
        ),
        migrations.RunPython(repeated_samples_delete, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="metervalue",
            constraint=models.UniqueConstraint(
                models.F("station"),
                django.db.models.functions.comparison.Coalesce(
                    "transaction", models.Value(-1), output_field=models.BigIntegerField()
                ),
                django.db.models.functions.comparison.Coalesce(
                    "ocpp_evse_id", models.Value(-1), output_field=models.IntegerField()
                ),
                models.F("timestamp"),
                models.F("measurand"),
                models.F("phase"),
                models.F("location"),
                models.F("context"),
                name="meter_value_unique_sample",
            ),
        ),
    ]
