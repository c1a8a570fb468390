"""Edit, save, compare over every edit form (issue: every date and datetime input renders
its current value in ISO form; a browser test edits each editable object).

In chromium, for each page of the app that edits an existing object: build the object
with every field filled, open its edit page, check its date and time inputs show the
stored values, save untouched (nothing may change), then change exactly one field and
save (only that field may change). For each model still editable in the Django admin:
open its change page as a superuser, save untouched, and check that no field and no new
history row changed.

A new edit page is one more `AppForm` in APP_FORMS; a new admin-editable model one more
`AdminForm` in ADMIN_FORMS. Two non-browser tests fail until they are added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Clinic, Membership, User, Versioned
from monitoring.models import (
    ClinicSettings,
    DirtyPatient,
    Heartbeat,
    NotificationPreference,
    Requirement,
    RequirementVersion,
)
from patients.models import (
    ClinicalEvent,
    ConcomitantMedication,
    Patient,
    Recommendation,
    ReferenceRange,
    TreatmentCourse,
)
from patients.tests.factories import PatientFactory
from protocols.models import DesensitizationProtocol, DesensitizationStep

EDIT_PAGE_WORDS = ("settings", "preferences")  # besides names ending in "_edit"
PROJECT_APPS = {"accounts", "patients", "monitoring", "protocols"}


def _days_ago(n: int) -> date:
    return timezone.localdate() - timedelta(days=n)


# --- Reading an object back ------------------------------------------------------------------


def _bookkeeping(model: type) -> set[str]:
    """Columns every save changes by design: `auto_now` stamps and the optimistic-lock
    counter of a Versioned model."""
    names = {f.attname for f in model._meta.concrete_fields if getattr(f, "auto_now", False)}
    return names | {"version"} if issubclass(model, Versioned) else names


def _values(obj: Any) -> dict[str, Any]:
    """Every stored value of `obj`, fresh from the database, bookkeeping left out."""
    model = type(obj)
    obj = model._base_manager.get(pk=obj.pk)
    skip = _bookkeeping(model)
    values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if f.attname not in skip}
    for m2m in model._meta.many_to_many:
        values[m2m.name] = sorted(getattr(obj, m2m.name).values_list("pk", flat=True))
    return values


def _history_count(obj: Any) -> int | None:
    return obj.history.count() if hasattr(type(obj), "history") else None


def _history_changes(obj: Any, since: int | None) -> list[tuple[str, Any, Any]]:
    """The field changes recorded by history rows added after the first `since` rows."""
    if since is None:
        return []
    rows = list(type(obj).history.filter(**{type(obj)._meta.pk.attname: obj.pk}).order_by("history_date", "history_id"))
    changes = []
    for row in rows[since:]:
        previous = row.prev_record
        if previous is not None:
            changes += [(c.field, c.old, c.new) for c in row.diff_against(previous).changes
                        if c.field not in _bookkeeping(type(obj))]
    return changes


def _without(values: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != key}


# --- The browser side --------------------------------------------------------------------------


def _submit(page, selector: str) -> None:
    """Click the form's save button and wait for the next page; the save must have been
    accepted (a refused form would leave the object unchanged and pass the compare)."""
    with page.expect_navigation(timeout=10_000):
        page.locator(selector).first.click(timeout=5_000)
    errors = page.locator(".invalid-feedback, .errorlist, .errornote, .alert-danger").all_inner_texts()
    assert not [e for e in errors if e.strip()], f"the save was refused on {page.url}: {errors}"


# --- Objects with every field filled ----------------------------------------------------------


def _patient(clinic: Clinic, nurse: User, **kw: Any) -> Patient:
    return PatientFactory(
        clinic=clinic, mrn="A-900", first_name="Ada", last_name="Lovelace", date_of_birth=date(1958, 3, 9), sex="X",
        alk_test_method="NGS", alk_test_date=_days_ago(40), alk_test_result="equivocal", diagnosis_date=_days_ago(60),
        cns_metastases_at_baseline=True, primary_nurse=nurse, notes="Lives alone; daughter drives her.", **kw,
    )


def _course(patient: Patient) -> TreatmentCourse:
    return TreatmentCourse.objects.create(
        patient=patient, drug="alectinib", regime="eu", start_date=_days_ago(30), end_date=_days_ago(2),
        end_reason="toxicity", dose_state="withheld", dose_mg_bid=None, resume_dose_mg_bid=450,
        recovery_condition=[{"analyte": "alt", "max_grade": 1}], recheck_every_days=7,
    )


# --- App edit pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppForm:
    """One page of the app that edits an existing object."""

    name: str  # test id and screenshot name
    url_name: str
    persona: str  # the conftest persona who may edit it
    make: Callable[[pytest.FixtureRequest], Any]  # the object, every field filled
    path: Callable[[Any], str]
    read: Callable[[Any], dict[str, Any]]  # its values, fresh from the database
    change: Callable[[Any], None]  # change exactly one field on the page
    changed: str  # the key of `read` that the change changes
    new_value: Callable[[Any], Any]  # its expected value after the change
    shown: dict[str, Callable[[Any], str]] = field(default_factory=dict)  # input selector -> value the page shows
    submit: str = "main form[method=post] [type=submit]"
    versioning: tuple[str, ...] = ()  # fields a save changes on the edited row's history by design


def _make_patient(request):
    return _patient(request.getfixturevalue("clinic_a"), request.getfixturevalue("nurse"))


def _make_own_requirement(request):
    req = Requirement.objects.create(
        clinic=request.getfixturevalue("clinic_a"), drug="alectinib", code="ecg", label="ECG",
        analytes=["heart_rate", "systolic_bp"], source="Clinic policy", label_interval=False, active=True)
    RequirementVersion.objects.create(
        requirement=req, effective_from=_days_ago(100), note="First plan",
        schedule={"phases": [{"months": 3, "every_days": 14}, {"months": None, "every_months": 1}]})
    return req


def _requirement_values(req):
    req = Requirement.objects.get(pk=req.pk)
    latest = req.versions.order_by("-effective_from", "-pk").first()
    return {**_values(req), "schedule": latest.schedule}


def _make_default_requirement(request):
    request.getfixturevalue("clinic_a")
    return Requirement.objects.get(clinic=None, code="lft")


def _clinic_requirement_values(default):
    """What clinic A monitors under the default's code (its own copy once it saved one);
    the shared default itself must not change."""
    clinic = Clinic.objects.get(code="a")
    effective = Requirement.objects.filter(clinic=clinic, code=default.code).first() or default
    values = _requirement_values(effective)
    # A clinic's copy differs from the default on purpose in these (monitoring.views.requirement_edit).
    kept = {k: values[k] for k in ("drug", "code", "label", "analytes", "active", "schedule")}
    return {**kept, "default": _requirement_values(default)}


def _make_clinic_settings(request):
    return ClinicSettings.objects.create(
        clinic=request.getfixturevalue("clinic_a"), due_soon_days=5, grace_days=4, escalation_days=10,
        digest_time=time(6, 45), digest_counts_only=True, last_digest_date=_days_ago(1))


def _make_preference(request, enabled: bool):
    return NotificationPreference.objects.create(user=request.getfixturevalue("nurse"), digests_enabled=enabled)


def _make_protocol(request):
    request.getfixturevalue("clinic_a")
    published = DesensitizationProtocol.objects.filter(clinic=None).first()
    protocol = DesensitizationProtocol.objects.create(
        clinic=request.getfixturevalue("clinic_a"), name="Fast re-challenge", source="Clinic copy of a case report",
        start_dose="150 mg once daily", final_dose="600 mg twice daily", duration_days=9, adjunct="prednisolone",
        setting="outpatient", outcome="Tolerated in 3 of 3", evidence="[SEED] — not confirmed",
        # `successful` stays empty: a clinic copy starts without one (protocols.views.protocol_copy) and no
        # page sets it, so an edit carries nothing over.
        successful=None, copied_from=published,
        steps_approved_by=request.getfixturevalue("prescriber"), steps_approved_at=timezone.now())
    for order, (morning, evening, days) in enumerate([(150, 0, 3), (150, 150, 3), (600, 600, 3)], start=1):
        DesensitizationStep.objects.create(protocol=protocol, order=order, morning_mg=morning, evening_mg=evening,
                                           days=days)
    return protocol


def _protocol_values(protocol):
    """The latest version of the protocol. Saving makes a new version, which a prescriber
    approves again (the page says so): its id, number and approval are new by design."""
    latest = DesensitizationProtocol.objects.get(pk=protocol.pk)
    while latest.superseded_by_id:
        latest = latest.superseded_by
    values = _values(latest)
    for name in ("id", "version", "superseded_by_id", "steps_approved_by_id", "steps_approved_at", "created_at"):
        del values[name]
    return {**values, "steps": [(s.morning_mg, s.evening_mg, s.days) for s in latest.steps.all()]}


def _unsubscribe_path(pref):
    from monitoring.services import unsubscribe_token

    return reverse("unsubscribe", args=[unsubscribe_token(pref.user)])


APP_FORMS = [
    AppForm(
        name="patient", url_name="patient_edit", persona="nurse", make=_make_patient,
        path=lambda p: reverse("patient_edit", args=[p.pk]), read=_values,
        change=lambda page: page.fill("#id_diagnosis_date", _days_ago(50).isoformat()),
        changed="diagnosis_date", new_value=lambda p: _days_ago(50),
        shown={"#id_date_of_birth": lambda p: "1958-03-09", "#id_alk_test_date": lambda p: _days_ago(40).isoformat(),
               "#id_diagnosis_date": lambda p: _days_ago(60).isoformat(), "#id_sex": lambda p: "X",
               "#id_primary_nurse": lambda p: str(p.primary_nurse_id)},
    ),
    AppForm(
        name="requirement-own", url_name="requirement_edit", persona="clinic_admin", make=_make_own_requirement,
        path=lambda r: reverse("requirement_edit", args=[r.clinic_id, r.pk]), read=_requirement_values,
        change=lambda page: page.fill("#id_then_every", "2"), changed="schedule",
        new_value=lambda r: {"phases": [{"months": 3, "every_days": 14}, {"months": None, "every_months": 2}]},
        shown={"#id_first_every": lambda r: "14", "#id_first_unit": lambda r: "days", "#id_first_months": lambda r: "3",
               "#id_then_every": lambda r: "1", "#id_then_unit": lambda r: "months"},
    ),
    AppForm(
        name="requirement-default", url_name="requirement_edit", persona="clinic_admin", make=_make_default_requirement,
        path=lambda r: reverse("requirement_edit", args=[Clinic.objects.get(code="a").pk, r.pk]),
        read=_clinic_requirement_values, change=lambda page: page.fill("#id_label", "Liver panel (clinic)"),
        changed="label", new_value=lambda r: "Liver panel (clinic)",
        shown={"#id_first_every": lambda r: "14", "#id_first_months": lambda r: "3", "#id_then_every": lambda r: "1"},
    ),
    AppForm(
        name="clinic-settings", url_name="clinic_settings", persona="clinic_admin", make=_make_clinic_settings,
        path=lambda s: reverse("clinic_settings", args=[s.clinic_id]), read=_values,
        change=lambda page: page.fill("#id_digest_time", "18:30"), changed="digest_time",
        new_value=lambda s: time(18, 30), shown={"#id_digest_time": lambda s: "06:45", "#id_grace_days": lambda s: "4"},
    ),
    AppForm(
        name="preferences", url_name="preferences", persona="nurse", make=lambda r: _make_preference(r, False),
        path=lambda p: reverse("preferences"), read=_values,
        change=lambda page: page.check("#digests_enabled"), changed="digests_enabled", new_value=lambda p: True,
    ),
    AppForm(
        # The same switch, reached from the link in a digest.
        name="unsubscribe-link", url_name="unsubscribe", persona="nurse", make=lambda r: _make_preference(r, True),
        path=_unsubscribe_path, read=_values,
        change=lambda page: page.uncheck("#digests_enabled"), changed="digests_enabled", new_value=lambda p: False,
    ),
    AppForm(
        name="protocol", url_name="protocol_edit", persona="prescriber", make=_make_protocol,
        path=lambda p: reverse("protocol_edit", args=[p.pk]), read=_protocol_values,
        change=lambda page: page.select_option("#id_setting", "inpatient"), changed="setting",
        new_value=lambda p: "inpatient",
        shown={"#id_setting": lambda p: "outpatient", "#id_duration_days": lambda p: "9",
               "input[name=steps-2-morning_mg]": lambda p: "600"},
        versioning=("superseded_by",),  # the edited version points to the new one
    ),
]


@pytest.mark.parametrize("form", APP_FORMS, ids=lambda f: f.name)
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_edit_page_keeps_every_field_it_was_not_asked_to_change(form, request, login_browser, live_server, artifacts):
    obj = form.make(request)
    page = login_browser(request.getfixturevalue(form.persona))
    url = live_server.url + form.path(obj)
    before, history = form.read(obj), _history_count(obj)

    page.goto(url)
    for selector, value in form.shown.items():
        assert page.input_value(selector) == value(obj), selector
    page.screenshot(path=artifacts / f"edit-form-{form.name}.png", full_page=True)
    _submit(page, form.submit)
    assert form.read(obj) == before, "an untouched save changed the object"
    assert [c for c in _history_changes(obj, history) if c[0] not in form.versioning] == []

    page.goto(url)
    form.change(page)
    _submit(page, form.submit)
    after = form.read(obj)
    assert after[form.changed] == form.new_value(obj)
    assert before[form.changed] != after[form.changed]
    assert _without(after, form.changed) == _without(before, form.changed)


# --- Django admin change forms ------------------------------------------------------------------


@dataclass(frozen=True)
class AdminForm:
    """One object of a model that is still editable in the Django admin."""

    name: str
    model: type
    make: Callable[[pytest.FixtureRequest], Any]


def _make_user(request):
    nurse = request.getfixturevalue("nurse")
    nurse.last_login = timezone.now() - timedelta(hours=3, microseconds=123456)
    nurse.date_joined = timezone.now() - timedelta(days=400, microseconds=654321)
    nurse.last_name, nurse.is_staff = "Nightingale", True
    nurse.save()
    return nurse


def _make_clinic(request):
    clinic = request.getfixturevalue("clinic_a")
    clinic.timezone, clinic.capsule_strengths = "Europe/Paris", [20, 40]
    clinic.save()
    return clinic


def _admin_patient(request):
    return _patient(request.getfixturevalue("clinic_a"), request.getfixturevalue("nurse"),
                    archived_at=timezone.now() - timedelta(days=1, microseconds=314159))


def _admin_event(request, **kw):
    patient = _admin_patient(request)
    _course(patient)
    return ClinicalEvent.objects.create(patient=patient, onset_date=_days_ago(10), resolved_date=_days_ago(3), grade=2,
                                        notes="Seen in clinic", recorded_by=request.getfixturevalue("nurse"), **kw)


def _admin_recommendation(request):
    course = _course(_admin_patient(request))
    return Recommendation.objects.create(
        course=course, action="withhold", output={"action": "withhold", "resume_dose_mg_bid": 450},
        inputs={"alt": "5.2 x ULN"}, trigger_key="lab:1", status="overridden",
        decided_by=request.getfixturevalue("prescriber"), decided_at=timezone.now(), chosen_option=0,
        decision_note="Patient on holiday")


ADMIN_FORMS = [
    AdminForm("user", User, _make_user),
    AdminForm("clinic", Clinic, _make_clinic),
    AdminForm("patient", Patient, _admin_patient),
    AdminForm("course", TreatmentCourse, lambda r: _course(_admin_patient(r))),
    AdminForm("event-bradycardia", ClinicalEvent, lambda r: _admin_event(
        r, kind="bradycardia", bradycardia="symptomatic", contributing_medication=True,
        contributing_medication_adjusted=True)),
    AdminForm("event-rash", ClinicalEvent, lambda r: _admin_event(
        r, kind="rash", rash_bsa_percent=35, scar="agep", blistering_or_mucosal=True)),
    AdminForm("medication", ConcomitantMedication, lambda r: ConcomitantMedication.objects.create(
        course=_course(_admin_patient(r)), name="Bisoprolol", category="beta_blocker", start_date=_days_ago(20),
        end_date=_days_ago(5))),
    AdminForm("reference-range", ReferenceRange, lambda r: ReferenceRange.objects.create(
        clinic=r.getfixturevalue("clinic_a"), analyte="hemoglobin", uln=Decimal("17.5"), lln=Decimal("12.25"))),
    AdminForm("recommendation", Recommendation, _admin_recommendation),
    AdminForm("heartbeat", Heartbeat, lambda r: Heartbeat.objects.create(
        name="monitoring_tick", last_run_at=timezone.now() - timedelta(microseconds=271828), runs=42)),
    AdminForm("clinic-settings", ClinicSettings, _make_clinic_settings),
    AdminForm("dirty-patient", DirtyPatient, lambda r: DirtyPatient.objects.create(patient_id=_admin_patient(r).pk)),
    AdminForm("notification-preference", NotificationPreference, lambda r: _make_preference(r, False)),
]


@pytest.fixture
def superuser(clinic_a):
    """A superuser who is also clinic A's admin (the admin shows only the user's clinics'
    rows), with a confirmed second factor (superusers must have one)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = User.objects.create_superuser("root", "root@example.org", "x-test-password-123")
    Membership.objects.create(user=user, clinic=clinic_a, role="admin")
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user


@pytest.fixture
def admin_browser(login_browser, client, superuser):
    from django_otp import DEVICE_ID_SESSION_KEY

    page = login_browser(superuser)
    session = client.session  # the browser's session: login_browser copied its cookie
    session[DEVICE_ID_SESSION_KEY] = superuser.totpdevice_set.get().persistent_id
    session.save()
    return page


@pytest.mark.parametrize("form", ADMIN_FORMS, ids=lambda f: f.name)
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_saving_an_admin_change_page_untouched_changes_nothing(form, request, admin_browser, live_server, artifacts):
    obj = form.make(request)
    before, history = _values(obj), _history_count(obj)
    opts = form.model._meta
    page = admin_browser
    page.goto(live_server.url + reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    page.screenshot(path=artifacts / f"edit-admin-{form.name}.png", full_page=True)
    _submit(page, "input[name=_save]")
    assert _values(obj) == before
    assert _history_changes(obj, history) == []


# --- Coverage: a new edit page or admin-editable model must join the lists above ------------------


def _url_names(patterns) -> set[str]:
    names = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.app_name != "admin":
                names |= _url_names(p.url_patterns)
        elif p.name:
            names.add(p.name)
    return names


def test_every_page_that_looks_like_an_edit_page_is_in_the_browser_test():
    looks_like_edit = {n for n in _url_names(get_resolver().url_patterns)
                       if n.endswith("_edit") or any(w in n for w in EDIT_PAGE_WORDS)}
    assert looks_like_edit, "the URL walk found no edit pages"
    assert looks_like_edit - {f.url_name for f in APP_FORMS} == set()


def test_every_model_a_superuser_can_change_in_the_admin_is_in_the_browser_test():
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    editable = {model for model, model_admin in admin.site._registry.items()
                if model._meta.app_label in PROJECT_APPS and model_admin.has_change_permission(request)}
    assert editable - {f.model for f in ADMIN_FORMS} == set()
