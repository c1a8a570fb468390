from __future__ import annotations

from datetime import date, timedelta

import factory
from django.utils import timezone

from patients.models import Patient, ReferenceRange


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:05d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    date_of_birth = date(1960, 5, 17)
    sex = "F"
    alk_test_method = "FISH"
    alk_test_result = "positive"


DEFAULT_RANGES = {"alt": ("40", None), "ast": ("40", None), "total_bilirubin": ("1.2", None),
                  "creatinine": ("1.1", None), "cpk": ("170", None), "hemoglobin": (None, "12"),
                  "heart_rate": (None, "60")}


def clinic_ranges(clinic):
    for analyte, (uln, lln) in DEFAULT_RANGES.items():
        ReferenceRange.objects.create(clinic=clinic, analyte=analyte, uln=uln, lln=lln)


def started_patient(clinic, prescriber, *, days_ago=30, **kw):
    """A patient on 600 mg BID since `days_ago` days."""
    from patients.services import course_start

    patient = PatientFactory(clinic=clinic, **kw)
    course_start(patient=patient, start_date=timezone.localdate() - timedelta(days=days_ago),
                 ordered_by=prescriber, recorded_by=prescriber)
    return patient
