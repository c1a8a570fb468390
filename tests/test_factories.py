"""The factories (style.md 3.5): every model of accounts, patients, monitoring and
protocols has one, and each builds a row that is saved and passes full_clean, so a test
that starts from a factory starts from data the app could hold."""

from __future__ import annotations

import pytest
from django.apps import apps
from factory.django import DjangoModelFactory

from accounts.tests import factories as accounts_factories
from monitoring.tests import factories as monitoring_factories
from patients.tests import factories as patients_factories
from protocols.tests import factories as protocols_factories

# BooleanField(null=True) without blank=True: the app stores None for "not yet" (a day not
# recorded, a clinic copy's outcome not reported), which full_clean calls blank.
NOT_YET = {"DesensitizationProtocol": ["successful"], "PlanDay": ["morning_taken", "evening_taken"]}
MODULES = (accounts_factories, patients_factories, monitoring_factories, protocols_factories)
FACTORIES = [obj for module in MODULES for obj in vars(module).values()
             if isinstance(obj, type) and issubclass(obj, DjangoModelFactory) and obj.__module__ == module.__name__]


def test_every_model_has_a_factory():
    models = {model for app in ("accounts", "patients", "monitoring", "protocols")
              for model in apps.get_app_config(app).get_models()
              if not model.__name__.startswith("Historical")}  # django-simple-history's, written by it
    assert sorted(m.__name__ for m in models - {f._meta.model for f in FACTORIES}) == []


@pytest.mark.django_db
@pytest.mark.parametrize("factory_class", FACTORIES, ids=lambda f: f.__name__)
def test_the_factory_saves_a_valid_row(factory_class):
    row = factory_class()
    assert row.pk is not None
    stored = type(row)._base_manager.get(pk=row.pk)
    stored.full_clean(exclude=NOT_YET.get(type(row).__name__))


@pytest.mark.django_db
def test_the_derived_fields_follow_their_parents():
    from accounts.tests.factories import PASSWORD, MembershipFactory
    from patients.tests.factories import DesensitizationPlanFactory, LabResultFactory, TreatmentCourseFactory

    member = MembershipFactory(user__username="sam", role="staff").user
    assert (member.email, member.check_password(PASSWORD)) == ("sam@example.org", True)
    assert member.has_role(member.clinic_ids()[0], "staff") is True
    course = TreatmentCourseFactory(on_drug=True)
    (start,) = course.dose_events.all()
    assert (start.to_state, start.to_dose_mg_bid, start.effective_date) == ("on_drug", 600, course.start_date)
    lab = LabResultFactory(reported_value="130")  # ALT 3.25× ULN: graded on save (LabResult.derive)
    assert (lab.unit, lab.grade, str(lab.x_uln)) == ("U/L", 2, "3.250")
    plan = DesensitizationPlanFactory()
    assert plan.protocol.clinic == plan.patient.clinic == plan.rash_event.patient.clinic
    assert [(d.number, d.morning_mg) for d in plan.days.order_by("number")] == [(1, 150), (2, 150), (3, 600)]
