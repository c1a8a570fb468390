"""The dose state machine: which dose changes are legal. Pure Python.

Source: ../shared/clinical-reference.md §3 (dose-reduction ladder, S1 §2, S2, S3, S4).
The ladder is 600 → 450 → 300 mg twice daily; below 300 mg the label says to stop
permanently. The label never re-escalates (§3), so going up needs a recorded reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import DoseTransitionError

# Reference §3 (US PI §2 dose-reduction table; EU SmPC §4.2): 600 mg BID, then 450, then 300.
LADDER: tuple[int, ...] = (600, 450, 300)


class DoseState(StrEnum):
    NOT_STARTED = "not_started"
    ON_DRUG = "on_drug"
    WITHHELD = "withheld"
    DESENSITIZATION = "desensitization"
    DISCONTINUED = "discontinued"


class Reason(StrEnum):
    START = "start"
    TOXICITY = "toxicity"
    RECOVERY = "recovery"
    RECHALLENGE = "rechallenge"
    PRESCRIBER_CHOICE = "prescriber_choice"


@dataclass(frozen=True)
class Dose:
    """A point in the state machine: a state and, when on drug, the dose in mg BID."""

    state: DoseState
    dose_mg_bid: int | None = None
    resume_dose_mg_bid: int | None = None  # while withheld

    def label(self) -> str:
        if self.state is DoseState.ON_DRUG:
            return f"{self.dose_mg_bid} mg twice daily"
        if self.state is DoseState.WITHHELD:
            if self.resume_dose_mg_bid is None:
                return "withheld"
            return f"withheld (resume at {self.resume_dose_mg_bid} mg twice daily)"
        return self.state.value.replace("_", " ")


# The dose levels shown side by side (cohort counts, the bands of the trend charts): a
# dose on the ladder, or the state when off it. The one place their names are written.
LEVELS: dict[str, str] = {
    "600": "600 mg BID", "450": "450 mg BID", "300": "300 mg BID", DoseState.WITHHELD: "Withheld",
    DoseState.DESENSITIZATION: "Desensitization", DoseState.DISCONTINUED: "Discontinued",
}


def level_of(state: str, dose_mg_bid: int | None) -> str | None:
    """The key in LEVELS of a state and dose (None for a state or dose without a level)."""
    key = str(dose_mg_bid) if state == DoseState.ON_DRUG else str(state)
    return key if key in LEVELS else None


def reduce_one_level(dose_mg_bid: int) -> int | None:
    """One level lower on the ladder; None means the patient must stop (§3: below 300)."""
    if dose_mg_bid not in LADDER:
        raise DoseTransitionError(f"{dose_mg_bid} mg twice daily is not on the 600/450/300 ladder.")
    i = LADDER.index(dose_mg_bid)
    return LADDER[i + 1] if i + 1 < len(LADDER) else None


def _check_level(dose: int | None, what: str) -> int:
    if dose is None:
        raise DoseTransitionError(f"{what} is required.")
    if dose < LADDER[-1]:
        raise DoseTransitionError(
            f"{dose} mg twice daily is below the lowest dose of 300 mg twice daily: "
            "the label says to discontinue permanently instead (reference §3)."
        )
    if dose not in LADDER:
        raise DoseTransitionError(f"{what} must be 600, 450 or 300 mg twice daily, not {dose}.")
    return dose


def check_transition(current: Dose, new: Dose, *, reason: Reason, note: str = "", pre_hold_dose: int | None = None) -> None:
    """Raise DoseTransitionError with a message for the user if current → new is illegal.

    `pre_hold_dose` is the dose in use before a hold, to tell a resumption above it.
    """
    if current.state is DoseState.DISCONTINUED:
        raise DoseTransitionError("Alectinib was permanently discontinued: no further dose change can be recorded.")
    if new.state is DoseState.NOT_STARTED:
        raise DoseTransitionError("A course cannot go back to not started.")
    if current.state is DoseState.NOT_STARTED:
        _check_start(new, reason)
        return
    if reason is Reason.START:
        raise DoseTransitionError("This course has already started.")
    _CHECKS_BY_TARGET[new.state](current, new, reason=reason, note=note, pre_hold_dose=pre_hold_dose)


def _check_start(new: Dose, reason: Reason) -> None:
    if new.state is not DoseState.ON_DRUG or reason is not Reason.START:
        raise DoseTransitionError("A course begins with a start at 600 mg (or 450 mg) twice daily.")
    if _check_level(new.dose_mg_bid, "The starting dose") == 300:
        raise DoseTransitionError("A course starts at 600 mg twice daily (450 mg for severe hepatic impairment).")


def _check_stop(current: Dose, new: Dose, *, reason: Reason, note: str, pre_hold_dose: int | None) -> None:
    """Discontinuation is always possible (reference §4: every rule may end in it)."""


def _check_desensitization(current: Dose, new: Dose, *, reason: Reason, note: str, pre_hold_dose: int | None) -> None:
    if current.state is DoseState.DESENSITIZATION:
        raise DoseTransitionError("A desensitization plan is already running.")


def _check_dose(current: Dose, new: Dose, *, reason: Reason, note: str, pre_hold_dose: int | None) -> None:
    """On drug at a ladder dose: a change of dose, a resumption after a hold, or the end
    of a desensitization plan (always allowed)."""
    dose = _check_level(new.dose_mg_bid, "The new dose")
    if current.state is DoseState.ON_DRUG and current.dose_mg_bid is not None:
        if dose == current.dose_mg_bid:
            raise DoseTransitionError(f"The dose is already {dose} mg twice daily.")
        if dose > current.dose_mg_bid and not note.strip():
            raise DoseTransitionError(
                f"Going up from {current.dose_mg_bid} to {dose} mg twice daily needs a recorded reason: "
                "the label never re-escalates after a reduction (reference §3)."
            )
        if dose < current.dose_mg_bid and reason is Reason.RECOVERY:
            raise DoseTransitionError("A reduction is recorded as toxicity or prescriber's choice, not recovery.")
    elif current.state is DoseState.WITHHELD:
        ceiling = max(filter(None, [pre_hold_dose, current.resume_dose_mg_bid]), default=dose)
        if dose > ceiling and not note.strip():
            raise DoseTransitionError(
                f"Resuming at {dose} mg, above the {ceiling} mg in use before the hold, needs a recorded reason "
                "(reference §3)."
            )


def _check_hold(current: Dose, new: Dose, *, reason: Reason, note: str, pre_hold_dose: int | None) -> None:
    """A new hold, or an amendment of the hold in force (a stricter result during it, §4.8)."""
    if new.resume_dose_mg_bid is None:
        # A hold pending a clinician's input (work-up, causality): the resume dose
        # is decided on the result (reference §4.2, §4.6).
        if reason is not Reason.TOXICITY:
            raise DoseTransitionError("A hold without a resume dose is only for a toxicity work-up.")
        return
    resume = _check_level(new.resume_dose_mg_bid, "The dose to resume at")
    if current.state is DoseState.WITHHELD:
        ceiling = current.resume_dose_mg_bid or pre_hold_dose or resume
        if resume > ceiling and not note.strip():
            raise DoseTransitionError(
                f"Resuming at {resume} mg, above the {ceiling} mg of the hold in force, needs a recorded reason "
                "(reference §3)."
            )
        return
    held_from = current.dose_mg_bid or resume
    # During desensitization the step dose is below the plan's target by design.
    if current.state is DoseState.ON_DRUG and resume > held_from and not note.strip():
        raise DoseTransitionError(
            f"Resuming at {resume} mg above the current {held_from} mg needs a recorded reason: "
            "the label never re-escalates (reference §3)."
        )


_CHECKS_BY_TARGET = {
    DoseState.DISCONTINUED: _check_stop,
    DoseState.WITHHELD: _check_hold,
    DoseState.DESENSITIZATION: _check_desensitization,
    DoseState.ON_DRUG: _check_dose,
}
