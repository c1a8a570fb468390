"""The alectinib label's dose-modification rules, as data plus small functions. Pure
Python: no Django, no database; `Case` in, `Recommendation` out.

Source of every rule: ../shared/clinical-reference.md §3–§4 (US PI §2/§5, EU SmPC §4.2/4.4,
Swissmedic DHPC, ESMO Open 2022 Table 4). Conventions from the reference:
- "> k × ULN" is strictly greater and "≤ k × ULN" includes equality; multiples are
  compared with Decimal (§4, A7);
- when several rules fire the most protective wins — discontinue > withhold then reduce >
  withhold then same dose > continue — the resume condition is the union of all recovery
  criteria, and a hold costs one reduction step however many rules fired (§4.8);
- a reduction below 300 mg twice daily is a permanent discontinuation (§3);
- where the reference marks a point as ambiguous, the outcome is `clinician_decision`
  with the readings as options, or a `review` line; the engine never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from protocols import ctcae
from protocols.analytes import get_analyte
from protocols.dosing import LADDER, reduce_one_level
from protocols.errors import InputError

D = Decimal

CONTINUE, WITHHOLD, RESUME, DISCONTINUE, DECISION = "continue", "withhold", "resume", "discontinue", "clinician_decision"
ACTIONS = (CONTINUE, WITHHOLD, RESUME, DISCONTINUE, DECISION)

# Information shown with a discontinuation (reference §9.1: switching to another ALK
# inhibitor was reported); the app does not recommend a drug.
ALTERNATIVES = ["brigatinib", "lorlatinib"]
ALTERNATIVES_SOURCE = "Reference §9.1 (S11; secondary summaries)"


@dataclass(frozen=True)
class Rule:
    id: str
    source: str
    text: str

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
             "ALT/AST > 3× ULN with bilirubin > 2× ULN, but cholestasis or hemolysis is documented: the combined "
             "rule (H2) does not apply; the withhold rules H1/H3 are applied instead and a prescriber reviews."),
        Rule("ILD", "Reference §4.2 (US PI §2 table, §5.2; S2; S3)",
             "Treatment-related interstitial lung disease / pneumonitis of any grade: discontinue permanently."),
        Rule("ILD-INVESTIGATING", "Reference §4.2 ambiguity A9 (US PI §5.2)",
             "ILD / pneumonitis diagnosed, cause under investigation: withhold at once; discontinue permanently if "
             "no other cause is identified."),
        Rule("R3", "Reference §4.3 (US PI §2, §5.3; S2; S6)",
             "Grade 3 renal impairment: withhold until serum creatinine ≤ 1.5× ULN, then resume one dose level lower."),
        Rule("R4", "Reference §4.3 (US PI §5.3; S6)", "Grade 4 renal impairment: discontinue permanently."),
        Rule("B0", "Reference §4.4 B0 (US PI §5.4; S3; S7)",
             "Asymptomatic bradycardia: no dose change; monitor heart rate and blood pressure."),
        Rule("B1", "Reference §4.4 B1 (EU SmPC table; US PI §5.4 text differs, A1)",
             "Symptomatic bradycardia, not life-threatening, with a contributing medicine identified and stopped or "
             "dose-adjusted: withhold until asymptomatic or heart rate ≥ 60 bpm, then resume at the previous dose "
             "(table); the US warning text says a reduced dose. The prescriber chooses."),
        Rule("B2", "Reference §4.4 B2 (US PI §2; S3; S6)",
             "Symptomatic bradycardia, not life-threatening, with no contributing medicine, or one not stopped or "
             "adjusted: withhold until asymptomatic or heart rate ≥ 60 bpm, then resume one dose level lower."),
        Rule("B3", "Reference §4.4 B3 (US PI §2; S3; S6)",
             "Life-threatening bradycardia with no contributing medicine stopped or adjusted: discontinue permanently."),
        Rule("B4", "Reference §4.4 B4 (US PI §2; S3)",
             "Life-threatening bradycardia with a contributing medicine identified and stopped or adjusted: withhold "
             "until asymptomatic or heart rate ≥ 60 bpm, then resume one dose level lower with frequent monitoring."),
        Rule("B5", "Reference §4.4 B5 (US PI §5.4; S3; S6)",
             "Life-threatening bradycardia that recurs: discontinue permanently."),
        Rule("C1", "Reference §4.5 C1 (ESMO Open 2022 Table 4 citing US PI and EU SmPC)",
             "CPK > 5× ULN (first occurrence, ≤ 10× ULN): withhold until CPK is back to baseline or ≤ 2.5× ULN, "
             "then resume at the same dose."),
        Rule("C2", "Reference §4.5 C2 (ESMO Open 2022 Table 4)",
             "CPK > 10× ULN, or a second occurrence of CPK > 5× ULN: withhold until CPK is back to baseline or "
             "≤ 2.5× ULN, then resume one dose level lower."),
        Rule("HA1", "Reference §4.6 (Swissmedic DHPC; HSA letter; S3; S6)",
             "Hemoglobin < 10 g/dL with hemolytic anemia suspected: withhold and start the laboratory work-up."),
        Rule("HA2", "Reference §4.6 ambiguity A4",
             "Hemolytic anemia confirmed: keep withheld until resolution, then resume one dose level lower or "
             "discontinue permanently. The prescriber chooses."),
        Rule("FLOOR", "Reference §3 (US PI §2 dose-reduction table)",
             "A reduction below 300 mg twice daily is not possible: discontinue permanently."),
        Rule("RECOVERED", "Reference §4 (recovery criteria of the rules that caused the hold)",
             "The recovery condition of the hold is met: resume at the stated dose."),
        Rule("REGIME", "Reference §2 ambiguity A13",
             "The 600/450/300 ladder applies to the US, EU and Japanese adjuvant labels only; for this regime the "
             "prescriber decides."),
    ]
}

# Outcome ranks for §4.8 (higher is more protective).
# A hold pending a clinician's input (work-up, causality) sits between "same" and "reduced":
# a reducing rule alongside it decides the resume dose, and its criterion keeps the hold.
_RANK = {CONTINUE: 0, "withhold_same": 2, "withhold_pending": 2.5, "withhold_reduced": 3, DISCONTINUE: 4}


@dataclass(frozen=True)
class Lab:
    value: Decimal
    uln: Decimal | None = None
    lln: Decimal | None = None

    @property
    def x_uln(self) -> Decimal | None:
        return self.value / self.uln if self.uln else None


@dataclass
class Case:
    dose_mg_bid: int
    labs: dict[str, Lab] = field(default_factory=dict)
    baseline: dict[str, Lab] = field(default_factory=dict)
    ild: bool = False
    ild_under_investigation: bool = False
    bradycardia: str | None = None  # None, "asymptomatic", "symptomatic", "life_threatening"
    contributing_medication: bool = False
    contributing_medication_adjusted: bool = False
    hemolysis_suspected: bool = False
    hemolysis_confirmed: bool | None = None
    cholestasis_or_hemolysis: bool = False
    cpk_over_5x_uln_occurrences: int = 0
    life_threatening_bradycardia_occurrences: int = 0
    withheld: dict[str, Any] | None = None
    regime: str = "us"
    starting_dose_mg_bid: int | None = None


@dataclass
class Outcome:
    """What one rule asks for. `kind` is one of continue, withhold_same, withhold_reduced,
    withhold_pending (held until a clinician's input), discontinue."""

    rule: str
    kind: str
    resume_when: list[dict[str, Any]] = field(default_factory=list)
    analytes: tuple[str, ...] = ()  # the inputs that triggered it


@dataclass
class Finding:
    """A fired rule: one outcome, or several options the prescriber chooses between
    (the first is the reference's default reading)."""

    rule: str
    options: list[Outcome]


# --- recovery criteria --------------------------------------------------------------------


def _criterion(analyte: str, max_x_uln: str, text: str, or_baseline: bool = True) -> dict[str, Any]:
    return {"analyte": analyte, "max_x_uln": float(max_x_uln), "or_baseline": or_baseline, "text": text}


HR_RECOVERY = {"analyte": "heart_rate", "min": 60, "or_asymptomatic": True,
               "text": "asymptomatic (grade ≤ 1) or heart rate ≥ 60 bpm (reference §4.4)"}


def criterion_met(c: dict[str, Any], case: Case) -> bool:
    """True when the newest results meet one recovery criterion (reference §4 conventions)."""
    analyte = c.get("analyte")
    if c.get("clinician"):
        return False  # only a prescriber can clear it
    if analyte == "heart_rate":
        if c.get("or_asymptomatic") and case.bradycardia == "asymptomatic":
            return True
        lab = case.labs.get("heart_rate")
        return lab is not None and lab.value >= D(str(c.get("min", 60))) and case.bradycardia in (None, "asymptomatic")
    lab = case.labs.get(analyte)
    if lab is None or lab.uln is None:
        return False
    if lab.value <= D(str(c["max_x_uln"])) * lab.uln:
        return True
    base = case.baseline.get(analyte)
    return bool(c.get("or_baseline")) and base is not None and lab.value <= base.value


# --- the rules ------------------------------------------------------------------------------


def _gt(lab: Lab | None, k: str) -> bool:
    return lab is not None and lab.uln is not None and lab.value > D(k) * lab.uln


def _hepatic(case: Case) -> list[Finding]:
    alt, ast, bili = case.labs.get("alt"), case.labs.get("ast"), case.labs.get("total_bilirubin")
    found: list[Finding] = []
    over3 = tuple(a for a, lab in (("alt", alt), ("ast", ast)) if _gt(lab, "3"))
    over5 = tuple(a for a, lab in (("alt", alt), ("ast", ast)) if _gt(lab, "5"))
    bili_over2, bili_over3 = _gt(bili, "2"), _gt(bili, "3")
    h1_recovery = [_criterion(a, "3", f"{a.upper()} ≤ 3× ULN or back to baseline (reference §4.1 H1)") for a in over5]
    if over3 and bili_over2 and not case.cholestasis_or_hemolysis:
        found.append(Finding("H2", [Outcome("H2", DISCONTINUE, analytes=(*over3, "total_bilirubin"))]))
        return found  # H2 overrides H1 and H3 (§4.1 precedence)
    if over3 and bili_over2 and case.cholestasis_or_hemolysis:
        found.append(Finding("H2-EXCLUDED", []))
        if over5:  # treated as H1 although its own bilirubin clause is not met (§4.1, A3)
            found.append(Finding("H1", [Outcome("H1", "withhold_reduced", h1_recovery, over5)]))
    elif over5 and not bili_over2:
        found.append(Finding("H1", [Outcome("H1", "withhold_reduced", h1_recovery, over5)]))
    if bili_over3:
        crit = [_criterion("total_bilirubin", "1.5", "total bilirubin ≤ 1.5× ULN or back to baseline (reference §4.1 H3)")]
        found.append(Finding("H3", [Outcome("H3", "withhold_reduced", crit, ("total_bilirubin",))]))
    return found


def _ild(case: Case) -> list[Finding]:
    if case.ild:
        return [Finding("ILD", [Outcome("ILD", DISCONTINUE)])]
    if case.ild_under_investigation:
        crit = [{"analyte": None, "clinician": True, "text": "causality of the ILD recorded by a prescriber (reference §4.2)"}]
        return [Finding("ILD-INVESTIGATING", [Outcome("ILD-INVESTIGATING", "withhold_pending", crit)])]
    return []


def _renal(case: Case, grades: dict[str, int]) -> list[Finding]:
    g = grades.get("creatinine")
    if g == 4:
        return [Finding("R4", [Outcome("R4", DISCONTINUE, analytes=("creatinine",))])]
    if g == 3:
        crit = [_criterion("creatinine", "1.5", "serum creatinine ≤ 1.5× ULN (reference §4.3)", or_baseline=False)]
        return [Finding("R3", [Outcome("R3", "withhold_reduced", crit, ("creatinine",))])]
    return []


def _bradycardia(case: Case) -> list[Finding]:
    b = case.bradycardia
    handled = case.contributing_medication and case.contributing_medication_adjusted
    if b == "asymptomatic":
        return [Finding("B0", [Outcome("B0", CONTINUE, analytes=("heart_rate",))])]
    if b == "symptomatic":
        if handled:
            return [Finding("B1", [Outcome("B1", "withhold_same", [HR_RECOVERY]),
                                   Outcome("B1", "withhold_reduced", [HR_RECOVERY])])]
        return [Finding("B2", [Outcome("B2", "withhold_reduced", [HR_RECOVERY])])]
    if b == "life_threatening":
        if case.life_threatening_bradycardia_occurrences >= 1:
            return [Finding("B5", [Outcome("B5", DISCONTINUE)])]
        if handled:
            return [Finding("B4", [Outcome("B4", "withhold_reduced", [HR_RECOVERY])])]
        return [Finding("B3", [Outcome("B3", DISCONTINUE)])]
    return []


def _cpk(case: Case) -> list[Finding]:
    cpk = case.labs.get("cpk")
    if not _gt(cpk, "5"):
        return []
    crit = [_criterion("cpk", "2.5", "CPK ≤ 2.5× ULN or back to baseline (reference §4.5)")]
    if _gt(cpk, "10") or case.cpk_over_5x_uln_occurrences >= 1:
        return [Finding("C2", [Outcome("C2", "withhold_reduced", crit, ("cpk",))])]
    return [Finding("C1", [Outcome("C1", "withhold_same", crit, ("cpk",))])]


def _hemolysis(case: Case) -> list[Finding]:
    hb = case.labs.get("hemoglobin")
    if hb is None or not hb.value < D(10):
        return []
    if case.hemolysis_confirmed:
        crit = [{"analyte": None, "clinician": True, "text": "hemolytic anemia resolved (reference §4.6)"}]
        return [Finding("HA2", [Outcome("HA2", "withhold_reduced", crit, ("hemoglobin",)),
                                Outcome("HA2", DISCONTINUE, analytes=("hemoglobin",))])]
    if case.hemolysis_suspected and case.hemolysis_confirmed is None:
        crit = [{"analyte": None, "clinician": True, "text": "hemolysis work-up result (reference §4.6)"}]
        return [Finding("HA1", [Outcome("HA1", "withhold_pending", crit, ("hemoglobin",))])]
    return []


# --- combining --------------------------------------------------------------------------------


def _apply_ladder(kind: str, dose: int) -> tuple[str, int | None, str | None]:
    """(action, resume dose, resume) for one outcome kind at the current dose."""
    if kind == CONTINUE:
        return CONTINUE, None, None
    if kind == DISCONTINUE:
        return DISCONTINUE, None, None
    if kind == "withhold_same":
        return WITHHOLD, dose, "same"
    if kind == "withhold_pending":
        return WITHHOLD, None, None
    lower = reduce_one_level(dose)
    if lower is None:
        return DISCONTINUE, None, None
    return WITHHOLD, lower, "reduced"


def _result(kind: str, dose: int, resume_when: list[dict[str, Any]]) -> dict[str, Any]:
    action, resume_dose, resume = _apply_ladder(kind, dose)
    out: dict[str, Any] = {"action": action}
    if action == WITHHOLD:
        out.update(resume=resume, resume_dose_mg_bid=resume_dose, resume_when=resume_when)
    if action == DISCONTINUE:
        out["information"] = _alternatives()
    return out


def _alternatives() -> list[str]:
    return [f"Another ALK inhibitor ({', '.join(ALTERNATIVES)}) was used after alectinib was stopped — "
            f"information only, {ALTERNATIVES_SOURCE}."]


def _dedupe(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for c in criteria:
        key = (c.get("analyte"), c.get("max_x_uln"), c.get("min"), c.get("text"))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _combine(findings: list[Finding], dose: int, review: list[str], fired: list[str]) -> dict[str, Any]:
    """§4.8: the most protective outcome wins; union of recovery criteria; one step."""
    deciding = [f for f in findings if f.options]
    if not deciding:
        return {"action": CONTINUE}
    resume_when = _dedupe([c for f in deciding for o in f.options if _RANK[o.kind] >= 2 for c in o.resume_when])
    withholds = [f for f in deciding if any(o.kind.startswith("withhold") for o in f.options)]
    if len(withholds) > 1:
        review.append("Several rules ask for a hold: one reduction step is applied for this hold; the label does "
                      "not say whether simultaneous triggers mean two reductions (reference §4.1, §4.8).")
    # The floor is what the rules together require at least. A rule that offers a choice
    # keeps those of its options that are at least as protective as the floor.
    floor_kind = max((min(f.options, key=lambda o: _RANK[o.kind]).kind for f in deciding), key=_RANK.__getitem__)
    floor = _RANK[floor_kind]
    kinds: list[str] = []
    for f in deciding:
        if len(f.options) > 1:
            kinds += [o.kind for o in f.options if _RANK[o.kind] >= floor and o.kind not in kinds]
    kinds = kinds or [floor_kind]
    results = []
    for k in kinds:
        r = _result(k, dose, resume_when if k.startswith("withhold") else [])
        if r not in results:
            results.append(r)
    if any(o.kind == "withhold_reduced" and reduce_one_level(dose) is None for f in deciding for o in f.options):
        fired.append("FLOOR")
    if len(results) == 1:
        return results[0]
    return {"action": DECISION, "options": results}


# --- entry point ---------------------------------------------------------------------------------


def grades_of(case: Case) -> dict[str, int]:
    grades: dict[str, int] = {}
    for analyte, lab in case.labs.items():
        base = case.baseline.get(analyte)
        g = ctcae.grade(analyte, lab.value, uln=lab.uln, lln=lab.lln, baseline=base.value if base else None)
        if g.grade is not None:
            grades[analyte] = g.grade
    return grades


def assess(case: Case) -> dict[str, Any]:
    """One recommendation for the case, with the grade of every input and every rule
    that fired. See the module docstring for the conventions."""
    if case.dose_mg_bid not in LADDER:
        raise InputError(f"dose_mg_bid must be 600, 450 or 300, not {case.dose_mg_bid!r}.")
    grades = grades_of(case)
    review: list[str] = []
    findings: list[Finding] = []
    findings += _ild(case)
    findings += _hepatic(case)
    findings += _renal(case, grades)
    findings += _bradycardia(case)
    findings += _cpk(case)
    findings += _hemolysis(case)
    fired = [f.rule for f in findings]
    triggers = {f.rule: sorted({a for o in f.options for a in o.analytes}) for f in findings}

    if "H2-EXCLUDED" in fired:
        review.append("Cholestasis or hemolysis is documented with ALT/AST > 3× ULN and bilirubin > 2× ULN: "
                      "the label gives no action; prescriber review (reference §4.1, A3).")
    if "R3" in fired or "R4" in fired:
        review.append("Renal impairment grade is suggested from creatinine (CTCAE 'Creatinine increased'); "
                      "the prescriber confirms the grade (reference §4.3, A2).")
    if "B1" in fired:
        review.append("Bradycardia with a contributing medicine stopped or adjusted: the table says resume at the "
                      "previous dose, the US warning text says a reduced dose (reference §4.4, A1).")
    if "B4" in fired:
        review.append("Resume with frequent heart-rate monitoring (reference §4.4 B4).")
    if any(r in fired for r in ("C1", "C2")):
        review.append(f"Earlier episodes of CPK > 5× ULN on alectinib: {case.cpk_over_5x_uln_occurrences} "
                      "(counted over the whole course; the label does not define the window, reference §4.5, A5).")
    if "HA1" in fired:
        review.append("Start the hemolysis work-up; on the result the prescriber decides (reference §4.6, A4).")
    hb = case.labs.get("hemoglobin")
    if hb is not None and hb.value < D(10) and not case.hemolysis_suspected and not case.hemolysis_confirmed:
        review.append("Hemoglobin < 10 g/dL without suspected hemolysis has no alectinib-specific rule; "
                      "prescriber review (reference §4.6).")
    hr = case.labs.get("heart_rate")
    if hr is not None and hr.value < D(60) and case.bradycardia is None:
        review.append("Heart rate < 60 bpm: record whether the bradycardia is asymptomatic, symptomatic or "
                      "life-threatening; the grade is clinical, never from the rate alone (reference §4.4, §8.5).")
    if case.ild_under_investigation and not case.ild:
        review.append("Record the ILD causality: treatment-related (no other cause) means permanent "
                      "discontinuation (reference §4.2, A9).")
    listed = {"alt", "ast", "total_bilirubin", "creatinine", "cpk", "hemoglobin"}
    for analyte, g in grades.items():
        if g >= 3 and analyte not in listed:
            review.append(f"{analyte} grade {g}: no label rule; prescriber review (reference §4.7).")
    if case.starting_dose_mg_bid == 450:
        review.append("Started at 450 mg (Child-Pugh C): the label gives no separate ladder; 450 → 300 → stop is "
                      "applied — confirm with the prescriber (reference §3).")

    result = _combine(findings, case.dose_mg_bid, review, fired)

    if case.withheld:
        result = _while_withheld(case, result, fired)

    if case.regime == "jp_advanced":
        fired.append("REGIME")
        review.append("Japanese 300 mg BID regime: the ladder logic does not apply (reference §2, A13).")
        if result["action"] not in (CONTINUE,):
            result = {"action": DECISION, "options": [result] if result["action"] != DECISION else result["options"]}

    if result["action"] == DISCONTINUE:
        result.setdefault("information", _alternatives())
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
    if "information" in result:
        out["information"] = result["information"]
    return out


def _while_withheld(case: Case, result: dict[str, Any], fired: list[str]) -> dict[str, Any]:
    """The drug is held: new toxicity can only make things more protective; otherwise
    the hold's own recovery condition decides between holding on and resuming."""
    held = case.withheld or {}
    criteria = held.get("resume_when") or []
    resume_dose = held.get("resume_dose_mg_bid")
    if result["action"] == DISCONTINUE:
        return result
    if result["action"] in (WITHHOLD, DECISION):
        # A new trigger during the hold: keep holding, the stricter resume dose wins.
        options = result["options"] if result["action"] == DECISION else [result]
        merged = []
        for opt in options:
            if opt["action"] != WITHHOLD:
                merged.append(opt)
                continue
            new_dose = opt.get("resume_dose_mg_bid")
            dose = min(d for d in (new_dose, resume_dose) if d is not None) if (new_dose or resume_dose) else None
            merged.append({**opt, "resume_dose_mg_bid": dose,
                           "resume": "reduced" if dose is not None and dose < case.dose_mg_bid else opt.get("resume"),
                           "resume_when": _dedupe(list(criteria) + list(opt.get("resume_when", [])))})
        return merged[0] if len(merged) == 1 else {"action": DECISION, "options": merged}
    if criteria and all(criterion_met(c, case) for c in criteria):
        fired.append("RECOVERED")
        return {"action": RESUME, "resume": held.get("resume"), "resume_dose_mg_bid": resume_dose, "resume_when": criteria}
    return {"action": WITHHOLD, "resume": held.get("resume"), "resume_dose_mg_bid": resume_dose, "resume_when": criteria}


# --- JSON input ---------------------------------------------------------------------------------

_CASE_KEYS = {"dose_mg_bid", "labs", "baseline", "events", "history", "withheld", "regime", "starting_dose_mg_bid"}
_EVENT_KEYS = {"ild", "ild_under_investigation", "bradycardia", "contributing_medication",
               "contributing_medication_adjusted", "hemolysis_suspected", "hemolysis_confirmed",
               "cholestasis_or_hemolysis"}
_HISTORY_KEYS = {"cpk_over_5x_uln_occurrences", "life_threatening_bradycardia_occurrences"}


def _number(raw: Any, what: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InputError(f"{what} must be a number.")
    try:
        value = D(str(raw))
    except Exception:
        raise InputError(f"{what} must be a number, not {raw!r}.") from None
    if not value.is_finite():
        raise InputError(f"{what} must be a finite number.")
    return value


def _labs(raw: Any, where: str) -> dict[str, Lab]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{where} must be an object of analytes.")
    labs = {}
    for code, item in raw.items():
        analyte = get_analyte(code)
        if not isinstance(item, dict) or "value" not in item:
            raise InputError(f"{where}.{code} must be an object with a value.")
        factor = analyte.factor(item.get("unit"))
        value = _number(item["value"], f"{where}.{code}.value") * factor
        if value < 0:
            raise InputError(f"{where}.{code}.value cannot be negative.")
        analyte.check_plausible(value)
        uln = _number(item["uln"], f"{where}.{code}.uln") * factor if item.get("uln") is not None else None
        lln = _number(item["lln"], f"{where}.{code}.lln") * factor if item.get("lln") is not None else None
        if analyte.has_uln and uln is None:
            raise InputError(f"{where}.{code} needs a uln.")
        if analyte.code == "hemoglobin" and lln is None:
            raise InputError(f"{where}.{code} needs an lln.")
        for name, limit in (("uln", uln), ("lln", lln)):
            if limit is not None and limit <= 0:
                raise InputError(f"{where}.{code}.{name} must be greater than zero.")
        labs[code] = Lab(value, uln, lln)
    return labs


def case_from_json(data: Any) -> Case:
    """Build a Case from the `assess` command's JSON (see the command's help)."""
    if not isinstance(data, dict):
        raise InputError("The case must be a JSON object.")
    unknown = set(data) - _CASE_KEYS
    if unknown:
        raise InputError(f"Unknown key(s): {', '.join(sorted(unknown))}.")
    if "dose_mg_bid" not in data:
        raise InputError("dose_mg_bid is required.")
    dose = data["dose_mg_bid"]
    if isinstance(dose, bool) or not isinstance(dose, int) or dose not in LADDER:
        raise InputError(f"dose_mg_bid must be 600, 450 or 300, not {dose!r}.")
    events = data.get("events") or {}
    history = data.get("history") or {}
    if not isinstance(events, dict) or not isinstance(history, dict):
        raise InputError("events and history must be objects.")
    if set(events) - _EVENT_KEYS:
        raise InputError(f"Unknown event(s): {', '.join(sorted(set(events) - _EVENT_KEYS))}.")
    if set(history) - _HISTORY_KEYS:
        raise InputError(f"Unknown history key(s): {', '.join(sorted(set(history) - _HISTORY_KEYS))}.")
    brady = events.get("bradycardia")
    if brady not in (None, "asymptomatic", "symptomatic", "life_threatening"):
        raise InputError("events.bradycardia must be null, asymptomatic, symptomatic or life_threatening.")
    for key in _EVENT_KEYS - {"bradycardia", "hemolysis_confirmed"}:
        if key in events and not isinstance(events[key], bool):
            raise InputError(f"events.{key} must be true or false.")
    if events.get("hemolysis_confirmed") not in (None, True, False):
        raise InputError("events.hemolysis_confirmed must be true, false or null.")
    counts = {}
    for key in _HISTORY_KEYS:
        n = history.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"history.{key} must be a whole number ≥ 0.")
        counts[key] = n
    withheld = data.get("withheld")
    if withheld is not None:
        if not isinstance(withheld, dict) or not isinstance(withheld.get("resume_when", []), list):
            raise InputError("withheld must be the engine's earlier withhold output.")
        r = withheld.get("resume_dose_mg_bid")
        if r is not None and r not in LADDER:
            raise InputError("withheld.resume_dose_mg_bid must be 600, 450 or 300.")
    regime = data.get("regime", "us")
    if regime not in ("us", "eu", "jp_adjuvant", "jp_advanced"):
        raise InputError("regime must be us, eu, jp_adjuvant or jp_advanced.")
    return Case(
        dose_mg_bid=dose,
        labs=_labs(data.get("labs"), "labs"),
        baseline=_labs(data.get("baseline"), "baseline"),
        ild=bool(events.get("ild", False)),
        ild_under_investigation=bool(events.get("ild_under_investigation", False)),
        bradycardia=brady,
        contributing_medication=bool(events.get("contributing_medication", False)),
        contributing_medication_adjusted=bool(events.get("contributing_medication_adjusted", False)),
        hemolysis_suspected=bool(events.get("hemolysis_suspected", False)),
        hemolysis_confirmed=events.get("hemolysis_confirmed"),
        cholestasis_or_hemolysis=bool(events.get("cholestasis_or_hemolysis", False)),
        cpk_over_5x_uln_occurrences=counts["cpk_over_5x_uln_occurrences"],
        life_threatening_bradycardia_occurrences=counts["life_threatening_bradycardia_occurrences"],
        withheld=withheld,
        regime=regime,
        starting_dose_mg_bid=data.get("starting_dose_mg_bid"),
    )
