"""Load a demo cohort: two clinics, demo users, about 40 patients at different points
of treatment. Safe to run again: existing clinics, users and patients are left alone
(passwords are reset to the demo password so the printed credentials always work).

Lives in `monitoring`, the app at the top of the dependency chain, because it builds
data for all of them through their services.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Clinic, Membership, Role, User
from monitoring import program
from monitoring.models import ClinicSettings, Requirement, RequirementVersion
from monitoring.rules import CHECK_IN
from monitoring.services import schedule_sweep
from patients import services
from patients.desensitization import plan_start
from patients.models import ClinicalEvent, DesensitizationPlan, Patient, ReferenceRange, TreatmentCourse
from patients.recommendations import recommendation_accept
from protocols.dosing import Dose, DoseState, Reason
from protocols.models import DesensitizationProtocol

DEMO_PASSWORD = "alectinib-demo-2026"

CLINICS = [
    ("North Thoracic Oncology", "north", "Europe/London"),
    ("South Lung Cancer Clinic", "south", "Europe/London"),
]

USERS = [
    # username, first, last, [(clinic code, role)], is_staff (Django admin)
    ("nurse.north", "Nora", "Hale", [("north", Role.NURSE)], False),
    ("prescriber.north", "Dr Peter", "Osei", [("north", Role.PRESCRIBER)], False),
    ("staff.north", "Sam", "Reid", [("north", Role.STAFF)], False),
    ("admin.north", "Ada", "Lind", [("north", Role.ADMIN)], True),
    ("nurse.south", "Sofia", "Marsh", [("south", Role.NURSE)], False),
    ("prescriber.south", "Dr Priya", "Nair", [("south", Role.PRESCRIBER)], False),
    ("staff.south", "Tom", "Kerr", [("south", Role.STAFF)], False),
    ("admin.south", "Ben", "Ito", [("south", Role.ADMIN)], True),
    ("nurse.both", "Nia", "Bello", [("north", Role.NURSE), ("south", Role.NURSE)], False),
]

RANGES = {  # clinic default reference ranges (canonical units)
    "alt": ("40", None), "ast": ("40", None), "total_bilirubin": ("1.2", None), "creatinine": ("1.1", None),
    "cpk": ("170", None), "hemoglobin": (None, "12.0"), "heart_rate": (None, "60"),
}

FIRST = ["Amara", "Bilal", "Chen", "Dana", "Elif", "Farah", "Gwen", "Hugo", "Ines", "Jonas", "Kai", "Lena",
         "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Adeyemi", "Brooks", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova",
        "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Patel", "Quist", "Rossi", "Sato", "Tanaka"]

# (scenario, days since start) — spread over the points of treatment a clinic sees.
SCENARIOS = [
    ("not_started", None), ("new", 3), ("new", 9), ("early", 20), ("pending_alt", 33), ("early", 47), ("early", 61),
    ("early_overdue", 40), ("early_overdue", 75), ("maintenance", 120), ("maintenance", 200), ("maintenance", 380),
    ("maintenance_overdue", 150), ("alt_withheld", 50), ("reduced_450", 140), ("reduced_300", 300),
    ("cpk_withheld", 22), ("bradycardia", 90), ("discontinued_ild", 70), ("rash_resolved", 60),
]


PHONES = {"north": "+44 20 7946 0018", "south": "+44 117 496 0027"}


class Command(BaseCommand):
    help = "Load the demo cohort (idempotent) and print the demo credentials."

    def handle(self, *args, **options):
        today = timezone.localdate()
        with transaction.atomic():
            clinics = self._clinics()
            users = self._users(clinics)
        created = 0
        for clinic_index, code in enumerate(["north", "south"]):
            clinic = clinics[code]
            rng = random.Random(f"demo-{code}")
            for i, (scenario, days) in enumerate(SCENARIOS):
                mrn = f"{code[0].upper()}{1000 + i}"
                if Patient.objects.filter(clinic=clinic, mrn=mrn).exists():
                    continue
                with transaction.atomic():
                    self._patient(clinic, users[code], mrn, i + clinic_index * 7, scenario, days, today, rng)
                created += 1
        self._clinic_policy(clinics["north"], users["north"][Role.ADMIN])
        self._running_plan(clinics["south"], users["south"][Role.PRESCRIBER])
        for code in ("north", "south"):
            self._program(clinics[code], users[code][Role.NURSE], today)
        swept = schedule_sweep(full=True)
        self.stdout.write(f"Monitoring due dates computed for {swept} patients.")
        self.stdout.write(self.style.SUCCESS(f"Demo cohort ready ({created} patients added, {Patient.objects.count()} in all)."))
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for username, *_ in USERS:
            u = User.objects.get(username=username)
            roles = ", ".join(f"{m.get_role_display()} at {m.clinic.code}" for m in u.memberships.select_related("clinic"))
            self.stdout.write(f"  {username:<18} {roles}")

    def _running_plan(self, clinic, prescriber):
        """South's rash patient is re-challenged with Seegobin 2020 from today; North's stays
        eligible, for a nurse to try."""
        patient = Patient.objects.filter(clinic=clinic, events__kind="rash").first()
        if patient is None or DesensitizationPlan.objects.filter(course__patient=patient).exists():
            return
        rash = patient.events.filter(kind="rash").first()
        seegobin = DesensitizationProtocol.objects.get(clinic__isnull=True, name__startswith="Seegobin")
        plan_start(patient=patient, protocol=seegobin, rash_event=rash, start=timezone.localdate(), user=prescriber)

    def _program(self, clinic, nurse, today):
        """The oral therapy program (issue #16), idempotent: the clinic's phone number;
        education for every course but the newest and the first maintenance one; a
        prescription and a 28-day dispensing at the start and every 28 days (two patients
        pick up late), except that
        one patient's last prescription is not filled and another's supply runs out this
        week; check-ins on day 7 and 14 (the seventh patient reports new breathlessness, which
        goes to a prescriber as 'investigate for ILD'), then every 4 weeks, one in four
        patients missing the last. The default check-in schedule applies
        from the first demo course, so the demo shows check-ins due and overdue."""
        ClinicSettings.objects.update_or_create(clinic=clinic, defaults={"patient_phone": PHONES[clinic.code]})
        RequirementVersion.objects.filter(requirement__code=CHECK_IN, requirement__clinic__isnull=True,
                                          effective_from__gt=date(2000, 1, 1)).update(effective_from=date(2000, 1, 1))
        for i, course in enumerate(TreatmentCourse.objects.on_treatment().filter(patient__clinic=clinic)
                                   .select_related("patient__clinic").order_by("patient__mrn")):
            if course.dispensings.exists() or course.check_ins.exists():
                continue
            days = (today - course.start_date).days
            if days > 3 and i != 9:
                program.education_record(course=course, user=nurse, given_on=course.start_date, with_whom="the patient",
                                         topics=[t.code for t in program.education_topics(course)])
            # Most refill every 28 days; two pick up late, so the adherence bands differ.
            fills = list(range(0, days + 1, {8: 34, 10: 42}.get(i, 28)))
            for n, day in enumerate(fills):
                when = course.start_date + timedelta(days=day)
                program.prescription_record(course=course, user=nurse, written_on=when, capsules=224)
                if i == 5 and n == len(fills) - 1 and day > 0:
                    continue  # the pharmacy has not filled the last prescription
                capsules = 176 if i == 7 and n == len(fills) - 1 else 224  # a short fill: runs out soon
                program.dispensing_record(course=course, user=nurse, dispensed_on=when, capsules=capsules)
            schedule = [7, 14, *range(42, days + 1, 28)]
            if i % 4 == 3:
                schedule = schedule[:-1]  # the last check-in not done: overdue on the worklist
            for day in schedule:
                if day <= days:
                    worse = i == 6 and day == 14
                    program.check_in_record(course=course, user=nurse, entry=program.CheckInEntry(
                        done_on=course.start_date + timedelta(days=day), mode="phone" if day == 7 else "visit",
                        missed_doses=1 if i % 3 == 0 else 0, missed_reason="forgot the evening dose" if i % 3 == 0 else "",
                        symptoms={"dyspnea": 2} if worse else ({"fatigue": 1} if i % 2 else {}),
                        respiratory_new_or_worse=worse, capsules_on_hand=None,
                        plan="Reviewed side effects and the missed-dose rule." if day == 7 else "Continue; next call in 4 weeks."))

    def _clinic_policy(self, clinic, admin):
        """North sets vitals monthly (clinic policy: the label gives no interval, §4.4)."""
        if Requirement.objects.filter(clinic=clinic, code="vitals").exists():
            return
        default = Requirement.objects.get(clinic__isnull=True, code="vitals")
        own = Requirement.objects.create(clinic=clinic, code="vitals", label=default.label, analytes=default.analytes,
                                         source=default.source + " — North: monthly", label_interval=False)
        RequirementVersion.objects.create(requirement=own, schedule={"phases": [{"months": None, "every_months": 1}]},
                                          effective_from=date(2000, 1, 1), created_by=admin, note="Clinic policy")

    # --- people ------------------------------------------------------------------------

    def _clinics(self) -> dict[str, Clinic]:
        clinics = {}
        for name, code, tz in CLINICS:
            clinic, _ = Clinic.objects.get_or_create(code=code, defaults={"name": name, "timezone": tz})
            clinics[code] = clinic
            for analyte, (uln, lln) in RANGES.items():
                ReferenceRange.objects.get_or_create(
                    clinic=clinic, analyte=analyte,
                    defaults={"uln": Decimal(uln) if uln else None, "lln": Decimal(lln) if lln else None},
                )
        return clinics

    def _users(self, clinics: dict[str, Clinic]) -> dict[str, dict[str, User]]:
        by_clinic: dict[str, dict[str, User]] = {code: {} for code in clinics}
        for username, first, last, memberships, is_staff in USERS:
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@example.org", "is_staff": is_staff},
            )
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            for code, role in memberships:
                Membership.objects.get_or_create(user=user, clinic=clinics[code], role=role)
                by_clinic[code].setdefault(role, user)
            if is_staff:
                user.user_permissions.add(*Permission.objects.filter(
                    content_type__app_label__in=["patients", "monitoring", "protocols"]
                ).exclude(codename__startswith="delete_"))
        return by_clinic

    # --- patients ----------------------------------------------------------------------

    def _patient(self, clinic, people, mrn, seed, scenario, days, today, rng):
        nurse, prescriber = people[Role.NURSE], people[Role.PRESCRIBER]
        first, last = FIRST[seed % len(FIRST)], LAST[(seed * 7 + 3) % len(LAST)]
        patient = Patient.objects.create(
            clinic=clinic, mrn=mrn, first_name=first, last_name=last,
            date_of_birth=date(1950 + seed % 30, 1 + seed % 12, 1 + seed % 27),
            sex="F" if seed % 2 else "M", alk_test_method=["FISH", "IHC", "NGS"][seed % 3],
            alk_test_result="positive", alk_test_date=today - timedelta(days=(days or 0) + 30),
            diagnosis_date=today - timedelta(days=(days or 0) + 40), cns_metastases_at_baseline=seed % 4 == 0,
            notes="Demo patient." if seed % 5 else "Prefers morning phone calls. <script>alert('not run')</script>",
            primary_nurse=people[Role.NURSE] if seed % 3 else User.objects.get(username="nurse.both"),
        )
        start = today - timedelta(days=days or 0)
        baseline_at = start - timedelta(days=5)
        self._panel(patient, nurse, baseline_at, rng, baseline=True, full=True)
        if scenario == "not_started":
            return patient
        services.course_start(patient=patient, start_date=start, ordered_by=prescriber, recorded_by=prescriber)
        course = patient.courses.get()

        story = _Story(self, patient, course, nurse, prescriber, start, days)
        steps = getattr(story, scenario, dict)()

        # Routine labs every 14 days in the first 3 months, monthly after (reference §5);
        # the *_overdue scenarios stopped coming some weeks ago; nothing after discontinuation.
        stop = {"early_overdue": days - 22, "maintenance_overdue": days - 45, "discontinued_ild": 40}.get(scenario, days)
        routine = []
        day = 14
        while day <= stop:
            routine.append(day)
            day += 14 if day < 90 else 30
        for day in sorted(set(routine) | set(steps)):
            if day in routine and (day not in steps or scenario != "discontinued_ild"):
                self._panel(patient, nurse, start + timedelta(days=day), rng, cpk=day <= 28)
            for step in steps.get(day, []):
                step()
        return patient

    def _panel(self, patient, nurse, when, rng, *, baseline=False, full=False, cpk=False):
        if isinstance(when, date) and not isinstance(when, datetime):
            when = timezone.make_aware(datetime.combine(when, time(9, rng.randint(0, 50))))
        entries = [
            services.LabEntry("alt", str(rng.randint(14, 38))),
            services.LabEntry("ast", str(rng.randint(14, 36))),
            services.LabEntry("total_bilirubin", f"{rng.uniform(0.3, 1.0):.1f}"),
        ]
        if full or cpk:
            entries.append(services.LabEntry("cpk", str(rng.randint(60, 165))))
        entries += [  # vitals at every visit
            services.LabEntry("heart_rate", str(rng.randint(62, 88))),
            services.LabEntry("systolic_bp", str(rng.randint(110, 140))),
            services.LabEntry("diastolic_bp", str(rng.randint(65, 88))),
        ]
        if full:
            entries += [
                services.LabEntry("creatinine", f"{rng.uniform(0.6, 1.05):.2f}"),
                services.LabEntry("hemoglobin", f"{rng.uniform(11.5, 14.5):.1f}"),
            ]
        return services.lab_panel_record(patient=patient, collected_at=when, entries=entries, entered_by=nurse,
                                         is_baseline=baseline, now=when)

    def _single(self, patient, nurse, when, analyte, value, **others):
        if isinstance(when, date) and not isinstance(when, datetime):
            when = timezone.make_aware(datetime.combine(when, time(11)))
        entries = [services.LabEntry(analyte, value)] + [services.LabEntry(k, v) for k, v in others.items()]
        rows = services.lab_panel_record(patient=patient, collected_at=when, entries=entries, entered_by=nurse, now=when)
        return rows[0]


class _Story:
    """What happens to one demo patient, by treatment day: one method per scenario, each
    returning {day: [step, ...]}; the steps go through the services, as the pages do."""

    def __init__(self, command, patient, course, nurse, prescriber, start, days):
        self.command, self.patient, self.course = command, patient, course
        self.nurse, self.prescriber, self.start, self.days = nurse, prescriber, start, days

    def on(self, day: int) -> date:
        return self.start + timedelta(days=day)

    def accept(self, day: int) -> None:
        """The prescriber accepts the engine's recommendation (the normal workflow)."""
        rec = self.course.recommendations.filter(status="pending").first()
        assert rec is not None, f"{self.patient.mrn}: expected a recommendation"
        recommendation_accept(recommendation=rec, user=self.prescriber, effective_date=self.on(day))

    def lab(self, day: int, analyte: str, value: str, **others) -> None:
        when = timezone.make_aware(datetime.combine(self.on(day), time(11)))
        self.command._single(self.patient, self.nurse, when, analyte, value, **others)

    def lab_then_accept(self, day: int, analyte: str, value: str, **others) -> list:
        return [lambda: self.lab(day, analyte, value, **others), lambda: self.accept(day)]

    def alt_withheld(self) -> dict:
        return {self.days - 4: self.lab_then_accept(self.days - 4, "alt", "250", ast="180")}

    def pending_alt(self) -> dict:
        return {self.days - 1: [lambda: self.lab(self.days - 1, "alt", "285", ast="130", total_bilirubin="0.9")]}

    def reduced_450(self) -> dict:
        return {35: self.lab_then_accept(35, "alt", "236", ast="150"), 44: self.lab_then_accept(44, "alt", "92")}

    def reduced_300(self) -> dict:
        return {**self.reduced_450(), 160: self.lab_then_accept(160, "cpk", "1900"),
                172: self.lab_then_accept(172, "cpk", "300")}

    def cpk_withheld(self) -> dict:
        return {self.days - 2: self.lab_then_accept(self.days - 2, "cpk", "1020")}

    def bradycardia(self) -> dict:
        def brady():
            self.course.medications.create(name="Bisoprolol 5 mg", category="beta_blocker",
                                           start_date=self.start - timedelta(days=100))
            self.lab(self.days - 6, "heart_rate", "52")
            services.clinical_event_record(
                patient=self.patient, recorded_by=self.nurse, kind=ClinicalEvent.Kind.BRADYCARDIA,
                onset_date=self.on(self.days - 6), grade=1, bradycardia=ClinicalEvent.Bradycardia.ASYMPTOMATIC,
                notes="Asymptomatic; no dose change needed (reference §4.4 B0).")
        return {self.days - 6: [brady]}

    def discontinued_ild(self) -> dict:
        def ild():
            services.clinical_event_record(
                patient=self.patient, recorded_by=self.prescriber, kind=ClinicalEvent.Kind.ILD, onset_date=self.on(40),
                grade=2, ild_causality=ClinicalEvent.Causality.TREATMENT_RELATED)
            self.accept(40)
        return {40: [ild]}

    def rash_resolved(self) -> dict:
        def rash():
            onset = self.on(12)
            event = services.clinical_event_record(
                patient=self.patient, recorded_by=self.nurse, kind=ClinicalEvent.Kind.RASH, onset_date=onset,
                resolved_date=onset + timedelta(days=25), grade=3, rash_bsa_percent=45,
                notes="Maculo-papular; treated with prednisolone.")
            # Rash has no label dose rule: the prescriber's own decision.
            services.dose_change_record(
                course=self.course, to=Dose(DoseState.WITHHELD, resume_dose_mg_bid=600), effective_date=onset,
                reason=Reason.TOXICITY, toxicity="Rash maculo-papular", toxicity_grade=3, triggering_event=event,
                ordered_by=self.prescriber, recorded_by=self.prescriber,
                note="Hold until the rash resolves; consider re-challenge.")
        return {12: [rash]}
