"""Keep due dates current when clinical data changes (results, dose changes, start date,
archiving). The recompute runs after commit in the same request, so the nurse sees the
new due date at once; if it fails the patient is marked dirty for the next job run."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from patients.models import Patient, TreatmentCourse
from patients.services import clinical_data_changed

log = logging.getLogger(__name__)


def _recompute(patient_id: int) -> None:
    from monitoring.services import patient_mark_dirty, patient_schedule_recompute

    try:
        patient_schedule_recompute(patient_id=patient_id)
    except Exception:  # noqa: BLE001 - never fail the nurse's request for a derived value
        log.exception("recompute of patient %s failed; marked dirty for the next job run", patient_id)
        try:
            patient_mark_dirty(patient_id=patient_id)
        except Exception:  # noqa: BLE001
            log.exception("could not mark patient %s dirty; the daily full sweep will catch up", patient_id)


@receiver(clinical_data_changed)
def on_clinical_data_changed(sender, patient_id: int, **kwargs) -> None:
    _recompute(patient_id)


@receiver(post_save, sender=TreatmentCourse)
def on_course_saved(sender, instance: TreatmentCourse, **kwargs) -> None:
    # Also catches edits of the start date in the admin.
    transaction.on_commit(lambda: _recompute(instance.patient_id))


@receiver(post_save, sender=Patient)
def on_patient_saved(sender, instance: Patient, created: bool, **kwargs) -> None:
    if not created:
        transaction.on_commit(lambda: _recompute(instance.pk))
