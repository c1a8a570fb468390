"""The structured check-in (issue #16) as a default requirement: on the worklist, in the
digests and in the overdue flagging like any monitoring item. Data copied here on purpose
(no app imports in migrations); monitoring.rules.DEFAULT_REQUIREMENTS holds the same row
and a test checks that the two agree.

The schedule takes effect on the day the migration runs: courses already under way get
their first check-in due 4 weeks later instead of being overdue since their day 7
(monitoring.services._schedule_in_force: nobody is overdue retroactively)."""

import datetime

from django.db import migrations

CHECK_IN = ("checkin", "Check-in (phone or visit)", [],
            {"phases": [{"months": None, "days": 15, "every_days": 7}, {"months": None, "every_days": 28}]},
            "Clinic policy: the reference has no check-in interval (ASCO/ONS oral anticancer therapy standards: "
            "assess adherence and toxicity at every contact); default day 7 and day 14, then every 4 weeks", False)


def create(apps, schema_editor):
    Requirement = apps.get_model("monitoring", "Requirement")
    Version = apps.get_model("monitoring", "RequirementVersion")
    code, label, analytes, schedule, source, label_interval = CHECK_IN
    req, _ = Requirement.objects.get_or_create(
        clinic=None, drug="alectinib", code=code,
        defaults={"label": label, "analytes": analytes, "source": source, "label_interval": label_interval})
    if not Version.objects.filter(requirement=req).exists():
        Version.objects.create(requirement=req, schedule=schedule, effective_from=datetime.date.today(),  # noqa: DTZ011
                               note="Default check-in schedule (issue #16)")


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0013_oral_program_settings")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
