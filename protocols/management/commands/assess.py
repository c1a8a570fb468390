"""python manage.py assess CASE.json  (or - for standard input)

Prints the engine's recommendation for one case as JSON. Bad input exits 2 with a
one-line message on stderr. See protocols.engine.case_from_json for the input keys."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from protocols.cli import run_json_command
from protocols.case_input import case_from_json
from protocols.engine import assess


class Command(BaseCommand):
    help = "Print the label-driven recommendation for a case (JSON file, or - for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("case", help="path to the case JSON, or - for standard input")

    def handle(self, *args, **options):
        # Numbers stay exact: floats are parsed as strings and become Decimals (reference §4, A7).
        run_json_command(self, "assess", options["case"], lambda data: assess(case_from_json(data)), parse_float=str)
