"""Lifecycle emission factors and the intensity of a generation mix, with plain numbers."""

from __future__ import annotations

import csv

import pytest

from carbonwrap.intensity.factors import FUELS, MixIntensity, factor_g_per_kwh, mix_intensity
from carbonwrap.packagedata import read_data


def test_the_shipped_table_has_exactly_our_fuels_each_with_a_source() -> None:
    rows = list(csv.DictReader(read_data("emission_factors.csv").decode().splitlines()))
    assert tuple(row["fuel"] for row in rows) == FUELS
    assert all(row["source"].strip() for row in rows)
    assert all(0 <= float(row["g_per_kwh"]) <= 1500 for row in rows)


@pytest.mark.parametrize(
    ("fuel", "g_per_kwh"),
    [("coal", 820), ("gas", 490), ("nuclear", 12), ("wind", 11), ("solar", 48), ("storage", 0)],
)
def test_ipcc_medians(fuel: str, g_per_kwh: float) -> None:
    assert factor_g_per_kwh(fuel) == g_per_kwh


def test_unknown_fuel_is_a_key_error_naming_the_choices() -> None:
    with pytest.raises(KeyError, match=r"no emission factor for 'coal_gas'.*lignite"):
        factor_g_per_kwh("coal_gas")


def test_mix_is_weighted_by_output() -> None:
    # 300 MW of coal at 820, 100 MW of wind at 11: (300*820 + 100*11) / 400
    mix = mix_intensity({"coal": 300.0, "wind": 100.0})
    assert mix == MixIntensity((300 * 820 + 100 * 11) / 400, 400.0, 400.0, ())
    assert mix.covered_share == 1.0


def test_negative_zero_and_nan_outputs_are_ignored() -> None:
    mix = mix_intensity({"gas": 100.0, "storage": -50.0, "hydro": 0.0, "solar": float("nan")})
    assert mix == MixIntensity(490.0, 100.0, 100.0, ())


def test_unknown_names_count_in_the_total_only() -> None:
    mix = mix_intensity({"nuclear": 60.0, "fusion": 30.0, "antimatter": 10.0, "ghost": -5.0})
    assert mix.intensity_g_per_kwh == 12.0
    assert (mix.covered_mw, mix.total_mw, mix.unknown) == (60.0, 100.0, ("antimatter", "fusion"))
    assert mix.covered_share == pytest.approx(0.6)


@pytest.mark.parametrize("mix", [{}, {"gas": 0.0}, {"coal": -10.0}, {"fusion": 100.0}])
def test_no_positive_known_generation_is_a_value_error(mix: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="no positive generation"):
        mix_intensity(mix)
