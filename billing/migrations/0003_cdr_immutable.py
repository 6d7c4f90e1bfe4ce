"""CDRs are immutable: the database itself refuses any UPDATE of a billing_cdr row ("As CDRs are used for
billing and can be seen as a kind of invoice, they cannot be deleted. Instead, they have to be credited",
mod_cdrs). Deletion is refused by PROTECT foreign keys from the session and from credits."""

from django.db import migrations

MESSAGE = "billing_cdr rows are immutable: issue a credit CDR instead of editing one"

FORWARD = {
    "postgresql": [
        f"""
        CREATE OR REPLACE FUNCTION billing_cdr_refuse_update() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$ LANGUAGE plpgsql
        """,
        """
        CREATE TRIGGER billing_cdr_immutable BEFORE UPDATE ON billing_cdr
        FOR EACH ROW EXECUTE FUNCTION billing_cdr_refuse_update()
        """,
    ],
    "sqlite": [
        f"""
        CREATE TRIGGER billing_cdr_immutable BEFORE UPDATE ON billing_cdr
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
        """
    ],
}
BACKWARD = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS billing_cdr_immutable ON billing_cdr",
        "DROP FUNCTION IF EXISTS billing_cdr_refuse_update()",
    ],
    "sqlite": ["DROP TRIGGER IF EXISTS billing_cdr_immutable"],
}


def _run(statements: dict):
    def run(apps, schema_editor):
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_session_cdr")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
