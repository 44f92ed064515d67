"""Lifecycle emission factors per generation technology, and the intensity of a generation mix.

The factors are shipped in carbonwrap/data/emission_factors.csv (fuel,g_per_kwh,source); where
each one comes from is in carbonwrap/data/PROVENANCE.md §11. Providers that publish a generation
mix instead of an intensity map their own fuel names to FUELS and call `mix_intensity`.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Mapping
from typing import NamedTuple

from carbonwrap.packagedata import read_data

_FILE = "emission_factors.csv"
_HEADER = ["fuel", "g_per_kwh", "source"]

# Our fuel keys, in the CSV's order; a test checks the two agree.
FUELS: tuple[str, ...] = (
    "coal",
    "lignite",
    "gas",
    "oil",
    "nuclear",
    "hydro",
    "wind",  # onshore, or wind not split by the source
    "wind_offshore",
    "solar",  # photovoltaic, or solar not split by the source
    "solar_thermal",  # concentrated solar power
    "biomass",
    "geothermal",
    "marine",  # tidal and wave
    "waste",
    "other",  # fossil or unspecified thermal
    "storage",  # discharge of pumped hydro and batteries
)


class MixIntensity(NamedTuple):
    """The output-weighted lifecycle intensity of a mix. Units: gCO2e/kWh, MW.

    `covered_mw` is the output of the fuels with a factor, `total_mw` all positive output, and
    `unknown` the names given that are not fuel keys (their output is in total_mw only)."""

    intensity_g_per_kwh: float
    covered_mw: float
    total_mw: float
    unknown: tuple[str, ...]

    @property
    def covered_share(self) -> float:
        """covered_mw / total_mw: how much of the output the intensity speaks for."""
        return self.covered_mw / self.total_mw


@functools.cache
def _factors() -> dict[str, float]:
    reader = csv.reader(read_data(_FILE).decode("utf-8").splitlines())
    found = next(reader)
    if found != _HEADER:
        raise RuntimeError(f"carbonwrap/data/{_FILE}: columns {found}, expected {_HEADER}")
    return {row[0]: float(row[1]) for row in reader}


def factor_g_per_kwh(fuel: str) -> float:
    """The lifecycle factor of one of FUELS, gCO2e/kWh; KeyError for any other name."""
    factors = _factors()
    if fuel not in factors:
        raise KeyError(f"no emission factor for {fuel!r}: use one of {', '.join(FUELS)}")
    return factors[fuel]


def mix_intensity(mix_mw: Mapping[str, float]) -> MixIntensity:
    """The intensity of a generation mix {fuel key: output MW}, weighted by each fuel's output.

    Negative, zero and non-finite outputs are ignored: feeds report pumping and exports as
    negative generation, and a gap as NaN. Names that are not fuel keys count towards total_mw
    and are listed in `unknown`, so a caller can refuse a mix it only partly understands.
    Raises ValueError where no fuel with a factor has positive output.
    """
    factors = _factors()
    weighted = covered_mw = total_mw = 0.0
    unknown: list[str] = []
    for fuel, power_mw in mix_mw.items():
        if not math.isfinite(power_mw) or power_mw <= 0:
            continue
        total_mw += power_mw
        factor = factors.get(fuel)
        if factor is None:
            unknown.append(fuel)
            continue
        covered_mw += power_mw
        weighted += factor * power_mw
    if covered_mw <= 0:
        raise ValueError("no positive generation of a known fuel in the mix")
    return MixIntensity(weighted / covered_mw, covered_mw, total_mw, tuple(sorted(unknown)))
