"""Generation mixes priced with lifecycle factors, for the providers that publish a mix by fuel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from carbonwrap.intensity.factors import mix_intensity
from carbonwrap.intensity.points import AVERAGE, IntensityPoint, ProviderError, checked_value

MIN_COVERED_SHARE = 0.8  # below this share of output from a fuel with a factor, no value


class MixStep(NamedTuple):
    """One interval's generation: {fuel key, or the source's own name where unknown: MW}."""

    start_s: float
    end_s: float
    mix_mw: Mapping[str, float]


def priced_g_per_kwh(mix_mw: Mapping[str, float], source: str, start_s: float) -> float:
    """The lifecycle intensity of a mix, g/kWh. ProviderError where nothing with a factor runs, or
    fuels without one carry more than 1 - MIN_COVERED_SHARE of the output (named in the reason)."""
    when = dt.datetime.fromtimestamp(start_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    try:
        priced = mix_intensity(mix_mw)
    except ValueError:
        raise ProviderError(f"{source}: no positive generation at {when}") from None
    if priced.covered_share < MIN_COVERED_SHARE:
        raise ProviderError(
            f"{source}: only {priced.covered_share:.0%} of the generation at {when} is of a "
            f"known fuel (unknown: {', '.join(priced.unknown)})"
        )
    value = checked_value(priced.intensity_g_per_kwh, source, "priced mix")
    assert value is not None  # mix_intensity returns a number
    return value


def priced_points(steps: Sequence[MixStep], kind: str, source: str) -> list[IntensityPoint]:
    """Each step priced as a point of `kind`, in the order given. A step that cannot be priced is
    left out; where that leaves none, the newest step's reason is raised."""
    points: list[IntensityPoint] = []
    refused: ProviderError | None = None
    for step in steps:
        try:
            value = priced_g_per_kwh(step.mix_mw, source, step.start_s)
        except ProviderError as exc:
            refused = exc
            continue
        points.append(IntensityPoint(step.start_s, step.end_s, value, kind, AVERAGE, source))
    if not points and refused is not None:
        raise refused
    return points
