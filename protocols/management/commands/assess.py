"""python manage.py assess CASE.json  (or - for standard input)

Prints the engine's recommendation for one case as JSON. Bad input exits 2 with a
one-line message on stderr naming the field; nothing is printed on stdout and nothing is
changed. The input, validated whole by protocols.case_input (strict: unknown keys, a
bool where a number belongs, "2_40", NaN, dates beyond 9000-12-31 are all refused):

  dose_mg_bid           required: 600, 450 or 300 (the dose in use; while held, the pre-hold dose)
  labs, baseline        objects analyte -> lab; a lab is
                          {"value": N, "unit": "U/L", "uln": N, "lln": N, "collected_at": "2026-02-01T09:30"}
                        unit, uln, lln, collected_at optional, but ALT, AST, total_bilirubin, creatinine
                        and CPK need a uln and hemoglobin an lln. Analytes: alt, ast, total_bilirubin,
                        creatinine, cpk, hemoglobin, heart_rate, systolic_bp, diastolic_bp, alectinib_cmin.
  events                optional object: ild, ild_under_investigation, ild_other_cause,
                        contributing_medication, contributing_medication_adjusted, hemolysis_suspected,
                        hemolysis_resolved, cholestasis_or_hemolysis, gi_perforation (true/false);
                        bradycardia (null, asymptomatic, symptomatic, life_threatening);
                        hemolysis_confirmed (true, false, null); scar (null, sjs, ten, dress, agep);
                        unlisted: [{"term": "rash", "grade": 3}] (grade 3-5, term up to 80 characters)
  history               optional object: cpk_over_5x_uln_occurrences,
                        life_threatening_bradycardia_occurrences (whole numbers 0-1000)
  withheld              optional: the hold in force, i.e. the withhold part of an earlier output
                        {"action": "withhold", "resume": "same"|"reduced"|null,
                         "resume_dose_mg_bid": 600|450|300|null, "resume_when": [criterion, ...],
                         "since": "2026-02-01" or an ISO date-time, "hold_changed": true|false}
                        resume_when is required (it may be empty); the others are optional
                        a criterion: {"analyte": "alt", "max_x_uln": 3.0, "or_baseline": true, "text": "..."},
                        {"analyte": "heart_rate", "min": 60, "or_asymptomatic": true, "text": "..."} or
                        {"analyte": null, "clinician": "ild_causality"|"hemolysis_workup"|"hemolysis_resolved"}
  during_hold           optional, with withheld only: earlier results during the hold, oldest first,
                        [{"labs": {...}, "cpk_over_5x_uln_occurrences": 0}, ...]
  regime                "us" (default), "eu", "jp_adjuvant" or "jp_advanced"
  starting_dose_mg_bid  null (default), 600, 450 or 300

Numbers are JSON numbers or numeric strings ("1.2", "2.5e1"), kept exact (never floats):
at most 30 significant digits and less than 1e15 in size. Dates are YYYY-MM-DD between
1900-01-01 and 9000-12-31."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from protocols.case_input import case_from_json
from protocols.cli import KeepLayoutHelpFormatter, run_json_command
from protocols.engine import assess


class Command(BaseCommand):
    help = "Print the label-driven recommendation for a case (JSON file, or - for stdin)." + (
        "\n\n" + __doc__.split("\n\n", 1)[1] if __doc__ else "")

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", KeepLayoutHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("case", help="path to the case JSON, or - for standard input")

    def handle(self, *args, **options):
        # Numbers stay exact: floats are parsed as strings and become Decimals (reference §4, A7).
        run_json_command(self, "assess", options["case"], lambda data: assess(case_from_json(data)), parse_float=str)
