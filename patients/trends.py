"""Series for the patient page's trend charts, built in Python so they are unit-tested
without a browser (ecosystem.md: keep unit normalisation, grade bands and dose markers
out of JavaScript). Liver values are drawn as multiples of the ULN with lines at 1×, 3×
and 5× (the thresholds of reference §4.1 and §8.1); the trough level with its 435 ng/mL
research target (§10); the dose state as bands on the same time axis.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from typing import Any

from django.utils import timezone

from protocols.analytes import ANALYTES, CMIN_TARGET_NG_ML
from protocols.dosing import LEVELS, level_of

FAMILIES: list[dict[str, Any]] = [
    {"id": "liver", "title": "Liver: ALT, AST, total bilirubin (× ULN)", "analytes": ["alt", "ast", "total_bilirubin"],
     "x_uln": True, "unit": "× ULN", "lines": [(1, "ULN"), (3, "3× ULN"), (5, "5× ULN")], "source": "reference §4.1, §8.1"},
    {"id": "cpk", "title": "CPK (× ULN)", "analytes": ["cpk"], "x_uln": True, "unit": "× ULN",
     "lines": [(1, "ULN"), (5, "5× ULN"), (10, "10× ULN")], "source": "reference §4.5, §8.3"},
    {"id": "kidney", "title": "Creatinine (× ULN)", "analytes": ["creatinine"], "x_uln": True, "unit": "× ULN",
     "lines": [(1, "ULN"), (1.5, "1.5× ULN"), (3, "3× ULN")], "source": "reference §4.3, §8.2"},
    {"id": "heart", "title": "Heart rate and blood pressure", "analytes": ["heart_rate", "systolic_bp", "diastolic_bp"],
     "x_uln": False, "unit": "beats/min · mmHg", "lines": [(60, "60 bpm")], "source": "reference §4.4"},
    {"id": "tdm", "title": "Alectinib trough (Cmin)", "analytes": ["alectinib_cmin"], "x_uln": False, "unit": "ng/mL",
     "lines": [(float(CMIN_TARGET_NG_ML), "435 ng/mL target (research, not the label)")], "source": "reference §10"},
]

DOSE_COLOURS = {"600": "rgba(25,135,84,0.10)", "450": "rgba(13,110,253,0.12)", "300": "rgba(111,66,193,0.14)",
                "withheld": "rgba(253,126,20,0.22)", "discontinued": "rgba(220,53,69,0.22)",
                "desensitization": "rgba(32,201,151,0.2)"}


def _ms(when: datetime | date, zone: tzinfo | None = None) -> int:
    if not isinstance(when, datetime):
        # A date is a day of the clinic's calendar: its noon there, not the server's.
        when = datetime.combine(when, time(12), tzinfo=zone or timezone.get_current_timezone())
    return int(when.timestamp() * 1000)


def dose_bands(events: list, *, until: date, zone: tzinfo | None = None) -> list[dict[str, Any]]:
    """Consecutive dose states as [start, end) bands, from the dose change events."""
    bands: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        end = events[i + 1].effective_date if i + 1 < len(events) else until
        key = level_of(e.to_state, e.to_dose_mg_bid) or str(e.to_state)
        label = LEVELS.get(key, key.replace("_", " "))
        if bands and bands[-1]["key"] == key:
            bands[-1]["to"] = _ms(end, zone)
            continue
        bands.append({"key": key, "label": label, "from": _ms(e.effective_date, zone), "to": _ms(end, zone),
                      "color": DOSE_COLOURS.get(key, "rgba(108,117,125,0.15)")})
        if e.to_state == "discontinued":
            break
    return bands


def _y(lab, x_uln: bool) -> float | None:
    if x_uln:
        # The stored multiple, derived exactly from the reported numbers and rounded up
        # (protocols.labs): the point sits on the same side of every line as its grade.
        return float(lab.x_uln) if lab.x_uln is not None else None
    return float(lab.value)


def trend_series(labs: list, events: list, *, today: date | None = None,
                 zone: tzinfo | None = None) -> list[dict[str, Any]]:
    """One chart per analyte family that has data, each with its datasets, threshold
    lines, the dose bands, and the rows of its accessible table. `zone` is the patient's
    clinic's (accounts.clinic_time): dates and table times are read on its clock."""
    zone = zone or timezone.get_current_timezone()
    today = today or timezone.localdate(timezone=zone)
    bands = dose_bands(events, until=today, zone=zone)
    ordered = sorted((lab for lab in labs if not lab.is_baseline), key=lambda lab: lab.collected_at)
    charts = []
    for family in FAMILIES:
        datasets, table = [], []
        for code in family["analytes"]:
            points = []
            for lab in ordered:
                if lab.analyte != code:
                    continue
                y = _y(lab, family["x_uln"])
                if y is None:
                    continue
                points.append({"x": _ms(lab.collected_at), "y": round(y, 3)})
                table.append({"when": timezone.localtime(lab.collected_at, zone), "analyte": ANALYTES[code].label,
                              "value": lab.value, "comparator": lab.comparator, "unit": lab.unit, "x_uln": lab.x_uln,
                              "grade": lab.grade})
            if points:
                datasets.append({"label": ANALYTES[code].label, "data": points})
        if not datasets:
            continue
        table.sort(key=lambda r: r["when"])
        charts.append({
            "id": family["id"], "title": family["title"], "unit": family["unit"], "source": family["source"],
            "datasets": datasets, "lines": [{"y": y, "label": label} for y, label in family["lines"]],
            "bands": bands, "table": table,
        })
    return charts
