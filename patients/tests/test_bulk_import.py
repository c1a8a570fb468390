"""The 50,000-row file through the background path (issue #15, must show), timed: `make
bulk` (outside `make test`). The file is tests/data/large_50000.csv (make_large_csv.py):
500 patients, 20 collection times each, 5 analytes."""

import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from patients import imports, tasks
from patients.models import LabImport, LabResult, Patient, TreatmentCourse
from patients.tests.factories import ReferenceRangeFactory
from protocols.dosing import DoseState

pytestmark = [pytest.mark.bulk, pytest.mark.django_db(transaction=True)]
DATA = Path(__file__).parent / "data"


def test_fifty_thousand_rows_in_the_background(client, nurse, clinic_a, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.run_lab_import, "delay", lambda *args: queued.append(args))
    for analyte, uln in (("alt", "40"), ("ast", "40"), ("total_bilirubin", "1.2"), ("creatinine", "1.1"), ("cpk", "200")):
        ReferenceRangeFactory(clinic=clinic_a, analyte=analyte, uln=Decimal(uln))
    patients = Patient.objects.bulk_create(
        [Patient(clinic=clinic_a, mrn=f"G{i:04d}", first_name="G", last_name=f"{i}", date_of_birth=date(1960, 1, 1),
                 sex="F") for i in range(500)])
    TreatmentCourse.objects.bulk_create([TreatmentCourse(patient=p, start_date=date(2026, 5, 1), dose_mg_bid=600,
                                                         dose_state=DoseState.ON_DRUG) for p in patients])
    client.force_login(nurse)
    with time_machine.travel(datetime(2026, 11, 22, 12, 0, tzinfo=ZoneInfo("Europe/London")), tick=True):
        content = (DATA / "large_50000.csv").read_bytes()
        client.post(reverse("import_list"), {"clinic": clinic_a.pk, "file": SimpleUploadedFile("large.csv", content)})
        imp = LabImport.objects.get()
        tab = imports.table(imp)
        mapping = {f"col_{k}": "" if v is None else str(v) for k, v in imports.remembered_mapping(imp, tab).items()}
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("import_check", args=[imp.pk]), {**mapping, "date_format": "iso"})
        started = time.perf_counter()
        tasks.run_lab_import(*queued.pop())
        checked = time.perf_counter() - started
        imp.refresh_from_db()
        assert imp.counts == {"create": 50000, "duplicate": 0, "amend": 0, "refuse": 0}
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("import_confirm", args=[imp.pk]))
        started = time.perf_counter()
        tasks.run_lab_import(*queued.pop())
        saved = time.perf_counter() - started
        imp.refresh_from_db()
        assert imp.state == LabImport.State.DONE and LabResult.objects.filter(lab_import=imp).count() == 50000
        # The same file again: every row a duplicate, nothing new.
        again = imports.lab_import_receive(clinic=clinic_a, kind="csv", name="again.csv", content=content, user=nurse)
        imports.choose_mapping(again, imports.remembered_mapping(again, tab), "iso")
        imports.run_check(again)
        assert again.counts["duplicate"] == 50000
    print(f"\n50,000 rows: dry run {checked:.1f} s, save {saved:.1f} s ({50000 / saved:.0f} rows/s)")
