"""The oral anticancer therapy program around the labs: what the patient is taught before
the first dose, whether they have capsules, and what a check-in finding means for the
rules. Pure Python: dates and numbers in, dates, numbers and sourced text out.

Sources, in ../shared/clinical-reference.md:
- §2: dose, capsules (150 mg, swallowed whole), with food, the missed-dose rule (US skip;
  EU take unless the next dose is within 6 hours, A6) and the vomited-dose rule;
- §3: the 600 → 450 → 300 mg twice-daily ladder; §9.2: desensitization steps;
- §6: photosensitivity, contraception, lactation (label content shown, not decision logic);
- §8.3, §8.6, §8.7: CTCAE v5.0 terms for the symptoms a nurse grades at a check-in;
- §4.1–§4.7 and §5: what a finding means for the rules (§8.7's closing paragraph).
Where the reference has nothing (storage, the check-in interval, how long before an unfilled
prescription is chased), the text says so and the clinic's setting decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from functools import lru_cache

from protocols.desensitization import capsules

CAPSULE_MG = 150  # reference §2: 150 mg capsules only (US/EU)
RUNS_OUT_WARNING_DAYS = 7  # issue #16: "supply runs out within 7 days"
PROJECTION_LIMIT_DAYS = 3660  # a supply projection stops after ten years


# --- education (reference §2, §6) -------------------------------------------------------------

@dataclass(frozen=True)
class Topic:
    """One item of the education checklist: what the nurse covers, in the patient's words,
    and where it comes from. `source` is None where the reference has nothing."""

    code: str
    title: str
    text: str
    source: str | None


MISSED_DOSE = {
    "us": ("If you miss a dose, skip it. Take your next dose at the usual time. Never take two doses at once.",
           "Reference §2 (US PI §2; S2; S8), A6: the US rule"),
    "eu": ("If you miss a dose, take it unless your next dose is due within 6 hours. Never take two doses at once.",
           "Reference §2 (EU SmPC §4.2), A6: the EU rule"),
}


def dose_text(dose_mg_bid: int | None, strengths: Sequence[int] = (CAPSULE_MG,)) -> str:
    """'600 mg twice a day: 4 capsules of 150 mg each time' (reference §2, §3)."""
    if not dose_mg_bid:
        return "No dose at the moment: your clinic will tell you when to start again."
    combo = capsules(dose_mg_bid, list(strengths))
    if combo is None:
        return f"{dose_mg_bid} mg twice a day: ask your clinic how to make this dose (capsules are never opened)."
    if len(set(combo)) == 1:
        n, s = len(combo), combo[0]
        return f"{dose_mg_bid} mg twice a day: {n} capsule{'s' if n != 1 else ''} of {s} mg each time."
    parts = " and ".join(f"{combo.count(s)} of {s} mg" for s in sorted(set(combo), reverse=True))
    return f"{dose_mg_bid} mg twice a day: {parts} each time."


DESENSITIZATION_MISSED = ("During desensitization, do not skip a dose on your own: if you miss one, call the clinic "
                          "before the next dose. Tolerance may be lost, and the clinic decides how to go on.",
                          "Reference §9.3 requirement 3, A10")


def step_text(morning_mg: int, evening_mg: int, strengths: Sequence[int] = (CAPSULE_MG,)) -> str:
    """A desensitization day's two doses with their capsules (§9.2)."""
    def part(mg: int) -> str:
        combo = capsules(mg, list(strengths)) if mg else []
        if not mg:
            return "none"
        if combo is None:
            return f"{mg} mg (ask the clinic how to make it)"
        return f"{mg} mg ({len(combo)} capsule{'s' if len(combo) != 1 else ''})"
    return (f"Desensitization: today {part(morning_mg)} in the morning and {part(evening_mg)} in the evening. "
            "Follow your day-by-day calendar: the dose goes up step by step.")


def topics(*, dose_mg_bid: int | None, regime: str = "us", strengths: Sequence[int] = (CAPSULE_MG,),
           step: tuple[int, int] | None = None) -> list[Topic]:
    """The checklist, at the patient's current dose (or today's desensitization step) and
    under their label (US/EU)."""
    missed, missed_source = MISSED_DOSE.get(regime, MISSED_DOSE["us"])
    if step is not None:
        missed, missed_source = DESENSITIZATION_MISSED
    dose = step_text(*step, strengths) if step is not None else dose_text(dose_mg_bid, strengths)
    return [
        Topic("dose", "Your dose", dose, "Reference §2, §3 (US PI §2; S2; S4 §4.2)" if step is None
              else "Reference §9.2 (the plan's day-by-day calendar)"),
        Topic("food", "With food", "Take the capsules with food, morning and evening, about 12 hours apart.",
              "Reference §2 (US PI §2), §6 (food raised exposure about 3-fold)"),
        Topic("whole", "Swallow whole", "Swallow the capsules whole. Do not open, chew or dissolve them.",
              "Reference §2 (US PI §2; S2)"),
        Topic("missed", "A missed dose", missed, missed_source),
        Topic("vomited", "If you vomit", "If you vomit after taking a dose, do not take another one. Take your next dose "
              "at the usual time.", "Reference §2 (US PI §2; S4)"),
        Topic("sun", "Sun protection", "Avoid long periods in the sun while you take this medicine and for at least "
              "7 days after the last dose. Use a broad-spectrum sunscreen and lip balm (SPF 50 or more).",
              "Reference §6 (S8; SPF 50 recalled from the US label, to verify)"),
        Topic("contraception", "Pregnancy and contraception",
              "Women: use effective contraception during treatment and for at least 1 week after the last dose, and do "
              "not breastfeed during that time. Men with a female partner: use contraception during treatment and for "
              "3 months after the last dose.",
              "Reference §6 (S2; S6); A11: later label versions may give a longer duration for women, verify"),
        Topic("report", "Call the clinic at once if you have",
              "new or worse breathlessness or cough, or a fever; muscle pain, tenderness or weakness; a slow or "
              "irregular heartbeat, dizziness or fainting; yellow skin or eyes, dark urine, or pain on the right side "
              "of the belly; a rash.",
              "Reference §4.2 (ILD), §4.5 (CPK/myalgia), §4.4 (bradycardia), §4.1 (liver; the symptom wording is not "
              "in the reference), §8.6 and §9 (rash)"),
        Topic("storage", "Storage", "Keep the capsules in their original pack, out of the reach of children, as the "
              "pharmacy leaflet says.", None),
    ]


NO_SOURCE = "The clinical reference has nothing on this: follow the pharmacy's leaflet."


# --- supply (reference §2, §3, §9.2) -----------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """From `start`, the doses taken each day (mg, morning and evening): the ladder's dose
    twice, a desensitization step's two doses, or 0 and 0 while withheld or stopped."""

    start: date
    morning_mg: int
    evening_mg: int


@dataclass(frozen=True)
class Fill:
    """Capsules dispensed on a day (of one strength)."""

    day: date
    capsules: int
    strength_mg: int = CAPSULE_MG


@dataclass(frozen=True)
class Count:
    """Capsules the patient said they had on hand on a day (a check-in): from then on the
    projection starts from this count instead of the dispensings' arithmetic."""

    day: date
    capsules: int
    strength_mg: int = CAPSULE_MG


@dataclass
class Supply:
    """Where the patient stands on `today`: capsules on hand by strength, the first day a
    dose cannot be made from them (on or before today when the patient has already run out
    and nothing was dispensed since; None: nothing to take, or more than ten years of
    supply), and the days covered out of the days on which doses were due since the first
    fill (the proportion of days covered, PDC)."""

    on_hand: dict[int, int] = field(default_factory=dict)
    runs_out_on: date | None = None
    days_needed: int = 0
    days_covered: int = 0

    @property
    def capsules(self) -> int:
        return sum(self.on_hand.values())

    @property
    def pdc(self) -> Fraction | None:
        return Fraction(self.days_covered, self.days_needed) if self.days_needed else None

    def runs_out_within(self, today: date, days: int = RUNS_OUT_WARNING_DAYS) -> bool:
        return self.runs_out_on is not None and self.runs_out_on <= today + timedelta(days=days)

    def ran_out(self, today: date) -> bool:
        """Already out: a dose due on or before today could not be made."""
        return self.runs_out_on is not None and self.runs_out_on <= today


def dose_on(periods: Sequence[Period], day: date) -> tuple[int, int]:
    """(morning mg, evening mg) taken on `day` (`periods` in date order)."""
    return _dose_on(periods, day)


def doses_due(periods: Sequence[Period], first: date, last: date) -> int:
    """The doses due from `first` to `last`, both included: a dose of more than 0 mg each
    morning and evening; none while withheld or stopped."""
    plan = sorted(periods, key=lambda p: p.start)
    n, day = 0, first
    while day <= last:
        morning, evening = _dose_on(plan, day)
        n += (morning > 0) + (evening > 0)
        day += timedelta(days=1)
    return n


def _dose_on(periods: Sequence[Period], day: date) -> tuple[int, int]:
    current = (0, 0)
    for p in periods:
        if p.start <= day:
            current = (p.morning_mg, p.evening_mg)
        else:
            break
    return current


@lru_cache(maxsize=256)
def _combo(mg: int, strengths: tuple[int, ...]) -> tuple[int, ...] | None:
    found = capsules(mg, list(strengths))
    return None if found is None else tuple(found)


def _take(stock: dict[int, int], mg: int) -> bool:
    """Take one dose of `mg` from `stock` (the fewest capsules of the strengths on hand)."""
    if mg == 0:
        return True
    combo = _combo(mg, tuple(sorted(s for s, n in stock.items() if n > 0)))
    if combo is None:
        return False
    need = {s: combo.count(s) for s in set(combo)}
    if any(stock.get(s, 0) < n for s, n in need.items()):
        return False
    for s, n in need.items():
        stock[s] -= n
    return True


def _day(stock: dict[int, int], doses: tuple[int, int]) -> bool:
    """One day's doses from the stock; True when every dose of the day was made."""
    return all([_take(stock, doses[0]), _take(stock, doses[1])])


def supply(*, fills: Iterable[Fill], periods: Iterable[Period], today: date, counts: Iterable[Count] = ()) -> Supply:
    """Simulate the stock day by day, taking every dose as prescribed, from the first fill
    to `today`, then project at the doses ahead until a dose cannot be made. A dose change
    mid-supply changes what each later day takes (reference §3); a desensitization step's
    two doses are taken as they are (§9.2). A reported count on a day replaces the stock of
    its strength from that day (after that day's doses)."""
    fill_list = sorted(fills, key=lambda f: f.day)
    plan = sorted(periods, key=lambda p: p.start)
    out = Supply()
    if not fill_list:
        return out
    stock, out_since = _until_today(out, fill_list, plan, list(counts), today)
    out.on_hand = {s: n for s, n in sorted(stock.items(), reverse=True) if n}
    if _dose_on(plan, today) == (0, 0):
        return out  # withheld or stopped: nothing runs out
    out.runs_out_on = out_since or _project(stock, plan, today)  # already out (nothing dispensed since), or ahead
    return out


def _until_today(out: Supply, fills: list[Fill], plan: list[Period], counts: list[Count],
                 today: date) -> tuple[dict[int, int], date | None]:
    """The stock on `today` and, when the patient is out, the first day of that run;
    counts the days needed and covered on `out`."""
    by_day: dict[date, list[Fill]] = {}
    for f in fills:
        by_day.setdefault(f.day, []).append(f)
    counted: dict[date, list[Count]] = {}
    for c in counts:
        counted.setdefault(c.day, []).append(c)
    stock: dict[int, int] = {}
    out_since: date | None = None
    day = fills[0].day
    while day <= today:
        for f in by_day.get(day, []):
            stock[f.strength_mg] = stock.get(f.strength_mg, 0) + f.capsules
        doses = _dose_on(plan, day)
        if doses != (0, 0):
            out.days_needed += 1
            covered = _day(stock, doses)
            out.days_covered += covered
            out_since = None if covered else (out_since or day)
        for c in counted.get(day, []):
            stock[c.strength_mg] = c.capsules
            out_since = None
        day += timedelta(days=1)
    return stock, out_since


def _project(stock: dict[int, int], plan: list[Period], today: date) -> date | None:
    """The first day after `today` whose doses the stock cannot make (None: none within
    ten years, or a stop already entered for a later day)."""
    ahead = dict(stock)
    last_change = plan[-1].start if plan else today
    day = today + timedelta(days=1)
    while day <= today + timedelta(days=PROJECTION_LIMIT_DAYS):
        doses = _dose_on(plan, day)  # a change already entered for a later day counts from that day
        if doses == (0, 0) and day >= last_change:
            return None
        if not _day(ahead, doses):
            return day
        day += timedelta(days=1)
    return None


def unfilled_since(prescriptions: Iterable[date], fills: Iterable[date]) -> date | None:
    """The oldest prescription with no dispensing on or after its date (None: every
    prescription was filled)."""
    fill_days = sorted(fills)
    for written in sorted(prescriptions):
        if not any(d >= written for d in fill_days):
            return written
    return None


# --- symptoms at a check-in (reference §8.3, §8.6, §8.7) -------------------------------------------

@dataclass(frozen=True)
class Symptom:
    code: str
    term: str
    grades: dict[int, str]
    source: str

    @property
    def max_grade(self) -> int:
        return max(self.grades)


_RECALLED = "Reference §8.7 (CTCAE v5.0, recalled: verify against the NCI PDF)"
SYMPTOMS: tuple[Symptom, ...] = (
    Symptom("myalgia", "Myalgia (muscle pain)", {
        1: "Mild pain", 2: "Moderate pain; limiting instrumental ADL", 3: "Severe pain; limiting self-care ADL"},
        "Reference §8.3 (CTCAE v5.0)"),
    Symptom("edema", "Edema limbs", {
        1: "5–10% inter-limb discrepancy; swelling seen on close inspection",
        2: ">10–30% discrepancy; readily apparent; limiting instrumental ADL",
        3: ">30% discrepancy; gross deviation from normal contour; limiting self-care ADL"}, _RECALLED),
    Symptom("fatigue", "Fatigue", {
        1: "Relieved by rest", 2: "Not relieved by rest; limiting instrumental ADL",
        3: "Not relieved by rest; limiting self-care ADL"}, _RECALLED),
    Symptom("constipation", "Constipation", {
        1: "Occasional or intermittent; occasional softeners, laxatives, diet change or enema",
        2: "Persistent with regular laxatives or enemas; limiting instrumental ADL",
        3: "Obstipation with manual evacuation indicated; limiting self-care ADL",
        4: "Life-threatening; urgent intervention"}, _RECALLED),
    Symptom("nausea", "Nausea", {
        1: "Loss of appetite without change in eating habits",
        2: "Oral intake decreased without significant weight loss, dehydration or malnutrition",
        3: "Inadequate oral caloric or fluid intake; tube feeding, TPN or hospitalization indicated"}, _RECALLED),
    Symptom("rash", "Rash maculo-papular", {
        1: "Macules/papules < 10% BSA", 2: "10–30% BSA, limiting instrumental ADL; or > 30% BSA with mild symptoms",
        3: "> 30% BSA with moderate or severe symptoms; limiting self-care ADL"},
        "Reference §8.6 (CTCAE v5.0; grade 3 recalled; no grade 4)"),
    Symptom("photosensitivity", "Photosensitivity", {
        1: "Painless erythema < 10% BSA", 2: "Tender erythema 10–30% BSA",
        3: "Erythema > 30% BSA or with blistering; oral corticosteroids or pain control indicated",
        4: "Life-threatening; urgent intervention"}, _RECALLED),
    Symptom("vision", "Blurred vision (vision disorders)", {
        1: "Intervention not indicated", 2: "Symptomatic; moderate decrease in acuity; limiting instrumental ADL",
        3: "Marked decrease in acuity; limiting self-care ADL", 4: "Best corrected acuity 20/200 or worse"}, _RECALLED),
    Symptom("dysgeusia", "Dysgeusia (taste)", {
        1: "Altered taste, no change in diet", 2: "Altered taste with change in diet; unpleasant taste; loss of taste"},
        _RECALLED),
    Symptom("dyspnea", "Dyspnea", {
        1: "Short of breath with moderate exertion", 2: "With minimal exertion; limiting instrumental ADL",
        3: "At rest; limiting self-care ADL", 4: "Life-threatening; urgent intervention"}, _RECALLED),
    Symptom("cough", "Cough", {
        1: "Mild; non-prescription intervention", 2: "Moderate; medical intervention; limiting instrumental ADL",
        3: "Severe; limiting self-care ADL"}, _RECALLED),
    Symptom("dizziness", "Dizziness", {
        1: "Mild unsteadiness or sensation of movement", 2: "Moderate; limiting instrumental ADL",
        3: "Severe; limiting self-care ADL"}, _RECALLED),
    Symptom("syncope", "Syncope (fainting)", {3: "Fainting; orthostatic collapse"}, _RECALLED),
)
SYMPTOM = {s.code: s for s in SYMPTOMS}


@dataclass(frozen=True)
class Consequence:
    """What one check-in finding asks for, with its source. `route` names what the app
    does: cpk_due (a CPK falls due now), ild_review (a prescriber is asked to investigate
    for ILD), bradycardia (a symptomatic bradycardia event for the engine, graded by the
    clinician), heart_rate_needed, rash (a rash event for the prescriber; once resolved,
    the desensitization pathway), review (a grade ≥ 3 symptom with no label rule)."""

    route: str
    text: str
    source: str


SLOW_HEART_RATE = 60  # reference §4.4: bradycardia is a heart rate below 60 bpm


def consequences(symptoms: dict[str, int], *, respiratory_new_or_worse: bool = False,
                 heart_rate: int | None = None) -> list[Consequence]:
    """The label's meaning of what a check-in recorded (reference §8.7, last paragraph).
    `symptoms` maps a term's code to its CTCAE grade (absent or 0: not present)."""
    found = [s for s in SYMPTOMS if symptoms.get(s.code, 0) > 0]
    present = {s.code for s in found}
    out: list[Consequence] = []
    if "myalgia" in present:
        out.append(Consequence("cpk_due", "Muscle pain reported: a CPK test is due now.",
                               "Reference §4.5, §5 (US PI §5.5; S7): test CPK when unexplained muscle pain, "
                               "tenderness or weakness is reported"))
    if present & {"dyspnea", "cough"} and respiratory_new_or_worse:
        out.append(Consequence("ild_review", "New or worse breathlessness or cough: investigate promptly for ILD.",
                               "Reference §4.2 (US PI §5.2)"))
    if present & {"dizziness", "syncope"}:
        if heart_rate is None:
            out.append(Consequence("heart_rate_needed", "Dizziness or fainting reported: measure the heart rate; "
                                   "with a rate below 60 bpm it is symptomatic bradycardia.",
                                   "Reference §4.4 (US PI §5.4; S3)"))
        elif heart_rate < SLOW_HEART_RATE:
            out.append(Consequence("bradycardia", f"Dizziness or fainting with a heart rate of {heart_rate} bpm: "
                                   "symptomatic bradycardia, recorded for the dose rules; the clinician grades it.",
                                   "Reference §4.4, §8.5 (graded from symptoms, never from the rate alone)"))
    rash = symptoms.get("rash", 0)
    if rash >= 3:
        out.append(Consequence("rash", f"Rash grade {rash}: a prescriber reviews it and decides whether to withhold; "
                               "after a hold, once the rash has resolved, a desensitization re-challenge can be "
                               "considered.",
                               "Reference §8.6, §4.7, §9"))
    brady = any(c.route == "bradycardia" for c in out)
    severe = [s for s in found if symptoms[s.code] >= 3 and s.code != "rash"
              and not (brady and s.code in ("dizziness", "syncope"))]
    if severe:
        names = ", ".join(f"{s.term} grade {symptoms[s.code]}" for s in severe)
        out.append(Consequence("review", f"{names}: no label rule; a prescriber reviews it.",
                               "Reference §4.7, §8.7"))
    return out


def grade_problem(code: str, grade: int) -> str | None:
    """None when `grade` is a grade the term has in CTCAE v5.0 (0: absent)."""
    symptom = SYMPTOM.get(code)
    if symptom is None:
        return f"Unknown symptom {code!r}."
    if grade == 0 or grade in symptom.grades:
        return None
    allowed = ", ".join(str(g) for g in sorted(symptom.grades))
    return f"{symptom.term} has grade {allowed} in CTCAE v5.0 ({symptom.source})."


def missed_share(missed: int, due: int) -> Fraction | None:
    """Self-reported missed doses as a share of the doses due (doses_due)."""
    return Fraction(min(missed, due), due) if due > 0 else None
