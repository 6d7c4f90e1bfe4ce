"""A re-issued CDR (a late stop corrected an issued one) references the credited CDR it replaces; one non-credit
CDR per session besides re-issues. SQLite rebuilds the table for these changes, which drops 0003's trigger: it is
created again (PostgreSQL alters the table in place and keeps it)."""

import django.db.models.deletion
from django.db import migrations, models

SQLITE_TRIGGER = """
    CREATE TRIGGER IF NOT EXISTS billing_cdr_immutable BEFORE UPDATE ON billing_cdr
    BEGIN SELECT RAISE(ABORT, 'billing_cdr rows are immutable: issue a credit CDR instead of editing one'); END
"""


def _trigger_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_TRIGGER)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_session_of_a_reservation'),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, _trigger_again),  # last when migrating back
        migrations.RemoveConstraint(
            model_name='cdr',
            name='cdr_one_per_session',
        ),
        migrations.AddField(
            model_name='cdr',
            name='reissue_of',
            field=models.OneToOneField(blank=True, help_text='The credited CDR of the same session this one replaces (a late stop corrected the session)', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reissue', to='billing.cdr'),
        ),
        migrations.AddConstraint(
            model_name='cdr',
            constraint=models.UniqueConstraint(condition=models.Q(('credit', False), ('reissue_of__isnull', True)), fields=('session',), name='cdr_one_per_session'),
        ),
        migrations.AddConstraint(
            model_name='cdr',
            constraint=models.CheckConstraint(condition=models.Q(('reissue_of__isnull', True), ('credit', False), _connector='OR'), name='cdr_credit_not_reissued'),
        ),
        migrations.RunPython(_trigger_again, migrations.RunPython.noop),
    ]
