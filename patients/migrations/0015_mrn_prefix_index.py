"""The worklist's MRN search (UPPER(mrn) LIKE 'X%', issue #14): an expression index with
text_pattern_ops, on PostgreSQL only (SQLite has no operator classes; its tables are small)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS patient_mrn_prefix_idx "
                              "ON patients_patient (UPPER(mrn::text) text_pattern_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS patient_mrn_prefix_idx")


class Migration(migrations.Migration):
    dependencies = [("patients", "0014_index_orders_for_paging")]
    operations = [migrations.RunPython(create, drop)]
