"""Clinic isolation and sign-in, walked over every URL pattern of the app.

The matrix is generated from the URL resolver, so a new page cannot be added without
being tested here: an unknown URL keyword fails test_every_url_keyword_is_known.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.tests.factories import MembershipFactory, UserFactory
from patients.tests.factories import clinic_ranges, started_patient

pytestmark = pytest.mark.django_db

# Reachable without signing in.
PUBLIC = {"login", "health", "unsubscribe"}  # unsubscribe: a signed token is the credential
# Not clinic data: sign-out, and Django admin (scoped by its own tests below).
NOT_SCOPED = {"logout"}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.app_name == "admin" or str(p.pattern).startswith(("admin/", "api/")):
                continue  # the admin and the REST API have matrices of their own
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and not str(p.pattern).startswith("api/"):
            yield p, prefix + str(p.pattern)


def app_patterns():
    return [(p.name, route, sorted(p.pattern.regex.groupindex)) for p, route in _walk(get_resolver().url_patterns)]


@pytest.fixture
def clinic_b_objects(clinic_b, outsider_prescriber, outsider):
    """One object of every kind in clinic B; maps each URL keyword to one of them."""
    from patients.models import LabResult, Recommendation
    from patients.services import LabEntry, lab_panel_record

    clinic_ranges(clinic_b)
    patient = started_patient(clinic_b, outsider_prescriber)
    lab_panel_record(patient=patient, collected_at=timezone.now(), entries=[LabEntry("alt", "300")], entered_by=outsider)
    rec = Recommendation.objects.get(course__patient=patient)
    from accounts.tests.factories import ApiTokenFactory
    from monitoring.models import MonitoringItem
    from monitoring.services import patient_schedule_recompute, unsubscribe_token
    from monitoring.tests.factories import DigestFactory, RequirementFactory
    from patients.tests.factories import LabImportFactory

    patient_schedule_recompute(patient_id=patient.pk)  # on_commit hooks do not run in these tests

    own = RequirementFactory(clinic=clinic_b, code="ecg", label="ECG")
    item = MonitoringItem.objects.filter(course__patient=patient).first()
    assert item is not None
    from datetime import timedelta

    from patients.desensitization import plan_start
    from patients.recommendations import recommendation_accept
    from patients.services import clinical_event_record
    from protocols.tests.factories import DesensitizationProtocolFactory

    recommendation_accept(recommendation=rec, user=outsider_prescriber)  # withheld
    rash = clinical_event_record(patient=patient, recorded_by=outsider, kind="rash", grade=3, rash_bsa_percent=40,
                                 onset_date=timezone.localdate() - timedelta(days=20),
                                 resolved_date=timezone.localdate() - timedelta(days=2))
    protocol = DesensitizationProtocolFactory(clinic=clinic_b, name="B's own", start_dose="150", final_dose="600",
                                              steps_approved_by=outsider_prescriber, steps=[(150, 150, 2), (600, 600, 1)])
    plan = plan_start(patient=patient, protocol=protocol, rash_event=rash, start=timezone.localdate(),
                      user=outsider_prescriber)
    digest = DigestFactory(recipient=outsider, clinic=clinic_b, status="failed")
    from monitoring.program import dispensing_record

    dispensing = dispensing_record(course=patient.courses.get(), user=outsider, dispensed_on=timezone.localdate(),
                                   capsules=112)
    return {"digest_pk": digest.pk, "patient_pk": patient.pk, "recommendation_pk": rec.pk, "clinic_pk": clinic_b.pk,
            "requirement_pk": own.pk, "item_pk": item.pk, "token": unsubscribe_token(outsider),
            "protocol_pk": protocol.pk, "plan_pk": plan.pk, "day_pk": plan.days.first().pk,
            "lab_pk": LabResult.objects.filter(patient=patient).first().pk,
            "import_pk": LabImportFactory(clinic=clinic_b, kind="hl7", created_by=outsider).pk,
            "token_pk": ApiTokenFactory(clinic=clinic_b, user=outsider).pk,
            "kind": "dispensing", "record_pk": dispensing.pk, "event_pk": rash.pk}


# Each URL keyword and how to get an object of clinic B for it. Later issues add theirs.
KNOWN_KWARGS = {"patient_pk", "recommendation_pk", "clinic_pk", "requirement_pk", "item_pk", "token", "protocol_pk",
                "plan_pk", "day_pk", "digest_pk", "lab_pk", "import_pk", "token_pk", "kind", "record_pk", "event_pk"}


def test_every_url_keyword_is_known():
    unknown = {kw for _, _, kws in app_patterns() for kw in kws} - KNOWN_KWARGS
    assert not unknown, f"add these URL keywords to the isolation matrix: {unknown}"


def test_every_page_has_a_name():
    assert all(name for name, _, _ in app_patterns())


def test_anonymous_requests_to_every_page_redirect_to_login(client, clinic_b_objects):
    for name, _, kws in app_patterns():
        if name in PUBLIC:
            continue
        url = reverse(name, kwargs={k: clinic_b_objects[k] for k in kws})
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith(reverse("login")), url


@pytest.fixture
def all_roles_in_a(clinic_a):
    """A member of clinic A with every role, so no 403 can hide a missing 404."""
    user = UserFactory(username="everything")
    for role in ("nurse", "prescriber", "staff", "admin"):
        MembershipFactory(user=user, clinic=clinic_a, role=role)
    return user


def test_clinic_a_user_gets_404_for_every_clinic_b_object(client, clinic_b_objects, all_roles_in_a):
    client.force_login(all_roles_in_a)
    checked = 0
    for name, _, kws in app_patterns():
        if not kws or name in PUBLIC:
            continue
        url = reverse(name, kwargs={k: clinic_b_objects[k] for k in kws})
        for method in ("get", "post"):
            response = getattr(client, method)(url, {})
            if method == "get" and response.status_code == 405:
                # A POST-only page refuses every GET alike (require_POST, before any lookup):
                # the same answer for an id that does not exist, so it tells nothing.
                missing = reverse(name, kwargs={k: 987654 for k in kws})
                assert client.get(missing).status_code == 405, url
                continue
            assert response.status_code == 404, (method, url, response.status_code)
            checked += 1
    assert checked >= 10


def test_clinic_b_member_reaches_the_same_pages(client, clinic_b_objects, outsider_prescriber):
    """The positive control: the matrix's URLs are real pages for their own clinic."""
    client.force_login(outsider_prescriber)
    url = reverse("patient_detail", kwargs={"patient_pk": clinic_b_objects["patient_pk"]})
    assert client.get(url).status_code == 200


def test_pages_without_an_object_show_only_the_users_clinics(client, clinic_b_objects, all_roles_in_a):
    client.force_login(all_roles_in_a)
    for name, _, kws in app_patterns():
        if kws or name in PUBLIC | NOT_SCOPED:
            continue
        response = client.get(reverse(name), follow=True)
        assert response.status_code == 200, name
        assert "Clinic B" not in response.content.decode(), name


def test_a_user_with_no_clinic_sees_no_patients(client, clinic_b_objects):
    loner = UserFactory(username="loner")
    client.force_login(loner)
    body = client.get(reverse("patient_list")).content.decode()
    assert "No patients" in body
    assert client.get(reverse("patient_create")).status_code == 403


def test_admin_lists_only_the_admins_clinic(client, clinic_a, clinic_b_objects, prescriber):
    admin_user = MembershipFactory(user__username="siteadmin", user__is_staff=True, clinic=clinic_a, role="admin").user
    from django.contrib.auth.models import Permission

    admin_user.user_permissions.add(*Permission.objects.filter(content_type__app_label="patients"))
    own = started_patient(clinic_a, prescriber, mrn="OWN-1")
    client.force_login(admin_user)
    body = client.get(reverse("admin:patients_patient_changelist")).content.decode()
    assert "OWN-1" in body
    other = clinic_b_objects["patient_pk"]
    assert client.get(reverse("admin:patients_patient_change", args=[other])).status_code in (302, 404)
    assert client.get(reverse("admin:patients_patient_change", args=[own.pk])).status_code == 200


def test_signed_in_pages_are_not_cached_and_carry_a_strict_csp(client, nurse):
    client.force_login(nurse)
    response = client.get(reverse("patient_list"))
    assert "no-store" in response["Cache-Control"]
    csp = response["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_every_admin_page_loads_for_a_clinic_admin_and_shows_only_their_clinic(client, clinic_a, clinic_b_objects,
                                                                                 prescriber):
    """Every registered model's changelist answers 200 and leaks no clinic-B patient."""
    from django.contrib import admin
    from django.contrib.auth.models import Permission

    staff_admin = MembershipFactory(user__username="adminpages", user__is_staff=True, clinic=clinic_a, role="admin").user
    staff_admin.user_permissions.add(*Permission.objects.all())
    started_patient(clinic_a, prescriber, mrn="OWN-9")
    client.force_login(staff_admin)
    from patients.models import Patient

    b_mrn = Patient.objects.get(pk=clinic_b_objects["patient_pk"]).mrn
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        assert b_mrn not in response.content.decode(), url


def test_an_id_too_big_for_the_database_is_a_404_on_every_url(client, clinic_b_objects, all_roles_in_a):
    """Fresh-eyes finding (schemathesis, issue #15): /patients/99999999999999999999/
    reached the database and answered 500. The `id` converter refuses it: 404."""
    from accounts.converters import MAX_ID

    client.force_login(all_roles_in_a)
    checked = 0
    for name, _, kws in app_patterns():
        if not kws or name in PUBLIC or "token" in kws:
            continue
        url = reverse(name, kwargs={k: MAX_ID + 1 for k in kws})
        for method in ("get", "post"):
            assert getattr(client, method)(url).status_code == 404, (method, url)
            checked += 1
    assert checked > 40
