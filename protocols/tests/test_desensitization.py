"""Desensitization schedules (reference §9.2, §9.3). No database."""

from datetime import date

import pytest

from protocols.desensitization import Step, calendar, capsules, describe_capsules, final_dose, unmakeable
from protocols.errors import InputError

SEEGOBIN = [Step(150, 150, 2), Step(300, 300, 5), Step(450, 450, 8), Step(450, 600, 8)]


def test_seegobin_generates_exactly_its_23_day_schedule():
    days = calendar(SEEGOBIN, date(2026, 3, 1))
    assert len(days) == 23
    expected = [(150, 150)] * 2 + [(300, 300)] * 5 + [(450, 450)] * 8 + [(450, 600)] * 8
    assert [(d.morning_mg, d.evening_mg) for d in days] == expected
    assert [d.number for d in days] == list(range(1, 24))
    assert days[0].day == date(2026, 3, 1) and days[-1].day == date(2026, 3, 23)
    assert [d.step for d in days if d.number in (1, 3, 8, 16, 23)] == [1, 2, 3, 4, 4]
    assert final_dose(SEEGOBIN) == 600  # 600 mg BID from day 24


def test_calendar_from_a_later_step_keeps_numbering():
    days = calendar(SEEGOBIN, date(2026, 3, 10), from_step=3, first_day_number=9)
    assert len(days) == 16 and days[0].number == 9 and days[0].morning_mg == 450


@pytest.mark.parametrize(
    ("dose", "strengths", "expected"),
    [
        (600, [150], [150, 150, 150, 150]),
        (450, [150], [150, 150, 150]),
        (40, [20, 40, 150], [40]),
        (200, [20, 40, 150], [40, 40, 40, 40, 40]),  # Kimura's 200 mg: 150 + 50 cannot be made
        (37, [20, 40, 150], None),
        (100, [150], None),
    ],
)
def test_capsules_make_doses_from_whole_capsules(dose, strengths, expected):
    assert capsules(dose, strengths) == expected


def test_anderson_37_5_mg_cannot_be_made_and_is_flagged():
    """§9.1: 37.5 mg cannot be made from intact 20, 40 or 150 mg capsules (capsules are not opened)."""
    assert unmakeable([Step(37, 0, 1)], [20, 40, 150]) == [
        "Step 1 morning dose 37 mg cannot be made from 20, 40, 150 mg capsules (capsules are not opened)."]
    assert describe_capsules(600, [150]) == "4 × 150 mg"
    assert describe_capsules(190, [20, 40, 150]) == "1 × 150 mg + 1 × 40 mg"


def test_japanese_40_mg_start_needs_the_40_mg_capsule():
    steps = [Step(40, 0, 1), Step(300, 300, 7)]
    assert unmakeable(steps, [150]) and not unmakeable(steps, [20, 40, 150])


@pytest.mark.parametrize(
    ("steps", "message"),
    [([], "at least one step"), ([Step(150, 150, 0)], "at least 1"), ([Step(0, 0, 2)], "morning or an evening"),
     ([Step(750, 750, 1)], "above 600 mg")],
)
def test_bad_steps_are_refused(steps, message):
    with pytest.raises(InputError, match=message):
        calendar(steps, date(2026, 3, 1))
