"""The cohort overview's dose levels at each month end, counted by the database (issue #14):
the level of a course at a month end is its last event on or before it, the latest one when
two fall on the same day; a course not started by then is not counted."""

from __future__ import annotations

from datetime import date

import pytest

from monitoring.cohort import overview
from patients.tests.factories import DoseChangeEventFactory, PatientFactory, TreatmentCourseFactory
from protocols.dosing import DoseState

pytestmark = pytest.mark.django_db
TODAY = date(2026, 6, 15)


def course(clinic, start, *changes, state=DoseState.ON_DRUG, dose=600):
    c = TreatmentCourseFactory(patient=PatientFactory(clinic=clinic), start_date=start, dose_state=state,
                               dose_mg_bid=dose)
    DoseChangeEventFactory(course=c, to_state=DoseState.ON_DRUG, to_dose_mg_bid=600, effective_date=start)
    for day, to_state, to_dose in changes:
        DoseChangeEventFactory(course=c, from_state=DoseState.ON_DRUG, to_state=to_state, to_dose_mg_bid=to_dose,
                               effective_date=day, reason="toxicity")
    return c


def test_levels_at_each_month_end_follow_the_last_event_on_or_before_it(clinic_a, nurse):
    course(clinic_a, date(2026, 1, 10))  # 600 throughout
    course(clinic_a, date(2026, 2, 5), (date(2026, 3, 31), DoseState.WITHHELD, None),
           (date(2026, 3, 31), DoseState.ON_DRUG, 450), state=DoseState.ON_DRUG, dose=450)  # same day: the later wins
    course(clinic_a, date(2026, 4, 20), (date(2026, 5, 2), DoseState.WITHHELD, None), state=DoseState.WITHHELD,
           dose=None)
    months = {m["month"]: m for m in overview(user=nurse, today=TODAY, months=6)["over_time"]}
    assert (months["Jan 2026"]["600"], months["Jan 2026"]["450"]) == (1, 0)
    assert (months["Feb 2026"]["600"], months["Feb 2026"]["450"]) == (2, 0)
    assert (months["Mar 2026"]["600"], months["Mar 2026"]["450"], months["Mar 2026"]["withheld"]) == (1, 1, 0)
    assert (months["Apr 2026"]["600"], months["Apr 2026"]["450"]) == (2, 1)  # the third started on 20 Apr
    assert (months["May 2026"]["600"], months["May 2026"]["450"], months["May 2026"]["withheld"]) == (1, 1, 1)
    assert (months["Jun 2026"]["600"], months["Jun 2026"]["450"], months["Jun 2026"]["withheld"]) == (1, 1, 1)
