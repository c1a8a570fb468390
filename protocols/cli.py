"""Shared plumbing of the JSON commands (assess, monitoring_due): read a file or stdin,
parse, run, print JSON.

They never crash: any bad input — bytes that are not UTF-8, malformed or too deeply
nested JSON, a number too long to read, a value the validation refuses — exits 2 with
exactly one line on stderr, and nothing on stdout. An unexpected failure (a bug) exits 1,
also with one line and no traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import DjangoHelpFormatter

from protocols.case_input import LongNumber, show
from protocols.errors import InputError

MAX_INPUT_BYTES = 1_000_000
MAX_INT_CHARS = 100  # longer JSON integers are kept as text for the validation to refuse by name
MAX_MESSAGE_CHARS = 500


def _parse_int(text: str) -> int | LongNumber:
    return int(text) if len(text) <= MAX_INT_CHARS else LongNumber(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json keeps the last of two equal keys silently; a case that says two things is refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError(f"duplicate key {show(key)}")
        out[key] = value
    return out


def one_line(message: str) -> str:
    """The message as one printable line: control characters, line and paragraph
    separators, lone surrogates are escaped; a very long message is cut."""
    out = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                  for c in message)
    return out if len(out) <= MAX_MESSAGE_CHARS else out[: MAX_MESSAGE_CHARS - 1] + "…"


def _read(path: str) -> str:
    if path == "-":
        if sys.stdin is None:
            raise InputError("there is no standard input to read.")
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read(MAX_INPUT_BYTES + 1) if stream is not None else sys.stdin.read(MAX_INPUT_BYTES + 1)
    else:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"the input is larger than {MAX_INPUT_BYTES:,} bytes.")
    if isinstance(raw, str):  # a text stream without a byte buffer (tests, embedding)
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("the input is not UTF-8 text.") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the input is not UTF-8 text (byte {exc.start + 1} is {raw[exc.start]:#04x}).") from None


def _parse(text: str, json_kwargs: dict[str, Any]) -> Any:
    try:
        return json.loads(text, **{"parse_int": _parse_int, "object_pairs_hook": _no_duplicate_keys, **json_kwargs})
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except RecursionError:
        raise InputError("malformed JSON: it is nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer too long for int() when parse_int is overridden
        raise InputError(f"malformed JSON: {str(exc).strip() or 'a value cannot be read'}.") from None


def run_json_command(command: Any, name: str, path: str, handler: Callable[[Any], Any], **json_kwargs: Any) -> None:
    """Read `path` (or stdin for "-"), parse it as JSON with `json_kwargs`, pass it to
    `handler` and print its result as JSON on the command's stdout."""
    try:
        data = _parse(_read(path), json_kwargs)
        result = handler(data)
        out = json.dumps(result, indent=2, ensure_ascii=False)
        out.encode("utf-8")  # refuse, rather than half-print, text that cannot be written
    except (InputError, OSError) as exc:
        sys.stderr.write(f"{name}: {one_line(str(exc).strip() or type(exc).__name__)}\n")
        sys.exit(2)
    except RecursionError:
        sys.stderr.write(f"{name}: the input is nested too deeply.\n")
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: one line, exit 1, never a traceback
        detail = one_line(str(exc).strip())
        sys.stderr.write(f"{name}: internal error ({type(exc).__name__}{': ' + detail if detail else ''}); "
                         "please report the input that caused it.\n")
        sys.exit(1)
    command.stdout.write(out)


class KeepLayoutHelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the key table of a JSON command's help as written."""
