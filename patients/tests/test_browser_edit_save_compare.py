"""Edit, save, compare (issue: editing a patient erased its dates). In a real browser, open
the edit page of an existing patient, save without touching anything, and check that no
field changed: a date rendered in a format the browser's date control rejects shows as
empty and would be saved as empty."""

from datetime import date

import pytest
from django.forms.models import model_to_dict

from patients.models import Patient
from patients.tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_saving_the_patient_edit_page_untouched_changes_nothing(login_browser, live_server, clinic_a, nurse):
    patient = PatientFactory(clinic=clinic_a, mrn="A-900", alk_test_date=date(2026, 11, 1),
                             diagnosis_date=date(2026, 10, 12), date_of_birth=date(1958, 3, 9), notes="Lives alone")
    before = model_to_dict(Patient.objects.get(pk=patient.pk))
    page = login_browser(nurse)
    page.goto(f"{live_server.url}/patients/{patient.pk}/edit/")
    assert page.input_value("#id_alk_test_date") == "2026-11-01"
    assert page.input_value("#id_diagnosis_date") == "2026-10-12"
    assert page.input_value("#id_date_of_birth") == "1958-03-09"
    page.locator("main input[type=submit], main button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/patients/{patient.pk}/")
    assert model_to_dict(Patient.objects.get(pk=patient.pk)) == before
