"""One clock per clinic: the same scenario for a clinic in Auckland (ahead of the server,
NZDT ends on 5 April 2026), London (the server's zone, BST starts on 29 March 2026) and
Honolulu (behind the server, no DST; the server's clocks change under it on 29 March).

Through the pages, at instants where the clinic's date and the server's differ: a lab near
midnight counts on the clinic's day, the worklist lists what the clinic's digest lists,
a desensitization day is missed only once the clinic's day is over, and times are shown
on the clinic's clock with the zone named. Plus the worklist's 'due soon' setting, the
grade ≥ 3 filter and the clinic column (issue items 7 and 8)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import ClinicFactory, MembershipFactory
from monitoring import services
from monitoring.models import ClinicSettings, Digest, MonitoringItem
from patients.models import LabResult
from patients.services import LabEntry, clinical_event_record, course_start, dose_change_record, lab_panel_record
from patients.tests.factories import PatientFactory, clinic_ranges
from protocols.dosing import Dose, DoseState, Reason

pytestmark = pytest.mark.django_db

LFT = "Liver panel (ALT, AST, total bilirubin)"
# (zone, the clinic's DST day or the server's, the zone's abbreviations at 00:30 and 23:30 that day)
CLINICS = [
    pytest.param("Pacific/Auckland", date(2026, 4, 5), "NZDT", "NZST", id="auckland"),
    pytest.param("Europe/London", date(2026, 3, 29), "GMT", "BST", id="london"),
    pytest.param("Pacific/Honolulu", date(2026, 3, 29), "HST", "HST", id="honolulu"),
]


def at(zone: str, day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zoneinfo.ZoneInfo(zone))


def travel(instant: datetime):
    return time_machine.travel(instant, tick=False)


def started(clinic, prescriber, *, mrn: str, start: date, **kw):
    patient = PatientFactory(clinic=clinic, mrn=mrn, **kw)
    course_start(patient=patient, start_date=start, ordered_by=prescriber, recorded_by=prescriber)
    return patient


def post_panel(client, patient, local: str) -> None:
    """A full liver panel and CPK, typed as the nurse reads it off the tube: local time."""
    response = client.post(reverse("lab_panel", args=[patient.pk]), {
        "collected_at": local, "alt_value": "30", "ast_value": "25", "total_bilirubin_value": "0.6", "cpk_value": "100"})
    assert response.status_code == 302, response.content.decode()[:2000]


def worklist_overdue(body: str) -> set[tuple[str, str, int]]:
    """(MRN, test, days overdue) of the worklist's overdue section."""
    if 'data-testid="overdue"' not in body:
        return set()
    table = body.split('data-testid="overdue"')[1].split("</table>", maxsplit=1)[0]
    rows = set()
    for row in re.findall(r'<tr id="item-\d+">(.*?)</tr>', table, re.S):
        mrn = re.search(r'<a href="[^"]*">([^<]+)</a>', row).group(1)
        label = re.findall(r"<td>(.*?)</td>", row, re.S)[2]  # MRN, name, test (one clinic: no clinic column)
        rows.add((mrn, label, int(re.search(r"(\d+) days? overdue", row).group(1))))
    return rows


def digest_overdue(text: str) -> set[tuple[str, str, int]]:
    marker = "MOST OVERDUE FIRST (MRN — test — days overdue)"
    block = text.split(marker)[1].split("\n\n", maxsplit=1)[0] if marker in text else ""
    return {(m, t, int(d)) for m, t, d in re.findall(r"^  (\S+) — (.+) — (\d+) days?$", block, re.M)}


def digest_now(clinic) -> str:
    """Plan and send the clinic's digest at this instant (task bodies called directly);
    the text of the email the staff member gets."""
    ClinicSettings.objects.filter(clinic=clinic).update(last_digest_date=None)
    Digest.objects.all().delete()
    mail.outbox.clear()
    services.digests_plan(now=timezone.now())
    for pk in Digest.objects.filter(status="pending", kind="digest").values_list("pk", flat=True):
        services.digest_send(digest_id=pk)
    (msg,) = [m for m in mail.outbox if m.to == ["staff@example.org"]]
    return msg.body


@pytest.mark.parametrize(("zone", "day", "dawn_abbr", "night_abbr"), CLINICS)
def test_labs_near_midnight_count_on_the_clinic_day_and_the_worklist_matches_the_digest(
        client, clinic_a, nurse, prescriber, staff, zone, day, dawn_abbr, night_abbr, django_capture_on_commit_callbacks):
    clinic_a.timezone = zone
    clinic_a.save()
    clinic_ranges(clinic_a)
    client.force_login(nurse)
    with travel(at(zone, day + timedelta(days=1), 9)):
        with django_capture_on_commit_callbacks(execute=True):  # due dates are recomputed after commit
            late = started(clinic_a, prescriber, mrn="LATE", start=day - timedelta(days=30))
            night = started(clinic_a, prescriber, mrn="NIGHT", start=day - timedelta(days=10))
            dawn = started(clinic_a, prescriber, mrn="DAWN", start=day - timedelta(days=10))
            post_panel(client, night, f"{day:%Y-%m-%d}T23:30")
            post_panel(client, dawn, f"{day:%Y-%m-%d}T00:30")
        # Both results count on the clinic's day, whatever the server's date was then.
        for patient in (night, dawn):
            lft = MonitoringItem.objects.get(course__patient=patient, requirement__code="lft")
            assert (lft.last_done, lft.due_date) == (day, day + timedelta(days=14))
        # Shown on the clinic's clock, with the zone named (the DST change is visible).
        page = client.get(reverse("patient_detail", args=[night.pk])).content.decode()
        assert f"{day.day} {day:%b %Y} 23:30 {night_abbr}" in page and f"(times in {zone})" in page
        page = client.get(reverse("patient_detail", args=[dawn.pk])).content.decode()
        assert f"{day.day} {day:%b %Y} 00:30 {dawn_abbr}" in page

    # Morning and evening of the day the items fall due and of the next: at some of these
    # instants the server is on another date than the clinic.
    for local_day, hour in ((day + timedelta(days=14), 7), (day + timedelta(days=14), 20),
                            (day + timedelta(days=15), 7), (day + timedelta(days=15), 20)):
        with travel(at(zone, local_day, hour, 30)):
            client.force_login(nurse)  # a fresh session: days pass between these instants
            body = client.get(reverse("home")).content.decode()
            on_worklist = worklist_overdue(body)
            assert on_worklist == digest_overdue(digest_now(clinic_a)), (local_day, hour)
            assert f"{local_day:%A} {local_day.day} {local_day:%B %Y}" in body  # the heading is the clinic's date
            assert ("LATE", LFT, (local_day - (late.courses.get().start_date + timedelta(days=14))).days) in on_worklist
            overdue_now = local_day >= day + timedelta(days=15)
            assert (("NIGHT", LFT, 1) in on_worklist) is overdue_now, (local_day, hour)
            assert (("DAWN", LFT, 1) in on_worklist) is overdue_now, (local_day, hour)
            if not overdue_now:
                due = body.split('data-testid="due-soon"')[1].split("</table>")[0]
                assert "NIGHT" in due and "due today" in due


@pytest.fixture
def plan_patient(clinic_a, prescriber, nurse):
    def make(zone: str, first_day: date):
        clinic_a.timezone = zone
        clinic_a.save()
        clinic_ranges(clinic_a)
        patient = started(clinic_a, prescriber, mrn="PLAN-1", start=first_day - timedelta(days=60))
        rash = clinical_event_record(patient=patient, recorded_by=nurse, kind="rash", grade=3, rash_bsa_percent=45,
                                     onset_date=first_day - timedelta(days=40), resolved_date=first_day - timedelta(days=10))
        dose_change_record(course=patient.courses.get(), to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600),
                           effective_date=first_day - timedelta(days=40), reason=Reason.TOXICITY, toxicity="Rash",
                           triggering_event=rash, ordered_by=prescriber, recorded_by=prescriber)
        patient.rash = rash
        return patient
    return make


@pytest.mark.parametrize(("zone", "day", "dawn_abbr", "night_abbr"), CLINICS)
def test_a_desensitization_day_is_missed_only_when_the_clinic_day_is_over(
        client, plan_patient, prescriber, nurse, zone, day, dawn_abbr, night_abbr):
    from patients.desensitization import plan_start
    from protocols.models import DesensitizationProtocol

    patient = plan_patient(zone, day)
    seegobin = DesensitizationProtocol.objects.get(clinic__isnull=True, name__startswith="Seegobin")
    with travel(at(zone, day, 8)):
        plan = plan_start(patient=patient, protocol=seegobin, rash_event=patient.rash, start=day, user=prescriber)
    plan_url = reverse("plan_detail", args=[patient.pk, plan.pk])

    with travel(at(zone, day, 23, 30)):  # day 1 not recorded yet, but the clinic's day is not over
        client.force_login(nurse)
        assert services.plans_flag_missed(now=timezone.now()) == 0
        assert 'data-testid="plan-status">Running<' in client.get(plan_url).content.decode()
        plans = client.get(reverse("home")).content.decode().split('data-testid="plans"')[1]
        assert "running" in plans.split("</table>")[0] and "day missed" not in plans.split("</table>")[0]

    with travel(at(zone, day + timedelta(days=1), 0, 30)):  # now it is
        client.force_login(nurse)
        plans = client.get(reverse("home")).content.decode().split('data-testid="plans"')[1]
        assert "day missed" in plans.split("</table>")[0]
        assert services.plans_flag_missed(now=timezone.now()) == 1
        page = client.get(plan_url).content.decode()
        assert 'data-testid="plan-status">Paused' in page and f"{day:%d %b}) was not recorded" in page


def test_a_nurse_in_clinics_of_two_zones_sees_each_clinic_on_its_own_date_with_a_clinic_column(
        client, clinic_a, clinic_b, nurse, prescriber, outsider_prescriber, django_capture_on_commit_callbacks):
    clinic_a.timezone, clinic_b.timezone = "Pacific/Auckland", "Pacific/Honolulu"
    clinic_a.save()
    clinic_b.save()
    MembershipFactory(user=nurse, clinic=clinic_b, role="nurse")
    now = at("Pacific/Auckland", date(2026, 4, 6), 7, 30)  # 5 April 09:30 in Honolulu
    with travel(now):
        # Both LFTs fell due on 5 April (day 14): overdue from 6 April, each clinic's 6 April.
        with django_capture_on_commit_callbacks(execute=True):
            started(clinic_a, prescriber, mrn="AKL-1", start=date(2026, 3, 22))
            started(clinic_b, outsider_prescriber, mrn="HNL-1", start=date(2026, 3, 22))
        client.force_login(nurse)
        body = client.get(reverse("home")).content.decode()
    overdue = body.split('data-testid="overdue"')[1].split("</table>")[0]
    due_soon = body.split('data-testid="due-soon"')[1].split("</table>")[0]
    assert '<th scope="col">Clinic</th>' in overdue
    assert "AKL-1" in overdue and "<td>Clinic A</td>" in overdue and "HNL-1" not in overdue
    assert "HNL-1" in due_soon and "<td>Clinic B</td>" in due_soon and "due today" in due_soon
    assert "Clinic A: Monday 6 April 2026 · Clinic B: Sunday 5 April 2026" in body


def test_a_nurse_of_one_clinic_has_no_clinic_column(client, clinic_a, nurse, prescriber, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        started(clinic_a, prescriber, mrn="ONE-1", start=timezone.localdate() - timedelta(days=30))
    client.force_login(nurse)
    body = client.get(reverse("home")).content.decode()
    assert "ONE-1" in body and '<th scope="col">Clinic</th>' not in body


@pytest.mark.parametrize(("soon_days", "listed", "badge"), [(10, True, "due soon"), (2, False, "ok")])
def test_the_worklist_uses_the_clinic_due_soon_setting_like_the_patient_page(
        client, clinic_a, nurse, prescriber, soon_days, listed, badge, django_capture_on_commit_callbacks):
    ClinicSettings.objects.update_or_create(clinic=clinic_a, defaults={"due_soon_days": soon_days})
    with travel(at("Europe/London", date(2026, 6, 1), 9)):
        # Started 5 days ago: the LFT falls due on day 14, in 9 days.
        with django_capture_on_commit_callbacks(execute=True):
            patient = started(clinic_a, prescriber, mrn="SOON-1", start=date(2026, 5, 27))
        client.force_login(nurse)
        body = client.get(reverse("home")).content.decode()
        page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert f"Due in the next {soon_days} days" in body
    assert ("SOON-1" in body.split('id="due-h"')[1].split("</section>")[0]) is listed
    status = page.split('data-testid="monitoring-status"')[1].split("Liver panel")[1].split("</tr>")[0]
    assert f">{badge}</span>" in status


def test_the_grade_3_section_filters_by_mrn_before_it_is_cut_to_200_rows(client, clinic_a, nurse, prescriber):
    clinic_ranges(clinic_a)
    with travel(at("Europe/London", date(2026, 6, 1), 9)):
        wanted = started(clinic_a, prescriber, mrn="WANTED-1", start=date(2026, 4, 1))
        noisy = started(clinic_a, prescriber, mrn="NOISY-1", start=date(2026, 4, 1))
        first = timezone.now() - timedelta(days=10)
        lab_panel_record(patient=wanted, collected_at=first, entered_by=nurse, entries=[LabEntry("alt", "260")])
        lab_panel_record(patient=noisy, collected_at=first, entered_by=nurse, entries=[LabEntry("alt", "260")])
        template = LabResult.objects.get(patient=noisy)
        fields = {f.attname: getattr(template, f.attname) for f in LabResult._meta.concrete_fields if not f.primary_key}
        # 200 newer grade 3 results of another patient (copies: derived columns included).
        LabResult.objects.bulk_create(
            [LabResult(**{**fields, "collected_at": first + timedelta(minutes=i + 1)}) for i in range(200)])
        client.force_login(nurse)
        body = client.post(reverse("home"), {"mrn": "WANTED"}, follow=True).content.decode()
        everyone = client.get(reverse("home") + "?clear_mrn=1").content.decode()
    grades = body.split('data-testid="high-grades"')[1].split("</table>")[0]
    assert "WANTED-1" in grades and "NOISY-1" not in grades
    assert 'data-testid="count-grades">202<' in everyone  # the exact count (issue #14; 2 + 200 copies): the page shows 50


# reliability.md F14: the beat's scan across a DST change and across midnight, in each
# clinic's zone: one digest per recipient per clinic day, none skipped, none doubled;
# times stored in UTC. The digest time is put in the hour the change skips or repeats.
DST_SCANS = [
    ("Europe/London", date(2026, 3, 29), time(1, 30)),    # 01:00 → 02:00: 01:30 does not exist
    ("Europe/London", date(2026, 10, 25), time(1, 30)),   # 02:00 → 01:00: 01:30 happens twice
    ("Pacific/Auckland", date(2026, 4, 5), time(2, 30)),  # 03:00 → 02:00: 02:30 happens twice
    ("Pacific/Auckland", date(2026, 9, 27), time(2, 30)),  # 02:00 → 03:00: 02:30 does not exist
    ("Pacific/Honolulu", date(2026, 3, 8), time(0, 0)),   # no DST; midnight itself (the US change day)
]


@pytest.mark.parametrize(("zone", "change_day", "digest_at"), DST_SCANS,
                         ids=[f"{z.split('/')[1]}-{d:%m%d}" for z, d, _ in DST_SCANS])
def test_f14_one_digest_per_clinic_day_across_a_dst_change(db, prescriber, zone, change_day, digest_at):
    clinic = ClinicFactory(name=f"Clinic {zone}", code=zone.split("/")[1].lower(), timezone=zone)
    clinic_ranges(clinic)
    MembershipFactory(user=prescriber, clinic=clinic, role="prescriber")
    clerk = MembershipFactory(user__username="clerk", clinic=clinic, role="staff").user
    first, last = change_day - timedelta(days=2), change_day + timedelta(days=2)
    started(clinic, prescriber, mrn="F14", start=first - timedelta(days=60))  # no tests since: overdue every day
    ClinicSettings.ensure(clinic.pk)
    ClinicSettings.objects.filter(clinic=clinic).update(digest_time=digest_at)
    services.schedule_sweep(full=True, today=first)
    tick = datetime.combine(first, time(0), tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(zoneinfo.ZoneInfo("UTC"))
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(
        zoneinfo.ZoneInfo("UTC"))
    while tick < end:  # the beat's tick, every 15 minutes of real (UTC) time
        with travel(tick):
            services.digests_plan(now=tick)
        tick += timedelta(minutes=15)
    days = list(Digest.objects.filter(clinic=clinic, recipient=clerk).order_by("for_date").values_list("for_date", flat=True))
    expected = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert days == expected  # none skipped, none doubled
    for digest in Digest.objects.filter(clinic=clinic):
        assert digest.created_at.utcoffset() == timedelta(0)  # stored in UTC
        local = digest.created_at.astimezone(zoneinfo.ZoneInfo(zone))
        assert local.date() == digest.for_date and local.time() >= digest_at  # planned on its clinic day, not before the time
