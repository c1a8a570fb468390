"""A clinic's monitoring settings: bounded as the monitoring_due command is (0 to 60 days),
so a typo cannot make 'due soon' a year long or hide overdue items (monitoring.rules)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from monitoring.models import ClinicSettings
from monitoring.rules import MAX_SETTING_DAYS

pytestmark = pytest.mark.django_db

VALID = {"due_soon_days": "3", "grace_days": "0", "escalation_days": "7", "fill_check_days": "7", "digest_time": "07:00"}


@pytest.mark.parametrize("field", ["due_soon_days", "grace_days", "escalation_days", "fill_check_days"])
@pytest.mark.parametrize(("value", "saved"), [(str(MAX_SETTING_DAYS), True), (str(MAX_SETTING_DAYS + 1), False),
                                              ("400", False), ("0", True), ("-1", False)])
def test_settings_are_bounded_to_60_days(client, clinic_a, clinic_admin, field, value, saved):
    client.force_login(clinic_admin)
    response = client.post(reverse("clinic_settings", args=[clinic_a.pk]), {**VALID, field: value})
    stored = getattr(ClinicSettings.for_clinic(clinic_a.pk), field)
    if saved:
        assert response.status_code == 302 and stored == int(value)
    else:
        assert response.status_code == 200
        assert "Ensure this value is" in response.content.decode()
        assert stored != int(value)


@pytest.mark.parametrize(("phone", "saved"), [("+44 20 7946 0018", True), ("(020) 7946-0018 ext 12", True),
                                              ("abc <b>x</b>", False), ("call reception", False)])
def test_the_patient_phone_is_a_phone_number(client, clinic_a, clinic_admin, phone, saved):
    client.force_login(clinic_admin)
    response = client.post(reverse("clinic_settings", args=[clinic_a.pk]), {**VALID, "patient_phone": phone})
    stored = ClinicSettings.for_clinic(clinic_a.pk).patient_phone
    assert (response.status_code == 302, stored == phone) == (saved, saved)
