"""Human units that scale: µJ/mJ/J/Wh/kWh/MWh, µg/mg/g/kg/t, s/min/h; one value, or a set of
values (a column, a line) in one unit with the same decimals."""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# (symbol, size in the base unit, the smallest value it is used for)
_Ladder = tuple[tuple[str, float, float], ...]
_ENERGY: _Ladder = (
    ("µJ", 1e-6, 0.0),
    ("mJ", 1e-3, 1e-3),
    ("J", 1.0, 1.0),
    ("Wh", 3600.0, 360.0),  # from 0.1 Wh: energies are usually spoken of in Wh
    ("kWh", 3.6e6, 3.6e6),
    ("MWh", 3.6e9, 3.6e9),
)
_MASS: _Ladder = (
    ("µg", 1e-6, 0.0),
    ("mg", 1e-3, 1e-3),
    ("g", 1.0, 1.0),
    ("kg", 1e3, 1e3),
    ("t", 1e6, 1e6),
)
_DISTANCE: _Ladder = (("mm", 1e-6, 0.0), ("m", 1e-3, 1e-3), ("km", 1.0, 1.0))
_VOLUME: _Ladder = (("µl", 1e-6, 0.0), ("ml", 1e-3, 1e-3), ("l", 1.0, 1.0))
_BASE = {"µJ": "J", "µg": "g", "mm": "km", "µl": "l"}  # the unit of a zero
_MOST_DECIMALS = 6  # below the ladder's smallest unit: "<0.000001 µJ", never "8.8e-05"


def energy(joules: float | None) -> str:
    """Energy with a unit that keeps 1–3 integer digits, 3 significant: 512 J, 1.23 Wh."""
    return energy_column([joules])[0]


def energy_column(joules: Iterable[float | None]) -> list[str]:
    """Energies in one unit, the one that suits the typical (upper median) value, each with 3
    significant digits: ["0.500 kWh", "1.10 kWh", "0.0102 kWh", "—"] (None: "—"); one a
    thousand times larger is written whole ("12,400 kWh" for a total of many runs); a value
    below a millionth of the unit reads "<0.000001 kWh", never an exponent."""
    values = list(joules)
    return [*map(energy_format(values), values)]


def energy_format(joules: Iterable[float | None]) -> Callable[[float | None], str]:
    """How to write energies shown together (a table, a line) whose largest is among `joules`:
    a function writing any of them as `energy_column` does."""
    return _format(joules, _ENERGY)


def mass(grams: float | None) -> str:
    """CO2e mass, 3 significant digits: 20.0 µg, 36.0 mg, 2.70 g, 360 kg, 1.20 t."""
    return mass_column([grams])[0]


def mass_column(grams: Iterable[float | None]) -> list[str]:
    """Masses in one unit with the same decimals, as `energy_column`."""
    values = list(grams)
    return [*map(mass_format(values), values)]


def mass_format(grams: Iterable[float | None]) -> Callable[[float | None], str]:
    """How to write masses shown together, as `energy_format`."""
    return _format(grams, _MASS)


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
    return _format([km], _DISTANCE)(km)


def volume(litres: float) -> str:
    return _format([litres], _VOLUME)(litres)


def _format(values: Iterable[float | None], ladder: _Ladder) -> Callable[[float | None], str]:
    # The median, not the largest: beside a run a thousand times larger (or a total of many
    # runs) the others would all read "<0.01"; the large ones are written whole instead.
    magnitudes = sorted(abs(v) for v in values if v)
    typical = magnitudes[len(magnitudes) // 2] if magnitudes else 0.0  # the upper median
    symbol, size, decimals = _unit(typical, ladder)

    def write(value: float | None) -> str:
        if value is None:
            return "—"
        scaled = value / size
        if abs(scaled) >= 999.5:
            return f"{scaled:,.0f} {symbol}"
        shown = decimals if scaled == 0 else _decimals(abs(scaled))  # 3 significant digits
        return f"{_number(scaled, shown)} {symbol}"

    return write


def _unit(largest: float, ladder: _Ladder) -> tuple[str, float, int]:
    """The unit for a set whose largest magnitude is `largest`, and the decimals that give it
    3 significant digits (fewer at the smallest unit: at most _MOST_DECIMALS)."""
    if largest == 0:
        symbol = _BASE[ladder[0][0]]
        return symbol, next(size for name, size, _ in ladder if name == symbol), 0
    index = max(i for i, (_, _, start) in enumerate(ladder) if start <= largest)
    while True:
        symbol, size, _ = ladder[index]
        scaled = largest / size
        decimals = _decimals(scaled)
        # 999.96 Wh rounds to "1000 Wh": the next unit up says "1.00 kWh"
        if round(scaled, decimals) < 1000 or index == len(ladder) - 1:
            return symbol, size, decimals
        if round(scaled, decimals) >= ladder[index + 1][2] / size:
            index += 1
        else:
            return symbol, size, decimals


def _decimals(scaled: float) -> int:
    """Decimals for 3 significant digits of `scaled` (> 0), as rounding will show it."""
    for decimals, bound in ((0, 99.95), (1, 9.995), (2, 0.9995)):
        if scaled >= bound:
            return decimals
    return min(_MOST_DECIMALS, 2 - math.floor(math.log10(scaled)))


def _number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if value != 0 and float(text) == 0:  # too small to show in this unit
        smallest = f"{10**-decimals:.{decimals}f}"
        return f"<{smallest}" if value > 0 else f">-{smallest}"
    return text.removeprefix("-") if float(text) == 0 else text
