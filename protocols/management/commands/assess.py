"""python manage.py assess CASE.json  (or - for standard input)

Prints the engine's recommendation for one case as JSON. Bad input exits 2 with a
one-line message on stderr. See protocols.engine.case_from_json for the input keys."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from protocols.engine import assess, case_from_json
from protocols.errors import InputError


class Command(BaseCommand):
    help = "Print the label-driven recommendation for a case (JSON file, or - for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("case", help="path to the case JSON, or - for standard input")

    def handle(self, *args, **options):
        try:
            if options["case"] == "-":
                text = sys.stdin.read()
            else:
                with open(options["case"], encoding="utf-8") as fh:
                    text = fh.read()
            try:
                data = json.loads(text, parse_float=str, parse_int=lambda s: int(s))
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
            result = assess(case_from_json(data))
        except (InputError, OSError) as exc:
            sys.stderr.write(f"assess: {str(exc).splitlines()[0]}\n")
            sys.exit(2)
        self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
