"""Predictions and the budget for people and scripts: the live line's part, the final report's
lines, the --json objects. Pure functions of a summary's plain values."""

from typing import Any

from carbonwrap.errors import ExitCode
from carbonwrap.render import units
from carbonwrap.runlog.ledger import J_PER_KWH
from carbonwrap.runlog.summary import RunSummary

_ORDER = (("first", "first"), ("at_50", "at 50 %"), ("last", "last"))


def live_text(
    prediction: dict[str, Any] | None,
    budget: dict[str, Any] | None,
    elapsed_s: float | None = None,
) -> str | None:
    """After the CO2e so far: "→ predicted 2.30 kWh, 410 g ±12 % at 34 %, ETA 38 min 10 s
    (budget 500 g)". The margin only where it says something (not "±0 %", not unknown); the
    ETA (the time left, from `elapsed_s` now) while the predicted end is ahead."""
    parts = []
    if prediction is not None:
        text = (
            f"→ predicted {units.energy(prediction['energy_j'])}, "
            f"{units.mass(prediction['co2e_g'])}"
        )
        margin = _margin_pct(prediction)
        if margin is not None and round(margin) >= 1:
            text += f" ±{margin:.0f} %"
        text += f" at {_pct(prediction['fraction'])}"
        duration = prediction.get("duration_s")
        if elapsed_s is not None and isinstance(duration, (int, float)) and duration > elapsed_s:
            text += f", ETA {units.duration(duration - elapsed_s)}"
        parts.append(text)
    if budget is not None:
        text = f"budget {budget['limit']}"
        exceeded = [e for e in budget["events"] if e["event"] == "exceeded"]
        if exceeded:
            text += " exceeded" + (": stopping" if exceeded[0]["action"] == "stop" else "")
        parts.append(f"({text})")
    return " ".join(parts) or None


def _margin_pct(p: dict[str, Any]) -> float | None:
    """The prediction's margin in % of its CO2e (of its energy where the CO2e is 0); None
    where it has none."""
    for value, margin in (
        (p.get("co2e_g"), p.get("co2e_margin_g")),
        (p.get("energy_j"), p.get("energy_margin_j")),
    ):
        if isinstance(value, (int, float)) and value > 0 and isinstance(margin, (int, float)):
            return 100 * margin / value
    return None


def _known_at_s(p: dict[str, Any]) -> float:
    """When the prediction's last report arrived (older logs: when it was made)."""
    at = p.get("report_elapsed_s")
    return float(at if at is not None else p.get("elapsed_s") or 0.0)


def report_facts(s: RunSummary) -> list[tuple[str, str]]:
    """The report's lines: each kept prediction against the actual totals, then the budget."""
    facts: list[tuple[str, str]] = []
    comparable = _comparable(s)
    shown: list[int] = []
    for key, _ in _ORDER:
        p = s.predictions.get(key)
        if p is None or id(p) in shown:
            continue
        shown.append(id(p))
        text = (
            f"at {_pct(p['fraction'])} after {units.duration(_known_at_s(p))}: "
            f"{units.energy(p['energy_j'])}, {units.mass(p['co2e_g'])} CO2e, "
            f"{units.duration(p['duration_s'])}"
        )
        error = p["co2e_g"] / s.co2e_g - 1 if comparable and s.co2e_g > 0 else None
        if p["co2e_margin_g"] is not None and p["co2e_g"]:
            margin = round(100 * p["co2e_margin_g"] / p["co2e_g"])
            # A margin of 0 % (nothing left to predict, or a spread too small to show) is
            # claimed only where the actual total bears it out.
            if margin >= 1 or (error is not None and round(100 * abs(error)) == 0):
                text += f" (± {margin} %)"
        if error is not None:
            text += f"; CO2e {_signed(error)} vs actual"
        facts.append(("Prediction" if not facts else "", text))
    if facts:
        last = s.predictions["last"]
        priced = {"forecast": "the forecast", "forecast+current": "the forecast and the value"}
        where = priced.get(last["intensity_basis"], "the value in force")
        facts.append(("", f"{last['basis']}; the rest priced at {where}"))
        if comparable:
            facts.append(
                (
                    "",
                    f"actual: {units.energy(s.energy_j)}, {units.mass(s.co2e_g)} CO2e, "
                    f"{units.duration(s.duration_s)}",
                )
            )
        else:
            facts.append(("", f"not comparable with the actual totals: {_why_not(s)}"))
    if s.budget is not None:
        facts.append(("Budget", budget_text(s)))
    return facts


def budget_text(s: RunSummary) -> str:
    b = s.budget
    assert b is not None
    co2e = b["quantity"] == "co2e"
    used = s.co2e_g if co2e else s.energy_j
    limit = b["limit"] + (" CO2e" if co2e else "")
    text = f"{limit} (--on-exceed {b['on_exceed']}): used {_amount(used, co2e)}"
    if b["limit_value"] > 0:
        text += f", {100 * used / b['limit_value']:.0f} %"
    if s.stopped:
        return f"{text}; STOPPED: {s.stopped}; exit status {int(ExitCode.BUDGET_STOPPED)}"
    exceeded = [e["message"] for e in b["events"] if e["event"] == "exceeded"]
    if exceeded:
        return f"{text}; warned: " + "; ".join(exceeded)
    if used > b["limit_value"]:
        return f"{text}; exceeded at the end"
    return text


def prediction_document(s: RunSummary) -> dict[str, Any] | None:
    """--json `prediction`: the first, at-50 % and last predictions, each with its relative
    error against the actual totals where the work was finished; null without progress."""
    if not s.predictions:
        return None
    comparable = _comparable(s)
    actual = {"duration_s": s.duration_s, "energy": s.energy_j, "co2e": s.co2e_g}
    document: dict[str, Any] = {}
    for key, _ in _ORDER:
        p = s.predictions.get(key)
        if p is None:
            document[key] = None
            continue
        entry = {
            "elapsed_s": p["elapsed_s"],
            "report_elapsed_s": p.get("report_elapsed_s"),
            "done": p["done"],
            "total": p["total"],
            "unit": p["unit"],
            "fraction": p["fraction"],
            "duration_s": p["duration_s"],
            "energy_kwh": p["energy_j"] / J_PER_KWH,
            "co2e_kg": p["co2e_g"] / 1000,
            "duration_margin_s": p["duration_margin_s"],
            "energy_margin_kwh": _scaled(p["energy_margin_j"], 1 / J_PER_KWH),
            "co2e_margin_kg": _scaled(p["co2e_margin_g"], 1e-3),
            "intensity_g_per_kwh": p["intensity_g_per_kwh"],
            "intensity_basis": p["intensity_basis"],
            "basis": p["basis"],
            "intervals": p.get("intervals"),
            "error": None,
        }
        if comparable:
            entry["error"] = {
                "duration": _error(p["duration_s"], actual["duration_s"]),
                "energy": _error(p["energy_j"], actual["energy"]),
                "co2e": _error(p["co2e_g"], actual["co2e"]),
            }
        document[key] = entry
    document["comparable"] = comparable
    document["not_comparable_because"] = None if comparable else _why_not(s)
    return document


def budget_document(s: RunSummary) -> dict[str, Any] | None:
    """--json `budget`: the limit, what happened, the events; null without --budget."""
    b = s.budget
    if b is None:
        return None
    co2e = b["quantity"] == "co2e"
    scale = 1e-3 if co2e else 1 / J_PER_KWH
    used = s.co2e_g if co2e else s.energy_j
    key = "co2e_kg" if co2e else "energy_kwh"
    return {
        "limit": b["limit"],
        "quantity": b["quantity"],
        f"limit_{key}": b["limit_value"] * scale,
        f"used_{key}": used * scale,
        "on_exceed": b["on_exceed"],
        "grace_s": b["grace_s"],
        "exceeded": used > b["limit_value"] or any(e["event"] == "exceeded" for e in b["events"]),
        "stopped": s.stopped,
        "events": [
            {
                "event": e["event"],
                "elapsed_s": e["elapsed_s"],
                "basis": e["basis"] or None,
                key: _scaled(e["value"], scale),
                "fraction": e["fraction"],
                "action": e["action"] or None,
                "message": e["message"],
            }
            for e in b["events"]
        ],
    }


def _finished(p: dict[str, Any]) -> bool:
    """Whether a prediction rests on a report of all the work: done == total (a fraction of
    1, a tqdm bar at its total, M of M epochs); its fraction for a record without them."""
    done, total = p.get("done"), p.get("total")
    if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return done >= total
    return (p.get("fraction") or 0.0) >= 1.0


def _comparable(s: RunSummary) -> bool:
    last = s.predictions.get("last")
    return (
        last is not None and s.complete and not s.stopped and _finished(last) and s.exit_code == 0
    )


def _why_not(s: RunSummary) -> str:
    last = s.predictions.get("last") or {}
    if not s.complete:
        return "the run has no end record"
    if s.stopped:
        return "the command was stopped"
    if not _finished(last):
        return f"the last report was at {_pct(last.get('fraction'))} of the work"
    return f"the command failed (exit {s.exit_code})"


def _pct(fraction: Any) -> str:
    """Whole per cents, never "100 %" for less than all of it (9,996 of 10,000 is 99 %)."""
    if not isinstance(fraction, (int, float)):
        return "? %"
    return f"{min(100 * fraction, 99) if fraction < 1 else 100 * fraction:.0f} %"


def _signed(ratio: float) -> str:
    return f"{100 * ratio:+.0f} %".replace("-", "−")


def _amount(value: float, co2e: bool) -> str:
    return units.mass(value) if co2e else units.energy(value)


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _error(predicted: float, actual: float) -> float | None:
    return predicted / actual - 1 if actual > 0 else None
