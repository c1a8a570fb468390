"""The published desensitization protocols of reference §9.2, read-only. Seegobin 2020 has
its full step schedule; the other reports only a summary [SEED], so they carry no steps
and cannot be started until a prescriber enters and approves steps (§9.2 'Software')."""

from django.db import migrations

SEEGOBIN_STEPS = [(150, 150, 2), (300, 300, 5), (450, 450, 8), (450, 600, 8)]

PUBLISHED = [
    dict(name="Seegobin 2020 (full dose, outpatient)",
         source="Seegobin K, et al. SAGE Open Med Case Rep 2020 (PMID 33149916) — reference §9.1 (S10), step list §9.2 [SEED-A]",
         start_dose="150 mg twice daily", final_dose="600 mg twice daily", duration_days=23,
         adjunct="Started after the rash resolved with drug cessation and corticosteroids", setting="outpatient",
         outcome="Success; no recurrence at 1 year [SEED]", successful=True,
         evidence="Existence and full-dose end point confirmed by the abstract (S10); steps from SEED-A"),
    dict(name="Shirasawa et al.", source="Reference §9.2 summary [SEED-A]; not confirmed",
         start_dose="40 mg once daily", final_dose="300 mg twice daily", duration_days=8, adjunct="",
         setting="", outcome="Success; no recurrence at 7 months", successful=True,
         evidence="Summary only; Japanese 20/40 mg capsules and 300 mg BID full dose (§9.1, S16)"),
    dict(name="Kimura et al.", source="Reference §9.2 summary [SEED-A]; not confirmed",
         start_dose="20 mg once daily", final_dose="200 mg twice daily", duration_days=14,
         adjunct="Concurrent prednisolone", setting="", outcome="Success", successful=True,
         evidence="Summary only"),
    dict(name="Anderson et al.", source="Reference §9.2 summary [SEED-A]; not confirmed",
         start_dose="37.5 mg once daily", final_dose="300 mg twice daily", duration_days=9, adjunct="",
         setting="", outcome="Success; 1-month follow-up", successful=True,
         evidence="Summary only; 37.5 mg cannot be made from intact 20, 40 or 150 mg capsules (§9.1)"),
    dict(name="Unsuccessful case (BMC Pulm Med 2023)", source="Reference §9.2 summary [SEED-A]; not confirmed",
         start_dose="150 mg twice daily", final_dose="not completed", duration_days=1, adjunct="No steroids",
         setting="outpatient", outcome="Failed: sore throat, erythema and fever on day 1", successful=False,
         evidence="Summary only"),
]


def load(apps, schema_editor):
    Protocol = apps.get_model("protocols", "DesensitizationProtocol")
    Step = apps.get_model("protocols", "DesensitizationStep")
    for data in PUBLISHED:
        protocol, made = Protocol.objects.get_or_create(clinic=None, name=data["name"], defaults=data)
        if made and data["name"].startswith("Seegobin"):
            for i, (m, e, d) in enumerate(SEEGOBIN_STEPS, start=1):
                Step.objects.create(protocol=protocol, order=i, morning_mg=m, evening_mg=e, days=d)


class Migration(migrations.Migration):
    dependencies = [("protocols", "0001_desensitization_library")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
