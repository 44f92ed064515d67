"""Folding records into a summary: time-resolved CO2e, prefixes, hostile values."""

from __future__ import annotations

import pytest

from carbonwrap.runlog.records import utc_iso
from carbonwrap.runlog.summary import Fold

T0 = 1_764_000_000.0

START = {
    "type": "start",
    "run_id": "abc",
    "argv": ["python", "train.py"],
    "host": "node1",
    "time": "2026-11-27T00:00:00.000Z",
    "cpu_accounting": "cgroup2",
    "components": {"cpu": {"method": "rapl", "basis": "2 packages"}, "dram": {"method": "rapl"}},
    "region": {"code": "DK", "source": "flag", "detail": "--region DK"},
    "pue": 1.5,
}


def sample(elapsed: float, cpu_j: float, dram_j: float, kind: str = "sample") -> dict[str, object]:
    return {
        "type": kind,
        "elapsed_s": elapsed,
        "cpu_s": elapsed,
        "time": utc_iso(T0 + elapsed),
        "energy_j": {"cpu": cpu_j, "dram": dram_j},
        "device_energy_j": {"cpu": 2 * cpu_j, "dram": 2 * dram_j},
    }


def intensity(value: float, source: str = "static") -> dict[str, object]:
    return {"type": "intensity", "intensity_g_per_kwh": value, "source": source, "region": "DK"}


def fold(records: list[dict[str, object]]) -> Fold:
    f = Fold()
    for r in records:
        f.add(r)
    return f


def test_co2e_uses_the_intensity_in_force_for_each_interval() -> None:
    records = [
        START,
        intensity(100.0),
        sample(10, 3.6e6, 0.0),  # 1 kWh at 100 g/kWh × PUE 1.5 = 150 g
        intensity(300.0, "live"),
        sample(20, 3.6e6 + 1.8e6, 1.8e6),  # +1 kWh at 300 × 1.5 = 450 g
        {**sample(20, 3.6e6 + 1.8e6, 1.8e6, "end"), "exit_code": 0, "signal": None},
    ]
    s = fold(records).summary()
    assert s.co2e_g == pytest.approx(600.0)
    assert s.intensity_mean_g_per_kwh == pytest.approx(200.0)  # energy-weighted
    assert (s.intensity_min_g_per_kwh, s.intensity_max_g_per_kwh) == (100.0, 300.0)
    assert s.intensity_sources == ["static", "live"]
    assert s.energy_j == pytest.approx(7.2e6)
    assert s.device_energy_j == pytest.approx(14.4e6)
    assert s.components["cpu"].method == "rapl" and s.components["cpu"].basis == "2 packages"
    assert s.complete and s.status == "ok" and s.exit_code == 0
    assert s.pue == 1.5 and s.command == ["python", "train.py"]


def test_a_prefix_is_an_incomplete_run_counted_to_its_last_sample() -> None:
    s = fold([START, intensity(200.0), sample(10, 3.6e6, 0.0)]).summary()
    assert s.status == "incomplete" and s.exit_code is None
    assert s.duration_s == 10 and s.co2e_g == pytest.approx(300.0)


def test_measured_history_replaces_the_live_value_for_its_window() -> None:
    records = [
        START,
        intensity(100.0, "live"),
        sample(10, 3.6e6, 0.0),  # 1 kWh at 100 (provisional)
        {
            "type": "intensity",
            "kind": "measured",
            "intensity_g_per_kwh": 80.0,
            "source": "history",
            "valid_from": utc_iso(T0 - 3600),
            "valid_to": utc_iso(T0 + 3600),
        },
    ]
    s = fold(records).summary()
    assert s.co2e_g == pytest.approx(80.0 * 1.5)
    assert s.intensity_measured_share == 1.0
    assert s.intensity_sources == ["live", "history"]


def test_hostile_values_are_ignored_not_trusted() -> None:
    records = [
        {**START, "pue": "high", "argv": "rm -rf /", "components": [1, 2]},
        intensity(float("nan")),
        {"type": "intensity", "intensity_g_per_kwh": True},
        {"type": "sample", "elapsed_s": "x", "energy_j": {"cpu": float("inf")}, "cpu_s": None},
        {"type": "end", "exit_code": "0", "signal": 9, "leftover_pids": ["1", 2]},
    ]
    s = fold(records).summary()
    assert s.pue == 1.0 and s.command is None
    assert s.intensity_mean_g_per_kwh is None and s.co2e_g == 0.0
    assert s.exit_code is None and s.signal is None and s.leftover_pids == [2]
