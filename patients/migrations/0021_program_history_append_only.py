"""The oral therapy program's history tables refuse UPDATE and DELETE like every other
history table (monitoring 0006; patients 0017)."""

from django.db import migrations

TABLES = ("patients_historicalprescription", "patients_historicaldispensing")


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f'CREATE TRIGGER audit_rows_are_append_only BEFORE UPDATE OR DELETE ON "{table}" '
                                  "FOR EACH ROW EXECUTE FUNCTION audit_rows_are_append_only()")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f'DROP TRIGGER IF EXISTS audit_rows_are_append_only ON "{table}"')


class Migration(migrations.Migration):
    dependencies = [("patients", "0020_oral_program")]
    operations = [migrations.RunPython(append_only, drop)]
