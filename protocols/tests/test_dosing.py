"""Every legal and illegal dose transition (reference §3: 600 → 450 → 300, then stop)."""

import pytest

from protocols.dosing import Dose, DoseState, Reason, check_transition, reduce_one_level
from protocols.errors import DoseTransitionError

S = DoseState
NEW = Dose(S.NOT_STARTED)


def on(d):
    return Dose(S.ON_DRUG, d)


def held(r):
    return Dose(S.WITHHELD, resume_dose_mg_bid=r)


STOP = Dose(S.DISCONTINUED)
DESENS = Dose(S.DESENSITIZATION, 150)

LEGAL = [
    (NEW, on(600), Reason.START, "", None, "start at the standard dose"),
    (NEW, on(450), Reason.START, "", None, "start at 450 for Child-Pugh C (§2)"),
    (on(600), on(450), Reason.TOXICITY, "", None, "first reduction"),
    (on(450), on(300), Reason.TOXICITY, "", None, "second reduction"),
    (on(600), on(300), Reason.PRESCRIBER_CHOICE, "", None, "two steps at once, prescriber's choice"),
    (on(600), held(450), Reason.TOXICITY, "", None, "withhold, resume reduced"),
    (on(600), held(600), Reason.TOXICITY, "", None, "withhold, resume same (C1, B1)"),
    (on(300), held(300), Reason.TOXICITY, "", None, "withhold at the floor, resume at the floor"),
    (held(450), on(450), Reason.RECOVERY, "", 600, "resume at the stated dose"),
    (held(600), on(450), Reason.PRESCRIBER_CHOICE, "", 600, "resume lower than stated"),
    (held(600), on(600), Reason.RECOVERY, "", 600, "resume at the same dose"),
    (on(450), on(600), Reason.PRESCRIBER_CHOICE, "ALT elevation was due to another drug", None, "re-escalation with a recorded reason"),
    (held(450), on(600), Reason.PRESCRIBER_CHOICE, "documented reason", 450, "resume above pre-hold with a reason"),
    (on(600), STOP, Reason.TOXICITY, "", None, "discontinue from a dose"),
    (held(450), STOP, Reason.TOXICITY, "", 600, "discontinue while withheld"),
    (held(600), DESENS, Reason.RECHALLENGE, "", 600, "desensitization after a rash hold"),
    (DESENS, on(600), Reason.RECHALLENGE, "", None, "desensitization completed"),
    (DESENS, held(600), Reason.TOXICITY, "", None, "reaction during desensitization"),
    (held(600), held(450), Reason.TOXICITY, "", 600, "a worse result during the hold tightens it (reference §4.8)"),
    (held(None), held(450), Reason.TOXICITY, "", 600, "a work-up hold gets its resume dose"),
    (on(600), held(None), Reason.TOXICITY, "", None, "work-up hold: resume dose decided on the result (§4.6)"),
]

ILLEGAL = [
    (on(450), on(600), Reason.PRESCRIBER_CHOICE, "", None, "needs a recorded reason"),
    (on(300), on(450), Reason.PRESCRIBER_CHOICE, "  ", None, "needs a recorded reason"),
    (held(450), on(600), Reason.RECOVERY, "", 450, "above the 450 mg in use"),
    (on(300), on(150), Reason.TOXICITY, "", None, "below the lowest dose of 300"),
    (on(300), held(150), Reason.TOXICITY, "", None, "below the lowest dose of 300"),
    (on(600), on(500), Reason.TOXICITY, "", None, "must be 600, 450 or 300"),
    (STOP, on(600), Reason.PRESCRIBER_CHOICE, "restart", None, "permanently discontinued"),
    (STOP, held(300), Reason.TOXICITY, "", None, "permanently discontinued"),
    (STOP, STOP, Reason.TOXICITY, "", None, "permanently discontinued"),
    (on(600), on(600), Reason.PRESCRIBER_CHOICE, "", None, "already 600"),
    (held(450), held(600), Reason.TOXICITY, "", 600, "above the 450 mg of the hold in force"),
    (on(600), held(None), Reason.PRESCRIBER_CHOICE, "", None, "only for a toxicity work-up"),
    (on(450), held(600), Reason.TOXICITY, "", None, "never re-escalates"),
    (NEW, on(300), Reason.START, "", None, "starts at 600"),
    (NEW, held(600), Reason.TOXICITY, "", None, "begins with a start"),
    (on(600), on(450), Reason.START, "", None, "already started"),
    (on(600), on(450), Reason.RECOVERY, "", None, "not recovery"),
    (on(600), NEW, Reason.PRESCRIBER_CHOICE, "", None, "not started"),
    (DESENS, DESENS, Reason.RECHALLENGE, "", None, "already running"),
]


@pytest.mark.parametrize(("current", "new", "reason", "note", "pre", "why"), LEGAL, ids=[c[5] for c in LEGAL])
def test_legal_transition_is_accepted(current, new, reason, note, pre, why):
    check_transition(current, new, reason=reason, note=note, pre_hold_dose=pre)


@pytest.mark.parametrize(("current", "new", "reason", "note", "pre", "message"), ILLEGAL, ids=[c[5] for c in ILLEGAL])
def test_illegal_transition_is_refused_with_a_clear_message(current, new, reason, note, pre, message):
    with pytest.raises(DoseTransitionError, match=message):
        check_transition(current, new, reason=reason, note=note, pre_hold_dose=pre)


@pytest.mark.parametrize(("dose", "lower"), [(600, 450), (450, 300), (300, None)])
def test_reduce_one_level_follows_the_ladder_and_stops_below_300(dose, lower):
    assert reduce_one_level(dose) == lower


def test_below_300_message_says_discontinue():
    with pytest.raises(DoseTransitionError) as exc:
        check_transition(on(300), on(150), reason=Reason.TOXICITY)
    assert "discontinue permanently" in str(exc.value)
