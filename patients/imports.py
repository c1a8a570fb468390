"""Imports as a workflow (issue #15): a file is received and kept as sent (SHA-256), read
with the clinic's column mapping, checked (the dry run: nothing saved), and, once the
user confirms, its valid rows are saved in one transaction through the intake path.

Small files run in the request; larger ones (more than SYNC_ROWS rows) in a Celery task,
with the progress kept on the import row (the check) and in the cache (the save, whose
rows are invisible to other connections until its single transaction commits), so that a
reloaded page still shows where it stands. Running a phase twice is harmless: the save
checks again first, and rows already stored are duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import Clinic, User
from patients import csv_import, fhir_import, intake
from patients.intake import Sent
from patients.models import ImportMapping, LabImport, LabResult
from protocols.errors import InputError

SYNC_ROWS = 1000
RUN_IMPORT_TASK = "patients.tasks.run_lab_import"  # enqueued by name: no import of tasks here
SOURCE = {LabImport.Kind.CSV: LabResult.Source.CSV, LabImport.Kind.FHIR: LabResult.Source.FHIR,
          LabImport.Kind.HL7: LabResult.Source.HL7, LabImport.Kind.API: LabResult.Source.API}


def progress_key(pk: int) -> str:
    return f"lab-import-progress:{pk}"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def lab_import_receive(*, clinic: Clinic | None, kind: str, name: str, content: bytes, user: User) -> LabImport:
    """Keep the file or message as received, before anything is read from it."""
    return LabImport.objects.create(clinic=clinic, kind=kind, name=intake.shown(name)[:200], sha256=sha256(content),
                                    content=content, created_by=user)


def earlier_copies(imp: LabImport) -> list[LabImport]:
    """Imports of the same bytes into the same clinic before this one."""
    return list(LabImport.objects.filter(clinic_id=imp.clinic_id, sha256=imp.sha256, pk__lt=imp.pk,
                                         state=LabImport.State.DONE).order_by("-pk")[:5])


# --- Reading --------------------------------------------------------------------------------


def table(imp: LabImport) -> csv_import.Table:
    """The file read as a table, once per import object (a request reads it for the page,
    the mapping, the row count and the check)."""
    cached = getattr(imp, "_table", None)
    if cached is None:
        cached = imp._table = csv_import.read(bytes(imp.content))
    return cached


def remembered_mapping(imp: LabImport, tab: csv_import.Table) -> dict[str, int | None]:
    saved = ImportMapping.objects.filter(clinic_id=imp.clinic_id, header_key=tab.header_key).first()
    if saved:
        return {name: saved.mapping.get(name) for name in csv_import.FIELDS}
    return csv_import.guess_mapping(tab.header)


def choose_mapping(imp: LabImport, mapping: dict[str, int | None], date_format: str) -> None:
    """Store the user's mapping on the import and remember it for this clinic's layout."""
    tab = table(imp)
    problems = csv_import.mapping_problems(mapping, tab.header)
    if problems:
        raise MappingError(problems)
    imp.options = {"mapping": mapping, "date_format": date_format, "encoding": tab.encoding,
                   "delimiter": tab.delimiter}
    imp.save(update_fields=["options"])
    ImportMapping.objects.update_or_create(clinic_id=imp.clinic_id, header_key=tab.header_key,
                                           defaults={"mapping": mapping})


class MappingError(InputError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def sent_rows(imp: LabImport) -> list[Sent]:
    if imp.kind == LabImport.Kind.CSV:
        return list(csv_import.sent_rows(table(imp), imp.options.get("mapping", {})))
    if imp.kind == LabImport.Kind.FHIR:
        return list(fhir_import.sent_rows(bytes(imp.content)))
    raise InputError(f"{imp.get_kind_display()} imports are processed by their own door.")


def row_count(imp: LabImport) -> int:
    if imp.kind == LabImport.Kind.CSV:
        return len(table(imp).rows)
    return len(sent_rows(imp))


def options(imp: LabImport) -> intake.Options:
    return intake.Options(date_format=imp.options.get("date_format", "iso"))


# --- The phases -----------------------------------------------------------------------------


def _finish(imp: LabImport, verdicts: list[intake.Verdict], state: str) -> None:
    imp.outcomes = [v.as_list() for v in verdicts]
    imp.counts = intake.counts(verdicts)
    imp.processed = imp.total = len(verdicts)
    imp.state, imp.error = state, ""
    imp.finished_at = timezone.now() if state == LabImport.State.DONE else None
    imp.save(update_fields=["outcomes", "counts", "processed", "total", "state", "finished_at", "error"])


def _fail(imp: LabImport, error: str) -> None:
    LabImport.objects.filter(pk=imp.pk).update(state=LabImport.State.FAILED, error=intake.shown(error)[:2000])
    imp.state, imp.error = LabImport.State.FAILED, error


def run_check(imp: LabImport) -> None:
    """The dry run: outcomes and counts stored on the import, nothing else written."""
    assert imp.clinic is not None
    try:
        rows = sent_rows(imp)
    except InputError as exc:
        _fail(imp, str(exc))
        return
    LabImport.objects.filter(pk=imp.pk).update(state=LabImport.State.CHECKING, total=len(rows), processed=0)

    def progress(n: int) -> None:
        LabImport.objects.filter(pk=imp.pk).update(processed=n)

    try:
        verdicts = intake.check(imp.clinic, rows, options=options(imp), progress=progress)
    except Exception as exc:
        _fail(imp, f"The check failed ({type(exc).__name__}: {str(exc)[:200]}). Check the file again.")
        raise
    _finish(imp, verdicts, LabImport.State.CHECKED)


def claim_commit(imp: LabImport) -> bool:
    """A checked import moves to saving once: a second confirmation (a double click,
    another tab) finds it claimed."""
    claimed = LabImport.objects.filter(pk=imp.pk, state=LabImport.State.CHECKED) \
        .update(state=LabImport.State.COMMITTING, processed=0)
    if claimed:
        imp.state = LabImport.State.COMMITTING
    return bool(claimed)


def run_commit(imp: LabImport) -> None:
    """Check again (the record may have changed since the dry run), then save the valid
    rows in one transaction. The import row is locked for the whole save, so that a
    redelivered task waits and then finds it done."""
    assert imp.clinic is not None
    key = progress_key(imp.pk)

    def progress(n: int) -> None:
        cache.set(key, n, 3600)

    try:
        rows = sent_rows(imp)
    except InputError as exc:
        _fail(imp, str(exc))
        return
    try:
        with transaction.atomic():
            locked = LabImport.objects.select_for_update().get(pk=imp.pk)
            if locked.state != LabImport.State.COMMITTING:
                return
            verdicts = intake.check(imp.clinic, rows, options=options(imp))
            intake.commit(verdicts, user=imp.created_by, source=SOURCE[imp.kind], lab_import=imp, progress=progress)
            _finish(imp, verdicts, LabImport.State.DONE)
    except Exception as exc:
        # The transaction rolled back: nothing of this file was saved. Say so on the page,
        # where the user can check it again and save it again (rows saved meanwhile by others
        # are then duplicates).
        _fail(imp, f"The save failed and nothing was saved ({type(exc).__name__}: {str(exc)[:200]}). "
                   "Check the file again, then save it.")
        raise
    finally:
        cache.delete(key)


def start(imp: LabImport, phase: str) -> bool:
    """Run a phase now (a small file) or in the background; True when queued. The save
    runs only for an import this call claimed."""
    if phase == "commit" and not claim_commit(imp):
        return False
    if imp.total > SYNC_ROWS or (imp.total == 0 and row_count(imp) > SYNC_ROWS):
        if phase == "check":
            imp.total = imp.total or row_count(imp)
            LabImport.objects.filter(pk=imp.pk).update(state=LabImport.State.CHECKING, processed=0, total=imp.total)
            imp.state = LabImport.State.CHECKING
        transaction.on_commit(lambda: current_app.tasks[RUN_IMPORT_TASK].delay(imp.pk, phase))
        return True
    (run_check if phase == "check" else run_commit)(imp)
    return False


def progress(imp: LabImport) -> tuple[int, int]:
    """(processed, total) as it stands now, for the progress bar."""
    if imp.state == LabImport.State.COMMITTING:
        return cache.get(progress_key(imp.pk)) or 0, imp.total
    return imp.processed, imp.total


def outcome_rows(imp: LabImport, only: str | None = None) -> Iterator[list]:
    for row in imp.outcomes:
        if only is None or row[1] == only:
            yield row
