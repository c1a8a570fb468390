"""Stored due dates, follow-ups, and the digest outbox, through the services.

Dates are pinned with time_machine; the database holds the truth, so every test checks rows."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from smtplib import SMTPRecipientsRefused, SMTPServerDisconnected
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, User
from monitoring import services
from monitoring.models import ClinicSettings, Digest, FollowUp, MonitoringItem, Requirement, RequirementVersion
from patients.models import TreatmentCourse
from patients.services import LabEntry, dose_change_record, lab_panel_record, patient_archive
from patients.tests.factories import PatientFactory, clinic_ranges
from protocols.dosing import Dose, DoseState, Reason
from protocols.errors import InputError

pytestmark = pytest.mark.django_db

TODAY = date(2026, 2, 20)
START = date(2026, 1, 5)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(datetime(2026, 2, 20, 9, 0, tzinfo=timezone.get_current_timezone()), tick=False):
        yield


@pytest.fixture
def course(clinic_a, prescriber):
    from patients.services import course_start

    clinic_ranges(clinic_a)
    patient = PatientFactory(clinic=clinic_a, mrn="A-0042", first_name="Greta", last_name="Holm")
    return course_start(patient=patient, start_date=START, ordered_by=prescriber, recorded_by=prescriber)


def lft(course, user, day: date, hour=9):
    when = timezone.make_aware(datetime.combine(day, time(hour)))
    lab_panel_record(patient=course.patient, collected_at=when, entered_by=user, now=when,
                     entries=[LabEntry("alt", "30"), LabEntry("ast", "25"), LabEntry("total_bilirubin", "0.6")])


def items(course) -> dict[str, MonitoringItem]:
    services.patient_schedule_recompute(patient_id=course.patient_id, today=TODAY)
    return {i.requirement.code: i for i in MonitoringItem.objects.filter(course=course).select_related("requirement")}


def test_due_dates_are_stored_for_every_requirement(course):
    got = items(course)
    assert set(got) == {"lft", "cpk", "vitals", "creatinine", "hemoglobin", "brain_imaging", "cmin"}
    assert got["lft"].due_date == date(2026, 1, 19)  # day 14, no test yet
    assert got["lft"].overdue_from == date(2026, 1, 20)
    assert got["lft"].status_on(TODAY) == "overdue"
    assert got["cpk"].due_date is None and "missed" in got["cpk"].notice
    assert got["vitals"].due_date is None  # clinic policy not set


def test_a_result_moves_the_due_date_and_only_full_panels_count(course, nurse):
    lft(course, nurse, date(2026, 2, 2))
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    when = timezone.make_aware(datetime(2026, 2, 10, 9))
    lab_panel_record(patient=course.patient, collected_at=when, entered_by=nurse, now=when,
                     entries=[LabEntry("alt", "30")])  # ALT alone is not the LFT panel
    assert items(course)["lft"].due_date == date(2026, 2, 16)


def test_withheld_patients_stay_monitored(course, nurse, prescriber):
    lft(course, nurse, date(2026, 2, 2))
    dose_change_record(course=course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=450), effective_date=date(2026, 2, 3),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    lft(course, nurse, date(2026, 2, 12))  # a test while withheld still counts (§5.6)
    assert items(course)["lft"].due_date == date(2026, 2, 26)


def test_discontinued_and_archived_patients_drop_out(course, prescriber, clinic_a):
    items(course)
    dose_change_record(course=course, to=Dose(DoseState.DISCONTINUED), effective_date=date(2026, 2, 3),
                       reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert all(i.due_date is None for i in items(course).values())
    assert not MonitoringItem.objects.overdue(TODAY).exists()
    other = PatientFactory(clinic=clinic_a)
    from patients.services import course_start

    c2 = course_start(patient=other, start_date=START, ordered_by=prescriber, recorded_by=prescriber)
    assert items(c2)["lft"].due_date is not None
    patient_archive(patient=other)
    assert items(c2)["lft"].due_date is None


def test_changing_the_start_date_recomputes_after_commit(course, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=True):
        c = TreatmentCourse.objects.get(pk=course.pk)
        c.start_date = date(2026, 2, 10)
        c.save()
    item = MonitoringItem.objects.get(course=course, requirement__code="lft")
    assert item.due_date == date(2026, 2, 24)


def test_saving_a_panel_recomputes_after_commit(course, nurse, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=True):
        lft(course, nurse, date(2026, 2, 18))
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 3, 4)


def test_a_failed_recompute_marks_the_patient_dirty_and_the_job_catches_up(course, nurse, django_capture_on_commit_callbacks):
    from monitoring.models import DirtyPatient

    items(course)
    with mock.patch("monitoring.services.patient_schedule_recompute", side_effect=RuntimeError("db hiccup")), \
            django_capture_on_commit_callbacks(execute=True):
        lft(course, nurse, date(2026, 2, 18))
    assert DirtyPatient.objects.filter(patient_id=course.patient_id).exists()
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 1, 19)
    assert services.schedule_sweep(full=False, today=TODAY) == 1
    assert MonitoringItem.objects.get(course=course, requirement__code="lft").due_date == date(2026, 3, 4)
    assert not DirtyPatient.objects.exists()


def test_clinic_policy_interval_applies_and_edits_keep_history(course, nurse, clinic_a, clinic_admin, client):
    client.force_login(clinic_admin)
    vitals = Requirement.objects.get(clinic__isnull=True, code="vitals")
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]),
                           {"label": "Heart rate and blood pressure", "analytes": ["heart_rate", "systolic_bp"],
                            "first_every": "14", "first_unit": "days", "first_months": "", "then_unit": "months",
                            "note": "clinic policy: fortnightly", "based_on": vitals.versions.get().pk})
    assert response.status_code == 302
    own = Requirement.objects.get(clinic=clinic_a, code="vitals")
    assert [v.schedule for v in own.versions.all()][-1] == {"phases": [{"months": None, "every_days": 14}]}
    assert own.versions.count() == 2  # the default's history plus the clinic's edit
    # Introduced today: due 14 days from today, nobody overdue retroactively.
    assert items(course)["vitals"].due_date == date(2026, 3, 6)
    assert Requirement.objects.get(clinic__isnull=True, code="vitals").versions.count() == 1  # default untouched


def test_schedule_in_force_on_the_last_test_date_is_used(course, nurse, clinic_a):
    lft_req = Requirement.objects.get(clinic__isnull=True, code="lft")
    own = Requirement.objects.create(clinic=clinic_a, code="lft", label="LFT", analytes=lft_req.analytes, source="x")
    RequirementVersion.objects.create(requirement=own, schedule={"phases": [{"months": None, "every_days": 14}]},
                                      effective_from=date(2000, 1, 1))
    RequirementVersion.objects.create(requirement=own, schedule={"phases": [{"months": None, "every_days": 7}]},
                                      effective_from=date(2026, 2, 10))
    lft(course, nurse, date(2026, 2, 2))  # before the change: 14 days
    assert items(course)["lft"].due_date == date(2026, 2, 16)
    lft(course, nurse, date(2026, 2, 12))  # after the change: 7 days
    assert items(course)["lft"].due_date == date(2026, 2, 19)


def test_a_clinic_can_add_a_requirement_of_its_own(course, clinic_a, clinic_admin, client, nurse):
    client.force_login(clinic_admin)
    client.post(reverse("requirement_create", args=[clinic_a.pk]),
                {"code": "ecg", "label": "ECG", "first_every": "1", "first_unit": "months", "then_unit": "months"})
    got = items(course)
    assert got["ecg"].due_date == date(2026, 3, 20)  # monthly from the day it was introduced
    client.force_login(nurse)
    client.post(reverse("record_test", args=[course.patient_id]), {"requirement_code": "ecg", "performed_on": "2026-02-20"})
    got = items(course)
    assert got["ecg"].last_done == date(2026, 2, 20) and got["ecg"].due_date == date(2026, 3, 20)


# --- follow-ups ---------------------------------------------------------------------------------


def test_follow_up_snoozes_at_most_seven_days_and_a_new_test_ends_it(course, nurse):
    item = items(course)["lft"]
    with pytest.raises(InputError, match="at most 7 days"):
        services.follow_up_record(item=item, user=nurse, kind="ordered", note="GP", until=TODAY + timedelta(days=8), today=TODAY)
    with pytest.raises(InputError, match="Say why"):
        services.follow_up_record(item=item, user=nurse, kind="ordered", note=" ", until=TODAY + timedelta(days=2), today=TODAY)
    services.follow_up_record(item=item, user=nurse, kind="contacted", note="Phoned; coming Monday",
                              until=TODAY + timedelta(days=3), today=TODAY)
    item.refresh_from_db()
    assert item.overdue_from == TODAY + timedelta(days=4)
    assert item.status_on(TODAY) == "snoozed"
    assert not MonitoringItem.objects.overdue(TODAY).exists()
    assert FollowUp.objects.get().recorded_by == nurse
    lft(course, nurse, date(2026, 2, 20), hour=8)
    item = items(course)["lft"]
    assert item.snoozed_until is None and item.due_date == date(2026, 3, 6)


def test_follow_up_through_htmx_returns_the_row(course, nurse, client):
    item = items(course)["lft"]
    client.force_login(nurse)
    response = client.post(reverse("follow_up", args=[item.pk]),
                           {"kind": "ordered", "note": "Ordered at GP", "until": "2026-02-23"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith("<tr") and "snoozed until 23 Feb" in body
    assert "followed up until 23 Feb" in body


def test_worklist_shows_overdue_and_due_soon(course, nurse, client, clinic_a, prescriber):
    from patients.services import course_start

    items(course)
    soon = course_start(patient=PatientFactory(clinic=clinic_a, mrn="A-SOON"), start_date=date(2026, 2, 8),
                        ordered_by=prescriber, recorded_by=prescriber)
    items(soon)
    client.force_login(nurse)
    body = client.get(reverse("home")).content.decode()
    assert "A-0042" in body and "32 days overdue" in body  # due 19 Jan
    assert "A-SOON" in body and "due Sun 22 Feb" in body


# --- digests ---------------------------------------------------------------------------------------


@pytest.fixture
def staff_member(clinic_a):
    user = User.objects.create_user("sam", email="sam@example.org", password="x-test-password-123")
    Membership.objects.create(user=user, clinic=clinic_a, role="staff")
    # No escalation unless a test asks for one (the LFT item here is 32 days overdue).
    ClinicSettings.objects.update_or_create(clinic=clinic_a, defaults={"escalation_days": 60})
    return user


def plan(hour=8):
    now = timezone.make_aware(datetime.combine(TODAY, time(hour)))
    return services.digests_plan(now=now)


def send_all():
    for pk in Digest.objects.filter(status="pending").values_list("pk", flat=True):
        try:
            services.digest_send(digest_id=pk)
        except services.DigestDeferred:
            pass


def test_digest_lists_mrn_test_and_days_overdue_and_nothing_more(course, staff_member, django_capture_on_commit_callbacks):
    items(course)
    with django_capture_on_commit_callbacks(execute=False):
        summary = plan()
    assert summary["digests"] == 1
    send_all()
    (msg,) = mail.outbox
    assert msg.to == ["sam@example.org"]
    assert "1 overdue" in msg.subject
    text, (html, mime) = msg.body, msg.alternatives[0]
    assert mime == "text/html"
    for part in (text, html):
        assert "A-0042" in part and "Liver panel" in part and "32" in part
        assert "Greta" not in part and "Holm" not in part and "1960" not in part and "U/L" not in part
    assert "http://127.0.0.1:8000/" in text and "/monitoring/unsubscribe/" in text
    token_url = text.split("unsubscribe: ")[1].split()[0].replace("http://127.0.0.1:8000", "")
    assert token_url.startswith("/monitoring/unsubscribe/")


def test_counts_only_option_leaves_out_the_mrn(course, staff_member, clinic_a):
    items(course)
    ClinicSettings.objects.filter(clinic=clinic_a).update(digest_counts_only=True)
    plan()
    send_all()
    assert "A-0042" not in mail.outbox[0].body and "Overdue: 1" in mail.outbox[0].body


def test_digest_waits_for_the_clinic_local_time(course, staff_member):
    items(course)
    assert plan(hour=6)["digests"] == 0
    assert plan(hour=7)["digests"] == 1


def test_running_the_job_twice_sends_one_digest_per_person_per_day(course, staff_member):
    items(course)
    plan()
    ClinicSettings.objects.update(last_digest_date=None)  # as if a second beat raced past the clinic claim
    plan()
    send_all()
    send_all()
    assert Digest.objects.count() == 1 and len(mail.outbox) == 1


def test_a_sent_or_claimed_digest_is_not_sent_again(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    assert services.digest_send(digest_id=digest.pk) == "sent"
    assert services.digest_send(digest_id=digest.pk) == "not claimed"
    assert len(mail.outbox) == 1


def test_a_crash_after_the_claim_is_resent_once_after_the_lease(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    now = timezone.now()
    Digest.objects.filter(pk=digest.pk).update(status="sending", lease_until=now + timedelta(minutes=5), attempts=1)
    assert services.digest_send(digest_id=digest.pk) == "not claimed"  # still leased by the crashed worker
    later = now + timedelta(minutes=6)
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        assert services.digests_requeue(now=later) == 1
    assert enqueue.call_args[0][0] == [digest.pk]
    assert services.digest_send(digest_id=digest.pk, now=later) == "sent"
    assert len(mail.outbox) == 1


def test_a_lost_task_is_requeued_from_the_pending_row(course, staff_member):
    items(course)
    plan()  # the task never reached the broker (on_commit hooks do not run here)
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        assert services.digests_requeue(now=timezone.now() + timedelta(minutes=11)) == 1
    assert enqueue.call_args[0][0] == [Digest.objects.get().pk]


def test_smtp_failure_retries_then_fails_and_shows_in_the_outbox(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected("gone")):
        for attempt in range(1, Digest.MAX_ATTEMPTS):
            with pytest.raises(services.DigestDeferred):
                services.digest_send(digest_id=digest.pk)
            digest.refresh_from_db()
            assert (digest.status, digest.attempts) == ("pending", attempt)
        assert services.digest_send(digest_id=digest.pk) == "failed"
    digest.refresh_from_db()
    assert digest.status == "failed" and "SMTPServerDisconnected" in digest.last_error
    client.force_login(clinic_admin)
    page = client.get(reverse("outbox")).content.decode()
    assert "1 failed" in page and "SMTPServerDisconnected" in page


def test_permanent_smtp_error_fails_at_once(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    error = SMTPRecipientsRefused({"sam@example.org": (550, b"user unknown")})
    error.smtp_code = 550
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=error):
        assert services.digest_send(digest_id=digest.pk) == "failed"


def test_staff_without_email_is_skipped_and_reported(course, clinic_a, clinic_admin, client):
    user = User.objects.create_user("noemail", password="x-test-password-123")
    Membership.objects.create(user=user, clinic=clinic_a, role="staff")
    User.objects.create_user("loner", email="loner@example.org", password="x-test-password-123")
    items(course)
    summary = plan()
    assert summary["skipped"] == 1 and summary["users_without_clinic"] >= 1
    digest = Digest.objects.get(recipient=user)
    assert digest.status == "skipped" and "No email address" in digest.last_error
    client.force_login(clinic_admin)
    assert "No email address" in client.get(reverse("outbox")).content.decode()


def test_escalation_goes_to_prescribers_and_admins_after_seven_days(course, staff_member, prescriber, clinic_admin):
    ClinicSettings.objects.update(escalation_days=7)
    items(course)  # LFT due 19 Jan: 32 days overdue
    summary = plan()
    assert summary["escalations"] == 2
    send_all()
    escalations = [m for m in mail.outbox if "more than 7 days" in m.subject]
    assert sorted(m.to[0] for m in escalations) == ["clinicadmin@example.org", "prescriber@example.org"]


def test_unsubscribe_link_turns_digests_off(course, staff_member, client):
    token = services.unsubscribe_token(staff_member)
    response = client.post(reverse("unsubscribe", args=[token]), {})
    assert response.status_code == 200 and "Saved" in response.content.decode()
    items(course)
    assert plan()["digests"] == 0
    assert client.get(reverse("unsubscribe", args=["forged"])).status_code == 404


def test_no_items_no_digest(clinic_a, staff_member):
    assert plan()["digests"] == 0
    assert not mail.outbox


# --- the overdue query uses its index ---------------------------------------------------------------


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="EXPLAIN plans are checked on PostgreSQL")
def test_overdue_query_plan_uses_the_index(course):
    from monitoring.benchmark import build_items, explain_overdue

    build_items(clinic_id=course.patient.clinic_id, course=course, n=20000)
    plan_text = explain_overdue(today=TODAY, clinic_id=course.patient.clinic_id)
    assert "Index" in plan_text and ("item_clinic_overdue_idx" in plan_text or "item_overdue_idx" in plan_text), plan_text
    assert "Seq Scan on monitoring_monitoringitem" not in plan_text


def test_connection_is_available():
    assert connection.vendor in ("sqlite", "postgresql")


def test_each_change_recomputes_due_dates_once(course, prescriber, django_capture_on_commit_callbacks):
    """A service save announces itself once; the post_save receivers only catch admin/form saves."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dose_change_record(course=course, to=Dose(DoseState.ON_DRUG, 450), effective_date=TODAY,
                           reason=Reason.TOXICITY, ordered_by=prescriber, recorded_by=prescriber)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        patient_archive(patient=course.patient)
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        course.start_date = START + timedelta(days=1)
        course.save()  # as the admin does
    assert len(callbacks) == 1


# --- mail faults (issue: an error that is not an SMTP error looped; a short outage lost the day) ---


def test_an_error_that_is_not_smtp_ends_the_attempt_counts_and_fails(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(to_address="sam@example.org\r\nBcc: x@example.org")
    assert services.digest_send(digest_id=digest.pk) == "failed"
    digest.refresh_from_db()
    assert (digest.status, digest.attempts, digest.lease_until) == ("failed", 1, None)
    assert "BadHeaderError" in digest.last_error or "ValueError" in digest.last_error
    assert services.digests_requeue(now=timezone.now() + timedelta(hours=2)) == 0, "never requeued"
    client.force_login(clinic_admin)
    assert "could not be delivered" in client.get(reverse("home")).content.decode()


def test_550_at_rcpt_is_permanent_without_an_smtp_code_attribute(course, staff_member):
    items(course)
    plan()
    digest = Digest.objects.get()
    error = SMTPRecipientsRefused({"sam@example.org": (550, b"user unknown")})  # as smtplib raises it
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=error):
        assert services.digest_send(digest_id=digest.pk) == "failed"


def test_a_short_outage_is_retried_for_hours_with_backoff(course, staff_member):
    from monitoring import rules

    items(course)
    plan()
    digest = Digest.objects.get()
    now = timezone.now()
    with mock.patch("django.core.mail.EmailMultiAlternatives.send", side_effect=SMTPServerDisconnected("gone")):
        for _ in range(3):
            with pytest.raises(services.DigestDeferred):
                services.digest_send(digest_id=digest.pk, now=now)
            digest.refresh_from_db()
            assert digest.status == "pending" and digest.next_attempt_at > now
            with mock.patch("monitoring.services._enqueue_sends"):
                assert services.digests_requeue(now=now) == 0, "not before its next attempt"
                assert services.digests_requeue(now=digest.next_attempt_at) == 1
            now = digest.next_attempt_at
    total = sum((rules.retry_delay(a) for a in range(1, Digest.MAX_ATTEMPTS)), timedelta())
    assert total > timedelta(hours=3)
    assert services.digest_send(digest_id=digest.pk, now=now) == "sent"


def test_retry_delay_grows_and_is_capped():
    from monitoring import rules

    assert rules.retry_delay(1) == timedelta(minutes=1)
    assert rules.retry_delay(2) == timedelta(minutes=2)
    assert rules.retry_delay(20) == timedelta(hours=1)
    assert rules.retry_delay(20, 0.2) == timedelta(hours=1.2)
    assert rules.retry_delay(20, 5) == timedelta(hours=1.2), "jitter is bounded"


def test_a_clinic_admin_retries_a_failed_digest_from_the_outbox(course, staff_member, clinic_admin, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(status="failed", attempts=10, last_error="SMTPServerDisconnected")
    client.force_login(clinic_admin)
    assert 'action="/monitoring/outbox/' in client.get(reverse("outbox")).content.decode()
    with mock.patch("monitoring.services._enqueue_sends") as enqueue:
        client.post(reverse("digest_retry", args=[digest.pk]))
    digest.refresh_from_db()
    assert (digest.status, digest.attempts) == ("pending", 0) and enqueue.called
    assert services.digest_send(digest_id=digest.pk) == "sent"


def test_staff_cannot_retry_a_digest(course, staff_member, client):
    items(course)
    plan()
    digest = Digest.objects.get()
    Digest.objects.filter(pk=digest.pk).update(status="failed")
    client.force_login(staff_member)
    assert client.post(reverse("digest_retry", args=[digest.pk])).status_code == 403


def test_a_rolled_back_plan_sends_nothing_and_leaves_no_task(course, staff_member, django_capture_on_commit_callbacks):
    """reliability.md F13: digests are enqueued on commit; a rollback leaves no row and no task."""
    from django.db import transaction

    items(course)
    with mock.patch("monitoring.tasks.send_digest.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            assert plan()["digests"] == 1
            raise RuntimeError("something after the plan failed")
    assert callbacks == [] and not delay.called
    assert not Digest.objects.exists() and mail.outbox == []


def test_a_follow_up_survives_a_change_of_the_monitoring_plan(course, nurse, clinic_a, clinic_admin, client):
    """Issue #12 item 5: editing a requirement (the clinic's own copy replaces the default)
    deleted the item and its 'test ordered' follow-up, and the item came back in the next
    digest. The item is carried over to the copy, with its snooze and its follow-ups."""
    item = items(course)["lft"]
    assert item in MonitoringItem.objects.overdue(TODAY)
    services.follow_up_record(item=item, user=nurse, kind="ordered", note="LFTs ordered at the GP",
                              until=TODAY + timedelta(days=3), today=TODAY)
    lft_req = Requirement.objects.get(clinic__isnull=True, code="lft")
    client.force_login(clinic_admin)
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, lft_req.pk]), {
        "label": "Liver tests", "analytes": ["alt", "ast", "total_bilirubin"], "first_every": "14", "first_unit": "days",
        "first_months": "3", "then_every": "1", "then_unit": "months", "note": "renamed",
        "based_on": lft_req.versions.order_by("-pk").first().pk})
    assert response.status_code == 302
    kept = MonitoringItem.objects.get(course=course, requirement__code="lft")
    assert kept.pk == item.pk and kept.requirement.clinic_id == clinic_a.pk  # the clinic's copy
    assert kept.snoozed_until == TODAY + timedelta(days=3)
    assert [f.note for f in kept.follow_ups.all()] == ["LFTs ordered at the GP"]
    overdue, _ = services.digest_items(clinic=clinic_a, today=TODAY + timedelta(days=1))
    assert kept not in overdue


def test_a_retired_requirement_keeps_its_item_and_follow_ups_without_a_due_date(course, nurse, clinic_a):
    item = items(course)["lft"]
    services.follow_up_record(item=item, user=nurse, kind="contacted", note="Phoned", until=TODAY + timedelta(days=2),
                              today=TODAY)
    Requirement.objects.filter(code="lft").update(active=False)
    items(course)
    item.refresh_from_db()
    assert item.due_date is None and item.notice == "No longer required" and item.follow_ups.count() == 1
    assert item not in MonitoringItem.objects.overdue(TODAY)


def test_a_stale_schedule_edit_is_a_conflict_and_changes_nothing(clinic_a, clinic_admin, client):
    """Issue #12 item 4: two admins open the same schedule; the second save is refused."""
    vitals = Requirement.objects.get(clinic__isnull=True, code="vitals")
    read_at = vitals.versions.order_by("-pk").first().pk
    post = {"label": "Vitals", "analytes": ["heart_rate"], "first_every": "14", "first_unit": "days", "first_months": "",
            "then_unit": "months", "note": "first admin", "based_on": read_at}
    client.force_login(clinic_admin)
    assert client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]), post).status_code == 302
    response = client.post(reverse("requirement_edit", args=[clinic_a.pk, vitals.pk]), {**post, "first_every": "7",
                                                                                       "note": "second admin"})
    assert response.status_code == 200 and "changed by someone else" in response.content.decode()
    own = Requirement.objects.get(clinic=clinic_a, code="vitals")
    assert [v.note for v in own.versions.order_by("pk")][-1] == "first admin"
    assert Requirement.objects.filter(clinic=clinic_a, code="vitals").count() == 1
