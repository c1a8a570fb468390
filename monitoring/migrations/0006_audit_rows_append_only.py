"""The audit trail cannot be edited or deleted by the role the app runs as (HIPAA
164.312(b), reliability.md S8): on PostgreSQL, every django-simple-history table gets a
trigger that refuses UPDATE and DELETE. Inserting new history rows is unaffected. A test
checks that every historical table has the trigger, so a model that gains history later
needs a migration like this one."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_rows_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def historical_tables(apps):
    for label in ("patients", "monitoring", "accounts", "protocols"):
        for model in apps.get_app_config(label).get_models():
            if model.__name__.startswith("Historical"):
                yield model._meta.db_table


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in historical_tables(apps):
        schema_editor.execute(f'DROP TRIGGER IF EXISTS audit_rows_are_append_only ON "{table}"')
        schema_editor.execute(
            f'CREATE TRIGGER audit_rows_are_append_only BEFORE UPDATE OR DELETE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION audit_rows_are_append_only()")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in historical_tables(apps):
        schema_editor.execute(f'DROP TRIGGER IF EXISTS audit_rows_are_append_only ON "{table}"')


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0005_digest_next_attempt"),
        ("patients", "0007_backfill_reported_limits"),
    ]

    operations = [migrations.RunPython(forward, backward)]
