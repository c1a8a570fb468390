"""python manage.py monitoring_due CASE.json  (or - for standard input)

Prints the status of every monitoring requirement of the default schedule as JSON:
  {"treatment_start": "2026-01-05", "today": "2026-02-20", "grace_days": 0,
   "due_soon_days": 3, "last_tests": {"lft": "2026-02-02", "cpk": "2026-01-19"}}
-> {"lft": {"due": "2026-02-16", "status": "overdue"}, "cpk": {"due": null, ...}, ...}
treatment_start and today are required; dates are YYYY-MM-DD between 1900-01-01 and
9000-12-31; grace_days (default 0) and due_soon_days (default 3) are whole numbers of days
from 0 to 60; last_tests maps a requirement (lft, cpk, vitals, creatinine, hemoglobin,
brain_imaging, cmin) to the date of its last test. The input is validated whole by
monitoring.case_input. Bad input exits 2 with a one-line message on stderr."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from monitoring.case_input import due_report
from protocols.cli import KeepLayoutHelpFormatter, run_json_command

__all__ = ["Command", "due_report"]


class Command(BaseCommand):
    help = "Print the monitoring status of every requirement of the default schedule (JSON file, or - for stdin)." + (
        "\n\n" + __doc__.split("\n\n", 1)[1] if __doc__ else "")

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", KeepLayoutHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("case", help="path to the case JSON, or - for standard input")

    def handle(self, *args, **options):
        run_json_command(self, "monitoring_due", options["case"], due_report)
