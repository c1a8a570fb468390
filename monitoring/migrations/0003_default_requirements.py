"""The default monitoring requirements of alectinib (reference §5). Data copied here on
purpose (no app imports in migrations); monitoring.rules.DEFAULT_REQUIREMENTS is the same
list, and a test checks that the two agree."""

import datetime

from django.db import migrations

DEFAULTS = [
    ("lft", "Liver panel (ALT, AST, total bilirubin)", ["alt", "ast", "total_bilirubin"],
     {"phases": [{"months": 3, "every_days": 14}, {"months": None, "every_months": 1}]},
     "Reference §5 (US PI §5.1; S2; S3; S6): every 2 weeks for 3 months, then monthly", True),
    ("cpk", "CPK", ["cpk"], {"phases": [{"months": 1, "every_days": 14}]},
     "Reference §5 (US PI §5.5; S2; S3; S7): every 2 weeks during the first month", True),
    ("vitals", "Heart rate and blood pressure", ["heart_rate", "systolic_bp", "diastolic_bp"], {"phases": []},
     "Reference §4.4, §5: 'regularly' (US) / 'as clinically indicated' (EU) — clinic policy", False),
    ("creatinine", "Creatinine", ["creatinine"], {"phases": []},
     "Reference §4.3, §5: no interval in the label — clinic policy", False),
    ("hemoglobin", "Hemoglobin", ["hemoglobin"], {"phases": []},
     "Reference §4.6, §5: no routine interval; test when hemolysis is suspected — clinic policy", False),
    ("brain_imaging", "Brain imaging", [], {"phases": []}, "Not in the label — clinic policy", False),
    ("cmin", "Alectinib trough (Cmin)", ["alectinib_cmin"], {"phases": []},
     "Reference §10: research target ≥ 435 ng/mL, not in the label — clinic policy", False),
]


def create(apps, schema_editor):
    Requirement = apps.get_model("monitoring", "Requirement")
    Version = apps.get_model("monitoring", "RequirementVersion")
    for code, label, analytes, schedule, source, label_interval in DEFAULTS:
        req, _ = Requirement.objects.get_or_create(
            clinic=None, drug="alectinib", code=code,
            defaults={"label": label, "analytes": analytes, "source": source, "label_interval": label_interval},
        )
        if not Version.objects.filter(requirement=req).exists():
            Version.objects.create(requirement=req, schedule=schedule, effective_from=datetime.date(2000, 1, 1),
                                   note="Default from the clinical reference")


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_monitoring_schedule")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
