"""Results entered in a non-canonical unit kept only their limits converted and rounded
to 4 decimals. Recover the limits as reported (to 2 decimals, as laboratories report
them) and regrade every such result exactly (reference §4, A7). Canonical-unit rows need
nothing: their canonical limits are the reported ones."""

from fractions import Fraction

from django.db import migrations

from protocols.analytes import ANALYTES, normalise_unit, ratio_to_decimal, to_decimal
from protocols.labs import Lab, grade_lab


def backfill(apps, schema_editor):
    LabResult = apps.get_model("patients", "LabResult")
    for lab in LabResult.objects.exclude(reported_unit="").iterator():
        analyte = ANALYTES.get(lab.analyte)
        if analyte is None or normalise_unit(lab.reported_unit) == normalise_unit(analyte.unit):
            continue
        factor = analyte.factor(lab.reported_unit)
        if factor == 1:
            continue
        for name in ("uln", "lln"):
            canonical = getattr(lab, name)
            if canonical is not None:
                setattr(lab, f"reported_{name}", to_decimal(Fraction(canonical) / factor, places=2))
        value = Fraction(lab.reported_value) * factor
        exact = Lab(value, Fraction(lab.reported_uln) * factor if lab.reported_uln is not None else None,
                    Fraction(lab.reported_lln) * factor if lab.reported_lln is not None else None)
        baseline = None
        if not lab.is_baseline:
            base = LabResult.objects.filter(patient_id=lab.patient_id, analyte=lab.analyte, is_baseline=True).order_by(
                "-collected_at").first()
            baseline = Lab(Fraction(base.value)) if base else None
        grading = grade_lab(lab.analyte, exact, baseline)
        lab.grade = grading.grade
        lab.x_uln = ratio_to_decimal(grading.x_uln) if grading.x_uln is not None else None
        lab.save(update_fields=["reported_uln", "reported_lln", "grade", "x_uln"])


class Migration(migrations.Migration):
    dependencies = [("patients", "0006_exact_limits_and_recheck")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
