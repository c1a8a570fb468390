"""Background work of the patients app: imports too big to run in a request (issue #15)."""

from __future__ import annotations

from celery import shared_task

from patients import imports
from patients.models import LabImport


@shared_task(name=imports.RUN_IMPORT_TASK, acks_late=True, soft_time_limit=3300, time_limit=3600)
def run_lab_import(import_id: int, phase: str) -> None:
    """Check or save one import. Safe to run twice (a killed worker's redelivery): the
    save claims a checked import once, and checks again before saving."""
    imp = LabImport.objects.select_related("clinic", "created_by").filter(pk=import_id).first()
    if imp is None:
        return
    if phase == "check" and imp.state in (LabImport.State.RECEIVED, LabImport.State.CHECKING):
        imports.run_check(imp)
    elif phase == "commit" and imp.state == LabImport.State.COMMITTING:
        imports.run_commit(imp)
