"""Wrong role → 403, on every URL pattern of the app and of the admin (issue #11: the
security matrix). Each URL name states which roles may use it; a new URL pattern not in
the matrix fails test_every_url_is_in_the_role_matrix. Members of clinic B, one role each,
request clinic B's own objects by GET and POST."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.tests.factories import MembershipFactory
from accounts.tests.test_access import PUBLIC, app_patterns, clinic_b_objects  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

ALL = frozenset({"nurse", "prescriber", "staff", "admin"})
WRITE = frozenset({"nurse", "prescriber", "admin"})
ADMIN = frozenset({"admin"})
PRESCRIBER = frozenset({"prescriber"})

ROLE_MATRIX = {
    # any member of the clinic
    "logout": ALL, "two_factor_verify": ALL, "two_factor_setup": ALL, "home": ALL, "cohort": ALL,
    "requirements": ALL, "preferences": ALL, "patient_list": ALL, "patient_detail": ALL, "plan_detail": ALL,
    "protocol_list": ALL, "protocol_detail": ALL,
    # the oral therapy program (issue #16): read by the clinic, written by clinicians
    "program": ALL, "program_handout": ALL, "program_education": WRITE, "prescription_create": WRITE,
    "dispensing_create": WRITE, "supply_void": WRITE, "check_in": WRITE,
    # clinical writes
    "patient_create": WRITE, "patient_edit": WRITE, "lab_panel": WRITE, "lab_result": WRITE, "event_create": WRITE,
    "medication_create": WRITE, "event_resolve": WRITE, "recommendation_comment": WRITE, "plan_record_day": WRITE, "record_test": WRITE,
    "follow_up": WRITE | {"staff"},
    # results that arrive (issue #15): whoever may type a result may import one
    "import_list": WRITE, "import_detail": WRITE, "import_check": WRITE, "import_confirm": WRITE,
    "import_cancel": WRITE, "import_progress": WRITE, "import_summary": WRITE, "test_names": WRITE,
    # prescribers decide doses
    "course_start": PRESCRIBER, "dose_change": PRESCRIBER, "recommendation_accept": PRESCRIBER,
    "recommendation_override": PRESCRIBER, "plan_create": PRESCRIBER, "plan_decide": PRESCRIBER,
    "protocol_approve": PRESCRIBER, "patient_archive": PRESCRIBER | ADMIN,
    "protocol_copy": PRESCRIBER | ADMIN, "protocol_edit": PRESCRIBER | ADMIN,
    # clinic administration
    "patient_history": ADMIN, "outbox": ADMIN, "digest_retry": ADMIN, "requirement_create": ADMIN,
    "requirement_edit": ADMIN, "clinic_settings": ADMIN, "audit_trail": ADMIN,
    "hl7_messages": ADMIN, "hl7_reprocess": ADMIN, "access_keys": ADMIN, "access_key_revoke": ADMIN,
    # break-glass into another clinic: the people who treat patients (reliability.md S16)
    "emergency_access": frozenset({"nurse", "prescriber"}),
}


@pytest.fixture
def one_role_each(clinic_b):
    users = {}
    for role in sorted(ALL):
        users[role] = MembershipFactory(user__username=f"b-{role}", clinic=clinic_b, role=role).user
    return users


def test_every_url_is_in_the_role_matrix():
    names = {name for name, _, _ in app_patterns()} - PUBLIC
    assert not names - set(ROLE_MATRIX), f"add these URL names to the role matrix: {names - set(ROLE_MATRIX)}"
    assert not set(ROLE_MATRIX) - names, f"the matrix names URLs that no longer exist: {set(ROLE_MATRIX) - names}"


def test_a_member_with_the_wrong_role_gets_403_on_every_url(client, clinic_b_objects, one_role_each):  # noqa: F811
    checked = 0
    for name, _, kws in app_patterns():
        if name in PUBLIC:
            continue
        url = reverse(name, kwargs={k: clinic_b_objects[k] for k in kws})
        for role, user in one_role_each.items():
            if role in ROLE_MATRIX[name]:
                continue
            client.force_login(user)
            for method in ("get", "post"):
                response = getattr(client, method)(url, {})
                assert response.status_code in (403, 405), (role, method, url, response.status_code)
                if method == "post":
                    assert response.status_code == 403, (role, url)
                checked += 1
    assert checked >= 60


def test_the_right_role_is_not_refused(client, clinic_b_objects, one_role_each):  # noqa: F811
    """The positive control: each allowed role's GET is not a 403 or 404."""
    for name, _, kws in app_patterns():
        if name in PUBLIC or name == "logout":
            continue
        url = reverse(name, kwargs={k: clinic_b_objects[k] for k in kws})
        for role in sorted(ROLE_MATRIX[name]):
            client.force_login(one_role_each[role])
            assert client.get(url).status_code not in (403, 404), (role, url)


ADMIN_URL_NAMES = ("changelist", "add", "change", "history", "delete")


def _admin_urls(clinic_b_objects):  # noqa: F811
    from django.contrib import admin

    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = model._default_manager.first()
        for kind in ADMIN_URL_NAMES:
            args = [] if kind in ("changelist", "add") else ([obj.pk] if obj is not None else None)
            if args is None:
                continue
            yield reverse(f"{prefix}_{kind}", args=args)
    yield reverse("admin:index")


def test_the_admin_refuses_anonymous_users_and_members_who_are_not_staff(client, clinic_b_objects, one_role_each):  # noqa: F811
    urls = list(_admin_urls(clinic_b_objects))
    assert len(urls) > 40
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, {})
            assert response.status_code == 302 and "/login/" in response["Location"], ("anonymous", method, url)
    client.force_login(one_role_each["admin"])  # a clinic admin, but not staff: no admin site
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, {})
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (method, url)
