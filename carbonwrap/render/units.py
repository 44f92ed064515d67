"""Human units that scale: J/Wh/kWh/MWh, g/kg/t, s/min/h."""

from __future__ import annotations


def _three_digits(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def energy(joules: float | None) -> str:
    """Energy with a unit that keeps 1–3 integer digits: 512 J, 1.23 Wh, 4.56 kWh."""
    if joules is None:
        return "—"
    wh = joules / 3600
    if abs(joules) < 360:
        return f"{_three_digits(joules)} J"
    if abs(wh) < 1000:
        return f"{_three_digits(wh)} Wh"
    if abs(wh) < 1e6:
        return f"{_three_digits(wh / 1e3)} kWh"
    return f"{_three_digits(wh / 1e6)} MWh"


def mass(grams: float | None) -> str:
    """CO2e mass: mg below a gram, then g, kg, t."""
    if grams is None:
        return "—"
    if abs(grams) < 0.001 and grams != 0:
        return f"{_three_digits(grams * 1e6)} µg"
    if abs(grams) < 1 and grams != 0:
        return f"{_three_digits(grams * 1000)} mg"
    if abs(grams) < 1000:
        return f"{_three_digits(grams)} g"
    if abs(grams) < 1e6:
        return f"{_three_digits(grams / 1e3)} kg"
    return f"{_three_digits(grams / 1e6)} t"


def duration(seconds: float) -> str:
    """12.3 s, 4 min 05 s, 2 h 03 min, 3 d 04 h."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def distance(km: float) -> str:
    if km < 0.001:
        return f"{_three_digits(km * 1e6)} mm"
    if km < 1:
        return f"{_three_digits(km * 1000)} m"
    return f"{_three_digits(km)} km"


def volume(litres: float) -> str:
    if litres < 0.001:
        return f"{_three_digits(litres * 1e6)} µl"
    if litres < 1:
        return f"{_three_digits(litres * 1000)} ml"
    return f"{_three_digits(litres)} l"
