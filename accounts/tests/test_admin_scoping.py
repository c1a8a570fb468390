"""Every admin door refuses another clinic's rows (issue: the history pages ignored the
clinic gate). A clinic admin of clinic A walks every registered model's change, history,
revision and delete URLs for every object of clinic B: each is refused, nothing of B is
shown, and a posted revision or change form changes nothing."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from accounts.tests.factories import MembershipFactory
from accounts.tests.test_access import clinic_b_objects  # noqa: F401 - fixture
from patients.models import LabResult, Patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_a(clinic_a):
    user = MembershipFactory(user__username="admin-a", user__is_staff=True, clinic=clinic_a, role="admin").user
    user.user_permissions.add(*Permission.objects.all())
    return user


def _foreign_objects(user):
    """(model admin, object) for every row the user's admin queryset does not show."""
    request = RequestFactory().get("/")
    request.user = user
    for model, model_admin in admin.site._registry.items():
        visible = set(model_admin.get_queryset(request).values_list("pk", flat=True))
        for obj in model._default_manager.all():
            if obj.pk not in visible:
                yield model_admin, obj


def _url(name, *args):
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def test_every_admin_url_refuses_another_clinics_objects(client, admin_a, clinic_b_objects):  # noqa: F811
    client.force_login(admin_a)
    b_mrn = Patient.objects.get(pk=clinic_b_objects["patient_pk"]).mrn
    walked = set()
    for _model_admin, obj in _foreign_objects(admin_a):
        opts = obj._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        urls = [_url(f"{prefix}_change", obj.pk), _url(f"{prefix}_history", obj.pk), _url(f"{prefix}_delete", obj.pk)]
        history = getattr(obj, "history", None)
        if history is not None:
            urls += [_url(f"{prefix}_simple_history", obj.pk, h.pk) for h in history.all()]
        for url in filter(None, urls):
            response = client.get(url)
            assert response.status_code in (302, 403, 404), (url, response.status_code)
            if response.status_code == 302:
                assert response.url == reverse("admin:index"), url
            assert b_mrn not in response.content.decode(), url
            walked.add(opts.model_name)
    assert {"patient", "labresult", "treatmentcourse", "recommendation"} <= walked


def test_a_posted_revision_cannot_move_another_clinics_patient(client, admin_a, clinic_a, clinic_b_objects):  # noqa: F811
    client.force_login(admin_a)
    patient = Patient.objects.get(pk=clinic_b_objects["patient_pk"])
    version = patient.history.first()
    url = reverse("admin:patients_patient_simple_history", args=[patient.pk, version.pk])
    data = {"clinic": clinic_a.pk, "mrn": "STOLEN", "first_name": "X", "last_name": "Y",
            "date_of_birth": "1960-01-01", "sex": "F"}
    assert client.post(url, data).status_code in (403, 404)
    assert client.post(reverse("admin:patients_patient_change", args=[patient.pk]), data).status_code in (302, 403, 404)
    patient.refresh_from_db()
    assert patient.clinic_id == clinic_b_objects["clinic_pk"] and patient.mrn != "STOLEN"


def test_own_revision_pages_are_read_only(client, admin_a, clinic_a, prescriber):
    from patients.tests.factories import started_patient

    client.force_login(admin_a)
    patient = started_patient(clinic_a, prescriber, mrn="OWN-1")
    version = patient.history.first()
    url = reverse("admin:patients_patient_simple_history", args=[patient.pk, version.pk])
    assert client.get(url).status_code == 200
    assert client.get(reverse("admin:patients_patient_history", args=[patient.pk])).status_code == 200
    assert client.post(url, {"mrn": "CHANGED"}).status_code == 403
    patient.refresh_from_db()
    assert patient.mrn == "OWN-1"


def test_lab_result_history_of_another_clinic_shows_no_values(client, admin_a, clinic_b_objects):  # noqa: F811
    client.force_login(admin_a)
    lab = LabResult.objects.get(patient_id=clinic_b_objects["patient_pk"])
    assert client.get(reverse("admin:patients_labresult_history", args=[lab.pk])).status_code == 404
    version = lab.history.first()
    assert client.get(reverse("admin:patients_labresult_simple_history", args=[lab.pk, version.pk])).status_code == 404


def test_shared_default_requirements_are_read_only_in_the_admin(client, admin_a):
    from monitoring.models import Requirement

    client.force_login(admin_a)
    default = Requirement.objects.get(clinic__isnull=True, code="brain_imaging")
    was_active = default.active
    url = reverse("admin:monitoring_requirement_change", args=[default.pk])
    response = client.post(url, {"label": default.label, "code": default.code})  # "active" unticked
    assert response.status_code == 403
    default.refresh_from_db()
    assert default.active == was_active


def test_admin_choices_offer_only_own_clinics_users_and_clinics(client, admin_a, clinic_a, clinic_b, outsider):
    client.force_login(admin_a)
    body = client.get(reverse("admin:monitoring_notificationpreference_add")).content.decode()
    assert "admin-a" in body and "outsider" not in body
    body = client.get(reverse("admin:accounts_user_change", args=[admin_a.pk])).content.decode()
    start = body.index('name="memberships-0-clinic"')
    select = body[start:body.index("</select>", start)]
    assert f'<option value="{clinic_a.pk}"' in select and f'<option value="{clinic_b.pk}"' not in select
    # A clinic admin cannot grant themselves or others superuser status or permissions.
    assert 'name="is_superuser"' not in body and 'name="user_permissions"' not in body
