"""The alectinib label's dose-modification rules, as data plus small functions. Pure
Python: no Django, no database; `Case` in, `Recommendation` out.

Source of every rule: ../shared/clinical-reference.md §3–§4 (US PI §2/§5, EU SmPC §4.2/4.4,
Swissmedic DHPC, ESMO Open 2022 Table 4). Conventions from the reference:
- "> k × ULN" is strictly greater and "≤ k × ULN" includes equality; multiples are
  compared exactly, in rational arithmetic, whatever unit the laboratory reported (§4, A7);
- when several rules fire the most protective wins — discontinue > withhold then reduce >
  withhold then same dose > continue — the resume condition is the union of all recovery
  criteria, and a hold costs one reduction step however many rules fired (§4.8);
- a reduction below 300 mg twice daily is a permanent discontinuation (§3);
- a toxicity the label has no rule for reaches a prescriber, with no dose suggested (§4.7);
- where the reference marks a point as ambiguous, the outcome is `clinician_decision`
  with the readings as options, or a `review` line; the engine never guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum
from fractions import Fraction
from typing import Any, NamedTuple

from protocols.dosing import LADDER, reduce_one_level
from protocols.errors import InputError
from protocols.labs import Lab, grade_lab

__all__ = ["ACTIONS", "RULES", "Case", "Lab", "Snapshot", "assess", "criterion_met", "grades_of"]

CONTINUE, WITHHOLD, RESUME, DISCONTINUE, DECISION, REVIEW = (
    "continue", "withhold", "resume", "discontinue", "clinician_decision", "review")
ACTIONS = (CONTINUE, WITHHOLD, RESUME, DISCONTINUE, DECISION, REVIEW)

# Information shown with a discontinuation (reference §9.1: switching to another ALK
# inhibitor was reported); the app does not recommend a drug.
ALTERNATIVES = ["brigatinib", "lorlatinib"]
ALTERNATIVES_SOURCE = "Reference §9.1 (S11; secondary summaries)"


@dataclass(frozen=True)
class Rule:
    id: str
    source: str
    text: str
    review: str = ""  # shown to the prescriber whenever the rule fires

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "text": self.text}


RULES: dict[str, Rule] = {
    r.id: r
    for r in [
        Rule("H1", "Reference §4.1 H1 (US PI §2 table; S2; S3; S6)",
             "ALT or AST > 5× ULN with total bilirubin ≤ 2× ULN: withhold until ALT/AST is back to baseline or "
             "≤ 3× ULN, then resume one dose level lower."),
        Rule("H2", "Reference §4.1 H2 (US PI §2 table; S2; S3; S6)",
             "ALT or AST > 3× ULN with total bilirubin > 2× ULN, without cholestasis or hemolysis: "
             "discontinue permanently."),
        Rule("H3", "Reference §4.1 H3 (US PI §2 table; S2; S6)",
             "Total bilirubin > 3× ULN: withhold until bilirubin is back to baseline or ≤ 1.5× ULN, then resume "
             "one dose level lower."),
        Rule("H2-EXCLUDED", "Reference §4.1 ambiguity A3",
             "ALT/AST > 3× ULN with bilirubin > 2× ULN, but a clinician documented cholestasis or confirmed "
             "hemolysis: the combined rule (H2) does not apply; the withhold rules H1/H3 are applied instead and a "
             "prescriber reviews.",
             "Cholestasis or hemolysis is documented with ALT/AST > 3× ULN and bilirubin > 2× ULN: the label gives "
             "no action; prescriber review (reference §4.1, A3)."),
        Rule("ILD", "Reference §4.2 (US PI §2 table, §5.2; S2; S3)",
             "Treatment-related interstitial lung disease / pneumonitis of any grade: discontinue permanently."),
        Rule("ILD-INVESTIGATING", "Reference §4.2 ambiguity A9 (US PI §5.2)",
             "ILD / pneumonitis diagnosed, cause under investigation: withhold at once; discontinue permanently if "
             "no other cause is identified.",
             "Record the ILD causality: treatment-related (no other cause) means permanent discontinuation "
             "(reference §4.2, A9)."),
        Rule("ILD-SYMPTOMS", "Reference §4.2 (US PI §5.2); §8.7",
             "New or worsening respiratory symptoms (breathlessness, cough, fever) reported: investigate promptly for "
             "ILD / pneumonitis. No dose change until ILD is diagnosed or excluded; record the diagnosis as an ILD "
             "event, or resolve the symptoms event.",
             "Investigate promptly for ILD (reference §4.2): the label gives no dose change for symptoms alone."),
        Rule("ILD-OTHER-CAUSE", "Reference §4.2 ambiguity A9",
             "ILD / pneumonitis with another cause identified: the label's discontinuation does not apply; the "
             "hold for the investigation ends, no dose change; prescriber review.",
             "ILD with another cause identified: the label gives no dose change; prescriber review (reference §4.2, "
             "A9)."),
        Rule("R3", "Reference §4.3 (US PI §2, §5.3; S2; S6)",
             "Grade 3 renal impairment: withhold until serum creatinine ≤ 1.5× ULN, then resume one dose level lower.",
             "Renal impairment grade is suggested from creatinine (CTCAE 'Creatinine increased'); the prescriber "
             "confirms the grade (reference §4.3, A2)."),
        Rule("R4", "Reference §4.3 (US PI §5.3; S6)", "Grade 4 renal impairment: discontinue permanently.",
             "Renal impairment grade is suggested from creatinine (CTCAE 'Creatinine increased'); the prescriber "
             "confirms the grade (reference §4.3, A2)."),
        Rule("B0", "Reference §4.4 B0 (US PI §5.4; S3; S7)",
             "Asymptomatic bradycardia: no dose change; monitor heart rate and blood pressure."),
        Rule("B1", "Reference §4.4 B1 (EU SmPC table; US PI §5.4 text differs, A1)",
             "Symptomatic bradycardia, not life-threatening, with a contributing medicine identified and stopped or "
             "dose-adjusted: withhold until asymptomatic or heart rate ≥ 60 bpm, then resume at the previous dose "
             "(table); the US warning text says a reduced dose. The prescriber chooses.",
             "Bradycardia with a contributing medicine stopped or adjusted: the table says resume at the previous "
             "dose, the US warning text says a reduced dose (reference §4.4, A1)."),
        Rule("B2", "Reference §4.4 B2 (US PI §2; S3; S6)",
             "Symptomatic bradycardia, not life-threatening, with no contributing medicine, or one not stopped or "
             "adjusted: withhold until asymptomatic or heart rate ≥ 60 bpm, then resume one dose level lower."),
        Rule("B3", "Reference §4.4 B3 (US PI §2; S3; S6)",
             "Life-threatening bradycardia with no contributing medicine stopped or adjusted: discontinue permanently."),
        Rule("B4", "Reference §4.4 B4 (US PI §2; S3)",
             "Life-threatening bradycardia with a contributing medicine identified and stopped or adjusted: withhold "
             "until asymptomatic or heart rate ≥ 60 bpm, then resume one dose level lower with frequent monitoring.",
             "Resume with frequent heart-rate monitoring (reference §4.4 B4)."),
        Rule("B5", "Reference §4.4 B5 (US PI §5.4; S3; S6)",
             "Life-threatening bradycardia that recurs: discontinue permanently."),
        Rule("C1", "Reference §4.5 C1 (ESMO Open 2022 Table 4 citing US PI and EU SmPC)",
             "CPK > 5× ULN (first occurrence, ≤ 10× ULN): withhold until CPK is back to baseline or ≤ 2.5× ULN, "
             "then resume at the same dose."),
        Rule("C2", "Reference §4.5 C2 (ESMO Open 2022 Table 4)",
             "CPK > 10× ULN, or a second occurrence of CPK > 5× ULN: withhold until CPK is back to baseline or "
             "≤ 2.5× ULN, then resume one dose level lower."),
        Rule("HA1", "Reference §4.6 (Swissmedic DHPC; HSA letter; S3; S6)",
             "Hemoglobin < 10 g/dL with hemolytic anemia suspected: withhold and start the laboratory work-up.",
             "Start the hemolysis work-up; on the result the prescriber decides (reference §4.6, A4)."),
        Rule("HA2", "Reference §4.6 ambiguity A4",
             "Hemolytic anemia confirmed: keep withheld until resolution, then resume one dose level lower or "
             "discontinue permanently. The prescriber chooses."),
        Rule("HA-NOT-CONFIRMED", "Reference §4.6 ambiguity A4",
             "The hemolysis work-up did not confirm hemolytic anemia: no dose change; prescriber review.",
             "The work-up did not confirm hemolysis: the label gives no action; no dose change, prescriber review "
             "(reference §4.6, A4)."),
        Rule("HB-LOW", "Reference §4.6 ambiguity A4",
             "Hemoglobin < 10 g/dL without suspected hemolysis: no alectinib-specific rule; no dose change, "
             "prescriber review.",
             "Hemoglobin < 10 g/dL without suspected hemolysis has no alectinib-specific rule; prescriber review "
             "(reference §4.6)."),
        Rule("GI", "Reference §4.7 (EU SmPC via S3)",
             "Gastrointestinal perforation: the EU label says to discontinue; the US label has no rule.",
             "GI perforation: discontinuation comes from the EU label only; the US label is silent (reference §4.7)."),
        Rule("SCAR", "Reference §9.3 (S12; S13; SEED-A); §4.7",
             "Severe cutaneous adverse reaction (SJS, TEN or DRESS) on alectinib: discontinue permanently; "
             "re-exposure is contraindicated, so the patient is never to be re-challenged or desensitized.",
             "SJS, TEN or DRESS: the patient must never be re-challenged with alectinib (reference §9.3)."),
        Rule("UNLISTED", "Reference §4.7",
             "A grade ≥ 3 toxicity for which the US and EU labels give no rule: no dose change is suggested; a "
             "prescriber reviews it."),
        Rule("FLOOR", "Reference §3 (US PI §2 dose-reduction table)",
             "A reduction below 300 mg twice daily is not possible: discontinue permanently."),
        Rule("RECOVERED", "Reference §4 (recovery criteria of the rules that caused the hold)",
             "The recovery condition of the hold is met: resume at the stated dose."),
        Rule("HOLD-TIGHTENED", "Reference §4.8 (design convention)",
             "A result during the hold calls for a stricter outcome than the hold in force: the stricter resume dose "
             "and the union of the recovery conditions apply.",
             "A new result during the hold asks for more than the hold in force: the stricter resume dose and every "
             "recovery condition apply (reference §4.8)."),
        Rule("REGIME", "Reference §2 ambiguity A13",
             "The 600/450/300 ladder applies to the US, EU and Japanese adjuvant labels only; for this regime the "
             "prescriber decides.",
             "Japanese 300 mg BID regime: the ladder logic does not apply (reference §2, A13)."),
    ]
}


class Kind(IntEnum):
    """What one rule asks for, ordered from least to most protective, so that "the most
    protective wins" (§4.8) is `max`. A hold pending a clinician's input (work-up,
    causality) sits between "same" and "reduced": a reducing rule alongside it decides the
    resume dose, and its own criterion keeps the hold."""

    CONTINUE = 0
    REVIEW = 1  # no rule in the label: a prescriber reviews, no dose is suggested (§4.7)
    WITHHOLD_SAME = 2
    WITHHOLD_PENDING = 3
    WITHHOLD_REDUCED = 4
    DISCONTINUE = 5

    @property
    def holds(self) -> bool:
        return Kind.WITHHOLD_SAME <= self <= Kind.WITHHOLD_REDUCED


class Snapshot(NamedTuple):
    """The lab values as they stood at one earlier result time during a hold, with the
    count of earlier CPK episodes as it was then (§4.5: a second occurrence)."""

    labs: dict[str, Lab]
    cpk_over_5x_uln_occurrences: int = 0


@dataclass
class Case:
    """The engine's input. Labs are exact and canonical (`protocols.labs`)."""

    dose_mg_bid: int
    labs: dict[str, Lab] = field(default_factory=dict)
    baseline: dict[str, Lab] = field(default_factory=dict)
    ild: bool = False
    ild_under_investigation: bool = False
    ild_other_cause: bool = False
    respiratory_symptoms: bool = False  # new or worse dyspnea/cough reported, no ILD recorded (§4.2)
    bradycardia: str | None = None  # None, "asymptomatic", "symptomatic", "life_threatening"
    contributing_medication: bool = False
    contributing_medication_adjusted: bool = False
    hemolysis_suspected: bool = False
    hemolysis_confirmed: bool | None = None  # None: no work-up result yet
    hemolysis_resolved: bool = False
    cholestasis_or_hemolysis: bool = False  # an explicit clinician statement (§4.1, A3)
    gi_perforation: bool = False
    scar: str | None = None  # "sjs", "ten" or "dress" recorded on drug (§9.3)
    unlisted: tuple[tuple[str, int], ...] = ()  # (term, grade) of grade ≥ 3 toxicities with no rule (§4.7)
    cpk_over_5x_uln_occurrences: int = 0
    life_threatening_bradycardia_occurrences: int = 0
    withheld: dict[str, Any] | None = None
    # Lab values as they stood at each earlier result time during the hold (oldest first):
    # a worse result since superseded still tightens the hold (§4.8).
    during_hold: list[Snapshot] = field(default_factory=list)
    regime: str = "us"
    starting_dose_mg_bid: int | None = None


@dataclass
class Outcome:
    """What one rule asks for."""

    rule: str
    kind: Kind
    resume_when: list[dict[str, Any]] = field(default_factory=list)
    analytes: tuple[str, ...] = ()  # the inputs that triggered it


@dataclass
class Finding:
    """A fired rule: one outcome, or several options the prescriber chooses between
    (the first is the reference's default reading). No options: information only."""

    rule: str
    options: list[Outcome]

    @property
    def holds(self) -> bool:
        return any(o.kind.holds for o in self.options)


# --- recovery criteria --------------------------------------------------------------------


def _criterion(analyte: str, max_x_uln: str, text: str, or_baseline: bool = True) -> dict[str, Any]:
    return {"analyte": analyte, "max_x_uln": float(max_x_uln), "or_baseline": or_baseline, "text": text}


def _clinician(fact: str, text: str, analyte: str | None = None) -> dict[str, Any]:
    """A criterion only a clinician's record can meet (work-up result, causality). The
    analyte, when given, is what the recheck interval of the hold covers meanwhile."""
    return {"analyte": analyte, "clinician": fact, "text": text}


HR_RECOVERY = {"analyte": "heart_rate", "min": 60, "or_asymptomatic": True,
               "text": "asymptomatic (grade ≤ 1) or heart rate ≥ 60 bpm (reference §4.4)"}

# What a clinician's record must say for each clinician criterion to be met.
CLINICIAN_FACTS: dict[str, Callable[[Case], bool]] = {
    "ild_causality": lambda c: not c.ild_under_investigation,
    "hemolysis_workup": lambda c: c.hemolysis_confirmed is not None,
    "hemolysis_resolved": lambda c: c.hemolysis_resolved or c.hemolysis_confirmed is False,
}


def _since(case: Case) -> datetime | None:
    raw = (case.withheld or {}).get("since")
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            return None
    return None


def _fresh(lab: Lab | None, case: Case) -> Lab | None:
    """A result counts for recovery only when taken after the hold began."""
    since = _since(case)
    if lab is None or since is None or lab.collected_at is None:
        return lab
    try:
        return lab if lab.collected_at >= since else None
    except TypeError:  # naive against aware: the caller gave no zone; do not guess
        return lab


def criterion_met(c: dict[str, Any], case: Case) -> bool:
    """True when the newest results meet one recovery criterion (reference §4 conventions:
    the stated multiple of the ULN, or the patient's own baseline)."""
    fact = c.get("clinician")
    if fact:
        check = CLINICIAN_FACTS.get(fact) if isinstance(fact, str) else None
        return bool(check and check(case))
    analyte = c.get("analyte")
    if analyte == "heart_rate":
        # §4.4: "asymptomatic (Grade ≤ 1) or HR ≥ 60 bpm": either one meets it.
        if c.get("or_asymptomatic") and case.bradycardia == "asymptomatic":
            return True
        hr = _fresh(case.labs.get("heart_rate"), case)
        return hr is not None and hr.value >= Fraction(str(c.get("min", 60)))
    lab = _fresh(case.labs.get(analyte), case) if isinstance(analyte, str) else None
    if not isinstance(analyte, str):
        return False
    if lab is None or lab.uln is None:
        return False
    if lab.within(Fraction(str(c["max_x_uln"]))):
        return True
    base = case.baseline.get(analyte)
    return bool(c.get("or_baseline")) and base is not None and lab.value <= base.value


def _criteria_met(finding: Finding, case: Case) -> bool:
    crit = [c for o in finding.options if o.kind.holds for c in o.resume_when]
    return bool(crit) and all(criterion_met(c, case) for c in crit)


# --- the rules ------------------------------------------------------------------------------


def _gt(lab: Lab | None, k: str) -> bool:
    return lab is not None and lab.exceeds(k)


def _hepatic(case: Case, grades: dict[str, int]) -> list[Finding]:
    alt, ast, bili = case.labs.get("alt"), case.labs.get("ast"), case.labs.get("total_bilirubin")
    found: list[Finding] = []
    over3 = tuple(a for a, lab in (("alt", alt), ("ast", ast)) if _gt(lab, "3"))
    over5 = tuple(a for a, lab in (("alt", alt), ("ast", ast)) if _gt(lab, "5"))
    bili_over2, bili_over3 = _gt(bili, "2"), _gt(bili, "3")
    h1_recovery = [_criterion(a, "3", f"{a.upper()} ≤ 3× ULN or back to baseline (reference §4.1 H1)") for a in over5]
    # Only a clinician's statement excludes H2: documented cholestasis, or hemolysis the
    # work-up confirmed (§4.1, A3); a suspicion does not.
    excluded = case.cholestasis_or_hemolysis or case.hemolysis_confirmed is True
    if over3 and bili_over2 and not excluded:
        found.append(Finding("H2", [Outcome("H2", Kind.DISCONTINUE, analytes=(*over3, "total_bilirubin"))]))
        return found  # H2 overrides H1 and H3 (§4.1 precedence)
    if over3 and bili_over2 and excluded:
        found.append(Finding("H2-EXCLUDED", []))
        if over5:  # treated as H1 although its own bilirubin clause is not met (§4.1, A3)
            found.append(Finding("H1", [Outcome("H1", Kind.WITHHOLD_REDUCED, h1_recovery, over5)]))
    elif over5 and not bili_over2:
        found.append(Finding("H1", [Outcome("H1", Kind.WITHHOLD_REDUCED, h1_recovery, over5)]))
    if bili_over3:
        crit = [_criterion("total_bilirubin", "1.5", "total bilirubin ≤ 1.5× ULN or back to baseline (reference §4.1 H3)")]
        found.append(Finding("H3", [Outcome("H3", Kind.WITHHOLD_REDUCED, crit, ("total_bilirubin",))]))
    return found


def _ild(case: Case, grades: dict[str, int]) -> list[Finding]:
    if case.ild:
        return [Finding("ILD", [Outcome("ILD", Kind.DISCONTINUE)])]
    if case.ild_under_investigation:
        crit = [_clinician("ild_causality", "causality of the ILD recorded by a prescriber (reference §4.2)")]
        return [Finding("ILD-INVESTIGATING", [Outcome("ILD-INVESTIGATING", Kind.WITHHOLD_PENDING, crit)])]
    if case.ild_other_cause and case.withheld:
        return [Finding("ILD-OTHER-CAUSE", [])]
    if case.respiratory_symptoms:
        return [Finding("ILD-SYMPTOMS", [Outcome("ILD-SYMPTOMS", Kind.REVIEW)])]
    return []


def _renal(case: Case, grades: dict[str, int]) -> list[Finding]:
    g = grades.get("creatinine")
    if g == 4:
        return [Finding("R4", [Outcome("R4", Kind.DISCONTINUE, analytes=("creatinine",))])]
    if g == 3:
        crit = [_criterion("creatinine", "1.5", "serum creatinine ≤ 1.5× ULN (reference §4.3)", or_baseline=False)]
        return [Finding("R3", [Outcome("R3", Kind.WITHHOLD_REDUCED, crit, ("creatinine",))])]
    return []


def _bradycardia(case: Case, grades: dict[str, int]) -> list[Finding]:
    b = case.bradycardia
    handled = case.contributing_medication and case.contributing_medication_adjusted
    if b == "asymptomatic":
        return [Finding("B0", [Outcome("B0", Kind.CONTINUE, analytes=("heart_rate",))])]
    if b == "symptomatic":
        if handled:
            return [Finding("B1", [Outcome("B1", Kind.WITHHOLD_SAME, [HR_RECOVERY]),
                                   Outcome("B1", Kind.WITHHOLD_REDUCED, [HR_RECOVERY])])]
        return [Finding("B2", [Outcome("B2", Kind.WITHHOLD_REDUCED, [HR_RECOVERY])])]
    if b == "life_threatening":
        if case.life_threatening_bradycardia_occurrences >= 1:
            return [Finding("B5", [Outcome("B5", Kind.DISCONTINUE)])]
        if handled:
            return [Finding("B4", [Outcome("B4", Kind.WITHHOLD_REDUCED, [HR_RECOVERY])])]
        return [Finding("B3", [Outcome("B3", Kind.DISCONTINUE)])]
    return []


def _cpk(case: Case, grades: dict[str, int]) -> list[Finding]:
    cpk = case.labs.get("cpk")
    if not _gt(cpk, "5"):
        return []
    crit = [_criterion("cpk", "2.5", "CPK ≤ 2.5× ULN or back to baseline (reference §4.5)")]
    if _gt(cpk, "10") or case.cpk_over_5x_uln_occurrences >= 1:
        return [Finding("C2", [Outcome("C2", Kind.WITHHOLD_REDUCED, crit, ("cpk",))])]
    return [Finding("C1", [Outcome("C1", Kind.WITHHOLD_SAME, crit, ("cpk",))])]


def _hemolysis(case: Case, grades: dict[str, int]) -> list[Finding]:
    hb = case.labs.get("hemoglobin")
    low = hb is not None and hb.value < 10
    if case.hemolysis_confirmed:
        # A confirmation counts whatever today's hemoglobin: it often arrives after the
        # value has recovered (§4.6: "if confirmed … resume one level lower or discontinue").
        crit = [_clinician("hemolysis_resolved", "hemolytic anemia resolved (reference §4.6)", "hemoglobin")]
        return [Finding("HA2", [Outcome("HA2", Kind.WITHHOLD_REDUCED, crit, ("hemoglobin",)),
                                Outcome("HA2", Kind.DISCONTINUE, analytes=("hemoglobin",))])]
    if case.hemolysis_confirmed is False and (low or case.withheld):
        return [Finding("HA-NOT-CONFIRMED", [Outcome("HA-NOT-CONFIRMED", Kind.REVIEW, analytes=("hemoglobin",))])]
    if not low:
        return []
    if case.hemolysis_suspected:
        crit = [_clinician("hemolysis_workup", "hemolysis work-up result recorded (reference §4.6)", "hemoglobin")]
        return [Finding("HA1", [Outcome("HA1", Kind.WITHHOLD_PENDING, crit, ("hemoglobin",))])]
    return [Finding("HB-LOW", [Outcome("HB-LOW", Kind.REVIEW, analytes=("hemoglobin",))])]


def _other(case: Case, grades: dict[str, int]) -> list[Finding]:
    """Reference §4.7 and §9.3: events the dose table does not list."""
    found: list[Finding] = []
    if case.scar in ("sjs", "ten", "dress"):
        found.append(Finding("SCAR", [Outcome("SCAR", Kind.DISCONTINUE)]))
    if case.gi_perforation:
        found.append(Finding("GI", [Outcome("GI", Kind.DISCONTINUE)]))
    if case.unlisted:
        found.append(Finding("UNLISTED", [Outcome("UNLISTED", Kind.REVIEW)]))
    return found


RuleCheck = Callable[[Case, dict[str, int]], list[Finding]]
LAB_RULES: tuple[RuleCheck, ...] = (_hepatic, _renal, _cpk)
ALL_RULES: tuple[RuleCheck, ...] = (_ild, _hepatic, _renal, _bradycardia, _cpk, _hemolysis, _other)
# Analytes whose grade ≥ 3 the rules above answer; any other grade ≥ 3 is §4.7's.
ANALYTES_WITH_RULES = frozenset({"alt", "ast", "total_bilirubin", "creatinine", "cpk"})


def _findings(case: Case, grades: dict[str, int], rules: tuple[RuleCheck, ...] = ALL_RULES) -> list[Finding]:
    return [f for rule in rules for f in rule(case, grades)]


# --- advisories: (predicate, text), shown with the recommendation ----------------------------

ADVISORIES: tuple[tuple[Callable[[Case, list[str]], bool], Callable[[Case], str]], ...] = (
    (lambda c, fired: bool({"C1", "C2"} & set(fired)),
     lambda c: f"Earlier episodes of CPK > 5× ULN on alectinib: {c.cpk_over_5x_uln_occurrences} (counted over the "
               "whole course; the label does not define the window, reference §4.5, A5)."),
    (lambda c, fired: "heart_rate" in c.labs and c.labs["heart_rate"].value < 60 and c.bradycardia is None,
     lambda c: "Heart rate < 60 bpm: record whether the bradycardia is asymptomatic, symptomatic or "
               "life-threatening; the grade is clinical, never from the rate alone (reference §4.4, §8.5)."),
    (lambda c, fired: c.starting_dose_mg_bid == 450,
     lambda c: "Started at 450 mg (Child-Pugh C): the label gives no separate ladder; 450 → 300 → stop is "
               "applied — confirm with the prescriber (reference §3)."),
    (lambda c, fired: "H2" in fired and c.hemolysis_suspected and c.hemolysis_confirmed is None,
     lambda c: "Hemolysis is suspected but not yet confirmed: H2 applies now (only a confirmed hemolysis or "
               "documented cholestasis excludes it), and discontinuation is permanent — the prescriber may weigh "
               "the work-up result (reference §4.1, A3; §4.6)."),
    (lambda c, fired: c.scar == "agep",
     lambda c: "AGEP recorded: re-challenge only with a prescriber's written override (reference §9.3)."),
)


def _review_lines(case: Case, fired: list[str], grades: dict[str, int]) -> list[str]:
    lines = [RULES[r].review for r in dict.fromkeys(fired) if RULES[r].review]
    lines += [text(case) for applies, text in ADVISORIES if applies(case, fired)]
    lines += [f"Grade {g} toxicity without a label rule ({term}): no dose change is suggested; prescriber review "
              "(reference §4.7)." for term, g in case.unlisted]
    return lines


# --- combining --------------------------------------------------------------------------------


def _result(kind: Kind, dose: int, resume_when: list[dict[str, Any]]) -> dict[str, Any]:
    """The action one outcome kind means at the current dose (the ladder of §3)."""
    if kind is Kind.CONTINUE:
        return {"action": CONTINUE}
    if kind is Kind.REVIEW:
        return {"action": REVIEW}
    if kind is Kind.DISCONTINUE:
        return {"action": DISCONTINUE, "information": _alternatives()}
    if kind is Kind.WITHHOLD_SAME:
        resume_dose, resume = dose, "same"
    elif kind is Kind.WITHHOLD_PENDING:
        resume_dose, resume = None, None  # decided after the clinician's input
    else:
        lower = reduce_one_level(dose)
        if lower is None:
            return {"action": DISCONTINUE, "information": _alternatives()}
        resume_dose, resume = lower, "reduced"
    return {"action": WITHHOLD, "resume": resume, "resume_dose_mg_bid": resume_dose, "resume_when": resume_when}


def _alternatives() -> list[str]:
    return [f"Reported in the literature: after alectinib was stopped, patients were switched to another ALK "
            f"inhibitor ({', '.join(ALTERNATIVES)}) — information only, not a recommendation ({ALTERNATIVES_SOURCE})."]


def _key(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c.get("analyte"), c.get("max_x_uln"), c.get("min"), c.get("clinician"), c.get("text"))


def _dedupe(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for c in criteria:
        if _key(c) not in seen:
            seen.add(_key(c))
            out.append(c)
    return out


def _combine(findings: list[Finding], dose: int, review: list[str], fired: list[str]) -> dict[str, Any]:
    """§4.8: the most protective outcome wins; union of recovery criteria; one step."""
    deciding = [f for f in findings if f.options]
    if not deciding:
        return {"action": CONTINUE}
    resume_when = _dedupe([c for f in deciding for o in f.options if o.kind.holds for c in o.resume_when])
    if len([f for f in deciding if f.holds]) > 1:
        review.append("Several rules ask for a hold: one reduction step is applied for this hold; the label does "
                      "not say whether simultaneous triggers mean two reductions (reference §4.1, §4.8).")
    # The floor is what the rules together require at least. A rule that offers a choice
    # keeps those of its options that are at least as protective as the floor.
    floor = max(min(o.kind for o in f.options) for f in deciding)
    kinds: list[Kind] = []
    for f in deciding:
        if len(f.options) > 1:
            kinds += [o.kind for o in f.options if o.kind >= floor and o.kind not in kinds]
    results: list[dict[str, Any]] = []
    for k in kinds or [floor]:
        r = _result(k, dose, resume_when if k.holds else [])
        if r not in results:
            results.append(r)
    if any(o.kind is Kind.WITHHOLD_REDUCED and reduce_one_level(dose) is None for f in deciding for o in f.options):
        fired.append("FLOOR")
    if len(results) == 1:
        return results[0]
    return {"action": DECISION, "options": results}


# --- while the drug is held -------------------------------------------------------------------


def _tighten(option: dict[str, Any], held_dose: int | None, held_criteria: list[dict[str, Any]], dose: int) -> dict[str, Any]:
    """One withhold option merged with the hold in force: the lower resume dose, every
    criterion of both (§4.8). Other actions pass through."""
    if option["action"] != WITHHOLD:
        return option
    doses = [d for d in (option.get("resume_dose_mg_bid"), held_dose) if d is not None]
    new_dose = min(doses) if doses else None
    return {**option, "resume_dose_mg_bid": new_dose,
            "resume": None if new_dose is None else ("same" if new_dose == dose else "reduced"),
            "resume_when": _dedupe(list(held_criteria) + list(option.get("resume_when", [])))}


def _earlier_holds(case: Case) -> list[Finding]:
    """The holds that earlier results during the hold asked for, at the time they arrived.
    Only holds: a discontinuation asked for by an earlier result was put to the prescriber
    when it was new."""
    earlier = []
    for snapshot in case.during_hold:
        snap_case = replace(case, labs=snapshot.labs, withheld=None, during_hold=[],
                            cpk_over_5x_uln_occurrences=snapshot.cpk_over_5x_uln_occurrences)
        for f in _findings(snap_case, grades_of(snap_case), LAB_RULES):
            options = [o for o in f.options if o.kind.holds]
            if options:
                earlier.append(Finding(f.rule, options))
    return earlier


def _same_hold(option: dict[str, Any], held_dose: int | None, held_criteria: list[dict[str, Any]]) -> bool:
    return (option["action"] == WITHHOLD and option.get("resume_dose_mg_bid") == held_dose
            and {_key(c) for c in option.get("resume_when", [])} == {_key(c) for c in held_criteria})


def _while_withheld(case: Case, findings: list[Finding], grades: dict[str, int],
                    review: list[str], fired: list[str]) -> dict[str, Any]:
    """The drug is held. A new result can only make the hold stricter; otherwise the
    hold's own recovery condition decides between holding on and resuming.

    - Discontinuation asked for by today's data: discontinue.
    - Results during the hold (today's and earlier ones since superseded) that ask for a
      hold tighten it: the lower resume dose and the union of criteria (§4.8). The output
      says whether that changes the hold in force (`hold_changed`).
    - A rule still pressing today (its own criterion not met) keeps the hold.
    - Otherwise, when every criterion is met, resume; with no resume dose decided (a
      work-up or causality hold answered negatively), resume at the pre-hold dose with a
      prescriber review (§4.6, §4.2 ambiguities).
    """
    held = case.withheld or {}
    held_dose: int | None = held.get("resume_dose_mg_bid")
    held_criteria: list[dict[str, Any]] = list(held.get("resume_when") or [])
    dose = case.dose_mg_bid

    now = _combine(findings, dose, review, fired)
    if now["action"] == DISCONTINUE:
        return now
    earlier = _earlier_holds(case)
    holding = [f for f in findings if f.holds] + earlier
    base: dict[str, Any] = _combine(holding, dose, [], []) if holding else {"action": WITHHOLD, "resume_when": []}
    options: list[dict[str, Any]] = base["options"] if base["action"] == DECISION else [base]
    if now["action"] == DECISION:  # a choice asked for today (HA2, B1) stays a choice
        options = now["options"]
    merged = [_tighten(o, held_dose, held_criteria, dose) for o in options]
    first = merged[0]
    changed = not _same_hold(first, held_dose, held_criteria)
    new_rules = [f.rule for f in earlier if f.rule not in fired]
    if changed:
        fired.extend(dict.fromkeys(new_rules))
        fired.append("HOLD-TIGHTENED")
    pressing = [f for f in findings if f.holds and not _criteria_met(f, case)]
    if len(merged) > 1:
        # A choice already made when the hold was accepted (B1's same or reduced dose,
        # HA2's reduce) is not asked again while the reason for it persists.
        same = [o for o in merged if _same_hold(o, held_dose, held_criteria)]
        if same and pressing:
            return {**same[0], "hold_changed": False}
        if not same:
            return {"action": DECISION, "options": merged, "hold_changed": True}
        first = same[0]
    elif pressing:
        return {**first, "hold_changed": changed}
    criteria = first.get("resume_when", [])
    if criteria and all(criterion_met(c, case) for c in criteria):
        fired.append("RECOVERED")
        resume_dose = first.get("resume_dose_mg_bid")
        if resume_dose is None:
            resume_dose = dose
            source = "§4.6, A4" if any(c.get("clinician", "").startswith("hemolysis") for c in criteria
                                       if isinstance(c.get("clinician"), str)) else "§4.2, A9"
            review.append("No resume dose was set for this hold (it waited for a work-up or a causality): resume at "
                          f"the dose in use before it, no change; prescriber review (reference {source}).")
        return {"action": RESUME, "resume": "same" if resume_dose == dose else "reduced",
                "resume_dose_mg_bid": resume_dose, "resume_when": criteria}
    if now["action"] == REVIEW and not changed:
        return {"action": REVIEW}
    return {**first, "action": WITHHOLD, "hold_changed": changed}


# --- entry point ---------------------------------------------------------------------------------


def grades_of(case: Case) -> dict[str, int]:
    grades: dict[str, int] = {}
    for analyte, lab in case.labs.items():
        g = grade_lab(analyte, lab, case.baseline.get(analyte))
        if g.grade is not None:
            grades[analyte] = g.grade
    return grades


def assess(case: Case) -> dict[str, Any]:
    """One recommendation for the case, with the grade of every input and every rule
    that fired. See the module docstring for the conventions."""
    if case.dose_mg_bid not in LADDER:
        raise InputError(f"dose_mg_bid must be 600, 450 or 300, not {case.dose_mg_bid!r}.")
    grades = grades_of(case)
    unanswered = tuple((a.replace("_", " "), g) for a, g in grades.items()
                       if g >= 3 and a not in ANALYTES_WITH_RULES and a != "hemoglobin")
    if unanswered:
        case = replace(case, unlisted=case.unlisted + unanswered)
    findings = _findings(case, grades)
    fired = [f.rule for f in findings]
    triggers = {f.rule: sorted({a for o in f.options for a in o.analytes}) for f in findings}
    review: list[str] = []

    if case.withheld:
        result = _while_withheld(case, findings, grades, review, fired)
    else:
        result = _combine(findings, case.dose_mg_bid, review, fired)

    if case.regime == "jp_advanced":
        fired.append("REGIME")
        if result["action"] not in (CONTINUE, REVIEW):
            result = {"action": DECISION, "options": [result] if result["action"] != DECISION else result["options"]}
    review = _review_lines(case, fired, grades) + review

    out = {
        "action": result["action"],
        "resume": result.get("resume"),
        "resume_dose_mg_bid": result.get("resume_dose_mg_bid"),
        "resume_when": result.get("resume_when", []),
        "grades": grades,
        "rules": [{**RULES[r].as_dict(), "analytes": triggers.get(r, [])} for r in dict.fromkeys(fired)],
        "review": review,
    }
    if result["action"] == DECISION:
        out["options"] = result["options"]
    if result["action"] == DISCONTINUE:
        out["information"] = result.get("information") or _alternatives()
    if "hold_changed" in result:
        out["hold_changed"] = result["hold_changed"]
    return out
