"""python manage.py generate_cohort [--clinics 1000,10000,90000] [--results 20] [--seed 42]

A large synthetic cohort for the soak and the benchmark, written set-based in SQL
(PostgreSQL only, one INSERT … SELECT per table) with a fixed seed, so that two runs
with the same options produce the same data. One clinic per size in --clinics (its
code is gen-<size>), a nurse, a prescriber and a staff member per clinic (password:
--password), each patient on 600 mg twice daily with --results liver results (ALT, AST,
bilirubin in turn, mostly normal, some grade ≥ 3) and a monitoring item per scheduled
requirement with a due date spread around today, so that about half are overdue.

Random values are drawn in the order of the rows' ids (an ordered subquery), so the
same seed gives the same values whatever the physical order of the table.

Refuses to run twice into the same database (clinic codes are unique); use a scratch
database. Not for production: the rows bypass the services (no history, no engine).
"""

from __future__ import annotations

import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

PATIENTS = """
INSERT INTO patients_patient (clinic_id, mrn, first_name, last_name, date_of_birth, sex, alk_test_method,
    alk_test_date, alk_test_result, diagnosis_date, cns_metastases_at_baseline, notes, primary_nurse_id,
    archived_at, created_at)
SELECT %(clinic)s, 'G' || lpad(n::text, 7, '0'), 'Pat' || n, 'Gen' || (n %% 9973),
       date '1940-01-01' + (random() * 20000)::int, CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END, 'FISH',
       NULL, 'positive', NULL, false, '', %(nurse)s, NULL, now()
FROM generate_series(1, %(size)s) AS n
"""

COURSES = """
INSERT INTO patients_treatmentcourse (patient_id, drug, regime, start_date, end_date, end_reason, dose_state,
    dose_mg_bid, resume_dose_mg_bid, recovery_condition, recheck_every_days, created_at)
SELECT s.id, 'alectinib', 'us', current_date - (30 + (random() * 700)::int), NULL, '', 'on_drug', 600, NULL,
       '[]'::jsonb, NULL, now()
FROM (SELECT p.id FROM patients_patient p WHERE p.clinic_id = %(clinic)s ORDER BY p.id) s
"""

DOSE_EVENTS = """
INSERT INTO patients_dosechangeevent (course_id, from_state, from_dose_mg_bid, to_state, to_dose_mg_bid,
    resume_dose_mg_bid, recovery_condition, recheck_every_days, effective_date, reason, toxicity, toxicity_grade,
    triggering_lab_id, triggering_event_id, note, ordered_by_id, recorded_by_id, recorded_at)
SELECT c.id, 'not_started', NULL, 'on_drug', 600, NULL, '[]'::jsonb, NULL, c.start_date, 'start', '', NULL,
       NULL, NULL, '', %(prescriber)s, %(prescriber)s, now()
FROM patients_treatmentcourse c JOIN patients_patient p ON p.id = c.patient_id WHERE p.clinic_id = %(clinic)s
"""

# ALT/AST U/L (ULN 40) and total bilirubin mg/dL (ULN 1.2), one analyte per result in turn,
# one result every 14 days back from today. About 3 % are above 5× ULN (grade 3).
LABS = """
WITH raw AS (
    SELECT s.patient_id, s.k,
           (ARRAY['alt', 'ast', 'total_bilirubin'])[1 + (s.k %% 3)] AS analyte,
           CASE WHEN random() < 0.03 THEN 5 + random() * 10 ELSE random() * 2.5 END AS x
    FROM (SELECT p.id AS patient_id, k FROM patients_patient p CROSS JOIN generate_series(1, %(results)s) AS k
          WHERE p.clinic_id = %(clinic)s ORDER BY p.id, k) s
), valued AS (
    SELECT patient_id, k, analyte,
           CASE WHEN analyte = 'total_bilirubin' THEN 1.2 ELSE 40 END AS uln,
           round((x * CASE WHEN analyte = 'total_bilirubin' THEN 1.2 ELSE 40 END)::numeric, 2) AS value
    FROM raw
)
INSERT INTO patients_labresult (patient_id, analyte, value, unit, reported_value, reported_unit, uln, lln,
    reported_uln, reported_lln, collected_at, source, is_baseline, grade, grade_basis, grading_version, x_uln,
    entered_by_id, entered_at)
SELECT patient_id, analyte, value, CASE WHEN analyte = 'total_bilirubin' THEN 'mg/dL' ELSE 'U/L' END, value,
       CASE WHEN analyte = 'total_bilirubin' THEN 'mg/dL' ELSE 'U/L' END, uln, NULL, uln, NULL,
       now() - make_interval(days => 14 * k, hours => k %% 24), 'import', false,
       CASE WHEN analyte = 'total_bilirubin' THEN
                CASE WHEN value > 10 * uln THEN 4 WHEN value > 3 * uln THEN 3 WHEN value > 1.5 * uln THEN 2
                     WHEN value > uln THEN 1 ELSE 0 END
            ELSE CASE WHEN value > 20 * uln THEN 4 WHEN value > 5 * uln THEN 3 WHEN value > 3 * uln THEN 2
                      WHEN value > uln THEN 1 ELSE 0 END END,
       'generated', 'CTCAE v5.0', ceil(value / uln * 1000) / 1000, %(nurse)s, now()
FROM valued
"""

# One item per course and scheduled requirement, due within ±30 days of today: about half
# are past their due date (overdue_from = due + 1, grace 0).
ITEMS = """
INSERT INTO monitoring_monitoringitem (course_id, clinic_id, requirement_id, due_date, overdue_from, last_done,
    notice, snoozed_until, flagged_at, computed_at)
SELECT d.course_id, %(clinic)s, d.requirement_id, d.due, d.due + 1, d.due - 14, '', NULL,
       CASE WHEN d.due + 1 <= current_date THEN now() END, now()
FROM (
    SELECT o.course_id, o.requirement_id, current_date + (random() * 60)::int - 30 AS due
    FROM (SELECT c.id AS course_id, r.id AS requirement_id
          FROM patients_treatmentcourse c
          JOIN patients_patient p ON p.id = c.patient_id AND p.clinic_id = %(clinic)s
          CROSS JOIN monitoring_requirement r
          WHERE r.clinic_id IS NULL AND r.code IN ('lft', 'cpk') AND r.active
          ORDER BY c.id, r.id) o
) d
"""

# The oral therapy program's stored state (issue #16), one row per course on treatment:
# about 5 % without recorded education, 2 % with a prescription not filled, and run-out
# dates spread over the next six months (a few days past for some).
PROGRAM = """
INSERT INTO patients_programstatus (course_id, clinic_id, on_hand, runs_out_on, unfilled_since, pdc, education,
    taught_dose_mg_bid, computed_on)
SELECT c.id, %(clinic)s, (random() * 200)::int, current_date + (random() * 185)::int - 5,
       CASE WHEN random() < 0.02 THEN current_date - (random() * 20)::int END, round((0.5 + random() * 0.5)::numeric, 4),
       CASE WHEN random() < 0.05 THEN 'missing' ELSE '' END, c.dose_mg_bid, current_date
FROM patients_treatmentcourse c
JOIN patients_patient p ON p.id = c.patient_id AND p.clinic_id = %(clinic)s
WHERE c.end_date IS NULL AND c.dose_state NOT IN ('discontinued', 'not_started')
ORDER BY c.id
"""


class Command(BaseCommand):
    help = "Generate a large synthetic cohort (PostgreSQL; set-based SQL with a fixed seed)."

    def add_arguments(self, parser):
        parser.add_argument("--clinics", default="1000,10000,90000",
                            help="patients per clinic, comma-separated (default 1000,10000,90000)")
        parser.add_argument("--results", type=int, default=20, help="liver results per patient (default 20)")
        parser.add_argument("--seed", type=float, default=0.42, help="random seed in [-1, 1] (default 0.42)")
        parser.add_argument("--password", default="generated-cohort-password",
                            help="password of the generated users")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("generate_cohort needs PostgreSQL (DATABASE_URL=postgres://…).")
        try:
            sizes = [int(s) for s in options["clinics"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--clinics takes whole numbers, e.g. 1000,10000,90000") from None
        if not sizes or min(sizes) < 1 or not 0 <= options["results"] <= 200 or not -1 <= options["seed"] <= 1:
            raise CommandError("--clinics ≥ 1 each, --results 0–200, --seed between -1 and 1.")
        password = make_password(options["password"])
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT setseed(%s)", [options["seed"]])
            for size in sizes:
                code = f"gen-{size}"
                cur.execute("SELECT 1 FROM accounts_clinic WHERE code = %s", [code])
                if cur.fetchone():
                    raise CommandError(f"clinic {code} exists already: generate into a scratch database.")
                cur.execute("INSERT INTO accounts_clinic (name, code, timezone, capsule_strengths) "
                            "VALUES (%s, %s, 'Europe/London', '[150]'::jsonb) RETURNING id", [f"Generated {size}", code])
                clinic = cur.fetchone()[0]
                users = {}
                for role in ("nurse", "prescriber", "staff"):
                    cur.execute(
                        "INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, "
                        "is_staff, is_active, date_joined) VALUES (%s, false, %s, %s, 'Generated', %s, false, true, "
                        "now()) RETURNING id",
                        [password, f"{role}.{code}", role.title(), f"{role}.{code}@example.org"])
                    users[role] = cur.fetchone()[0]
                    cur.execute("INSERT INTO accounts_membership (user_id, clinic_id, role) VALUES (%s, %s, %s)",
                                [users[role], clinic, role])
                for analyte, uln, lln in (("alt", 40, None), ("ast", 40, None), ("total_bilirubin", 1.2, None),
                                          ("creatinine", 1.1, None), ("cpk", 170, None), ("hemoglobin", None, 12),
                                          ("heart_rate", None, 60)):
                    cur.execute("INSERT INTO patients_referencerange (clinic_id, analyte, uln, lln) "
                                "VALUES (%s, %s, %s, %s)", [clinic, analyte, uln, lln])
                params = {"clinic": clinic, "size": size, "nurse": users["nurse"],
                          "prescriber": users["prescriber"], "results": options["results"]}
                for sql in (PATIENTS, COURSES, DOSE_EVENTS, LABS, ITEMS, PROGRAM):
                    cur.execute(sql, params)
                self.stdout.write(f"{code}: {size} patients, {size * options['results']} results "
                                  f"({time.monotonic() - started:.0f} s)")
        with connection.cursor() as cur:
            # A running database is vacuumed by autovacuum: the visibility map is set and
            # counts are index-only scans. Measure that steady state, not a freshly loaded
            # table whose every index entry needs a heap fetch.
            # (VACUUM cannot run in a transaction: a test's cohort is only analysed.)
            vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
            cur.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
        self.stdout.write(f"done in {time.monotonic() - started:.0f} s; sign in as nurse.gen-<size> "
                          f"with password {options['password']!r}")
