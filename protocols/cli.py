"""Shared plumbing of the JSON commands (assess, monitoring_due): read a file or stdin,
parse, run, print JSON; any bad input exits 2 with one line on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from protocols.errors import InputError


def run_json_command(command: Any, name: str, path: str, handler: Callable[[Any], Any], **json_kwargs: Any) -> None:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        try:
            data = json.loads(text, **json_kwargs)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        result = handler(data)
    except (InputError, OSError) as exc:
        sys.stderr.write(f"{name}: {str(exc).splitlines()[0]}\n")
        sys.exit(2)
    command.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
