"""Keep due dates current when clinical data changes (results, dose changes, start date,
archiving). The recompute runs after commit in the same request, so the nurse sees the
new due date at once; if it fails the patient is marked dirty for the next job run."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from monitoring import services
from patients.models import Patient, TreatmentCourse
from patients.services import clinical_data_changed

log = logging.getLogger(__name__)


def _recompute(patient_id: int) -> None:
    try:
        services.patient_schedule_recompute(patient_id=patient_id)
    except Exception:  # noqa: BLE001 - never fail the nurse's request for a derived value
        log.exception("recompute of patient %s failed; marked dirty for the next job run", patient_id)
        try:
            services.patient_mark_dirty(patient_id=patient_id)
        except Exception:  # noqa: BLE001
            log.exception("could not mark patient %s dirty; the daily full sweep will catch up", patient_id)


@receiver(clinical_data_changed)
def on_clinical_data_changed(sender, patient_id: int, **kwargs) -> None:
    _recompute(patient_id)


# The post_save receivers catch full saves from the admin and forms (a start date edited,
# a patient archived in the admin). Saves made by patients.services pass update_fields and
# send clinical_data_changed themselves, so they are skipped here: one recompute per change.


@receiver(post_save, sender=TreatmentCourse)
def on_course_saved(sender, instance: TreatmentCourse, created: bool, update_fields=None, **kwargs) -> None:
    if created or update_fields is not None:
        return
    transaction.on_commit(lambda: _recompute(instance.patient_id))


@receiver(post_save, sender=Patient)
def on_patient_saved(sender, instance: Patient, created: bool, update_fields=None, **kwargs) -> None:
    if created or update_fields is not None:
        return
    transaction.on_commit(lambda: _recompute(instance.pk))
