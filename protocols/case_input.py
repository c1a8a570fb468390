"""The `assess` command's JSON case, validated whole, into an engine `Case`. Pure Python."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from protocols.analytes import get_analyte
from protocols.dosing import LADDER
from protocols.engine import Case, Lab
from protocols.labs import lab_from_reported
from protocols.errors import InputError

D = Decimal

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
        unit = item.get("unit")
        value = _number(item["value"], f"{where}.{code}.value")
        if value < 0:
            raise InputError(f"{where}.{code}.value cannot be negative.")
        uln = _number(item["uln"], f"{where}.{code}.uln") if item.get("uln") is not None else None
        lln = _number(item["lln"], f"{where}.{code}.lln") if item.get("lln") is not None else None
        if analyte.has_uln and uln is None:
            raise InputError(f"{where}.{code} needs a uln.")
        if analyte.code == "hemoglobin" and lln is None:
            raise InputError(f"{where}.{code} needs an lln.")
        for name, limit in (("uln", uln), ("lln", lln)):
            if limit is not None and limit <= 0:
                raise InputError(f"{where}.{code}.{name} must be greater than zero.")
        lab = lab_from_reported(code, value, unit, uln=uln, lln=lln)
        analyte.check_plausible(lab.value)
        labs[code] = lab
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
