"""Attribution arithmetic with plain numbers."""

from __future__ import annotations

import pytest

from carbonwrap.measure.attribution import (
    EnergyModel,
    Reading,
    busy_share,
    counter_delta,
    gpu_device_energy_j,
    gpu_share,
    interval_energy,
)
from carbonwrap.runlog.ledger import co2e_g


def test_counter_delta_without_wrap() -> None:
    assert counter_delta(100.0, 150.5, 1000.0) == pytest.approx(50.5)


def test_counter_delta_wraps_once_at_max_range() -> None:
    # 990 J -> wraps at 1000 J -> reads 15 J: 10 J before the wrap plus 15 after.
    assert counter_delta(990.0, 15.0, 1000.0) == pytest.approx(25.0)


def test_counter_delta_unknown_range_never_negative() -> None:
    assert counter_delta(990.0, 15.0, 0.0) == 0.0


@pytest.mark.parametrize(
    ("tree", "busy", "share"),
    [(1.0, 4.0, 0.25), (0.0, 4.0, 0.0), (2.0, 0.0, 1.0), (5.0, 4.0, 1.0)],
)
def test_busy_share(tree: float, busy: float, share: float) -> None:
    assert busy_share(tree, busy) == pytest.approx(share)


def test_co2e_grams() -> None:
    # 3.6 MJ = 1 kWh; × PUE 1.5 × 400 g/kWh = 600 g.
    assert co2e_g(3.6e6, 1.5, 400.0) == pytest.approx(600.0)


RAPL = EnergyModel(
    cpu_method="rapl",
    dram_method="rapl",
    zone_kind={"intel-rapl:0": "package", "intel-rapl:1": "package", "intel-rapl:0:0": "dram"},
    zone_max_j={"intel-rapl:0": 262143.0, "intel-rapl:1": 262143.0, "intel-rapl:0:0": 65535.0},
)


def test_rapl_interval_shares_package_and_dram_by_busy_time() -> None:
    prev = Reading(
        0.0, 10.0, 100.0, {"intel-rapl:0": 1000.0, "intel-rapl:1": 50.0, "intel-rapl:0:0": 10.0}
    )
    cur = Reading(
        1.0, 10.5, 102.0, {"intel-rapl:0": 1060.0, "intel-rapl:1": 90.0, "intel-rapl:0:0": 18.0}
    )
    result = interval_energy(prev, cur, RAPL)
    # Packages: 60 + 40 = 100 J; tree busy 0.5 s of 2 s => 25 J. DRAM 8 J => 2 J.
    assert result["cpu"].device_energy_j == pytest.approx(100.0)
    assert result["cpu"].energy_j == pytest.approx(25.0)
    assert result["dram"].device_energy_j == pytest.approx(8.0)
    assert result["dram"].energy_j == pytest.approx(2.0)


def test_rapl_interval_with_wraparound() -> None:
    prev = Reading(
        0.0, 0.0, 0.0, {"intel-rapl:0": 262140.0, "intel-rapl:1": 0.0, "intel-rapl:0:0": 0.0}
    )
    cur = Reading(1.0, 1.0, 1.0, {"intel-rapl:0": 7.0, "intel-rapl:1": 0.0, "intel-rapl:0:0": 0.0})
    result = interval_energy(prev, cur, RAPL)
    assert result["cpu"].device_energy_j == pytest.approx(10.0)
    assert result["cpu"].energy_j == pytest.approx(10.0)


def test_estimate_interval_uses_rated_power_and_resident_memory() -> None:
    model = EnergyModel(
        cpu_method="estimate", dram_method="estimate", cpu_w_per_cpu=12.0, dram_w_per_gb=0.5
    )
    prev = Reading(0.0, 0.0, 1.0, tree_rss_bytes=2_000_000_000, used_memory_bytes=8_000_000_000)
    cur = Reading(10.0, 5.0, 9.0, tree_rss_bytes=4_000_000_000, used_memory_bytes=8_000_000_000)
    result = interval_energy(prev, cur, model)
    assert result["cpu"].energy_j == pytest.approx(60.0)  # 5 CPU-s × 12 W
    assert result["cpu"].device_energy_j == pytest.approx(96.0)  # 8 busy CPU-s × 12 W
    assert result["dram"].energy_j == pytest.approx(15.0)  # mean 3 GB × 0.5 W/GB × 10 s
    assert result["dram"].device_energy_j == pytest.approx(40.0)  # 8 GB × 0.5 × 10


def test_attributed_never_exceeds_device_when_tree_outruns_procstat() -> None:
    prev = Reading(0.0, 0.0, 0.0, {"intel-rapl:0": 0.0, "intel-rapl:1": 0.0, "intel-rapl:0:0": 0.0})
    cur = Reading(0.1, 0.2, 0.1, {"intel-rapl:0": 3.0, "intel-rapl:1": 0.0, "intel-rapl:0:0": 1.0})
    result = interval_energy(prev, cur, RAPL)
    assert result["cpu"].energy_j == pytest.approx(result["cpu"].device_energy_j)


TREE = {100, 101}


@pytest.mark.parametrize(
    ("processes", "sm", "share", "method"),
    [
        ({200: 1000}, {200: 90.0}, 0.0, "not-in-use"),
        ({100: 1000, 101: 500}, {100: 50.0}, 1.0, "sole-user"),
        ({100: 1000, 200: 3000}, {100: 60.0, 200: 20.0}, 0.75, "sm-share"),
        ({100: 1000, 200: 3000}, {}, 0.25, "memory-share"),
        ({100: 0, 101: 0, 200: 0}, {}, 2 / 3, "equal-split"),
        # A tree process that exited during the interval still gets its samples.
        ({200: 3000}, {100: 30.0, 200: 10.0}, 0.75, "sm-share"),
        # Sole holder now, but a foreign process ran during the interval: SM share.
        ({100: 1000}, {100: 30.0, 200: 10.0}, 0.75, "sm-share"),
    ],
)
def test_gpu_share_branches(
    processes: dict[int, int], sm: dict[int, float], share: float, method: str
) -> None:
    got_share, got_method = gpu_share(TREE, processes, sm)
    assert got_method == method
    assert got_share == pytest.approx(share)


def test_gpu_share_device_level_when_pids_cannot_match() -> None:
    assert gpu_share(TREE, {555: 10}, {}, device_level=True) == (1.0, "device-level")


def test_gpu_device_energy_counter_then_power() -> None:
    assert gpu_device_energy_j(100.0, 160.5, None, None, 1.0) == pytest.approx(60.5)
    assert gpu_device_energy_j(100.0, 5.0, None, None, 1.0) == 0.0  # driver reloaded
    assert gpu_device_energy_j(None, None, 200.0, 300.0, 2.0) == pytest.approx(500.0)
    assert gpu_device_energy_j(None, None, None, 300.0, 2.0) == 0.0


def test_gpu_counter_spike_is_not_energy() -> None:
    # An Intel hwmon counter that jumps by 2**64 µJ-equivalents over 10 s (18 TJ): not believed;
    # the interval falls back to the power readings, else counts nothing.
    spike_j = 2**64 / 1e6
    assert gpu_device_energy_j(100.0, 100.0 + spike_j, None, None, 10.0) == 0.0
    assert gpu_device_energy_j(100.0, 100.0 + spike_j, 300.0, 300.0, 10.0) == pytest.approx(3000.0)
    # A driver reload (decrease) with power readings: power integrated
    assert gpu_device_energy_j(500.0, 5.0, 100.0, 300.0, 2.0) == pytest.approx(400.0)
    # A coarse counter step in a short final interval is still believed (slack)
    assert gpu_device_energy_j(0.0, 70.0, None, None, 0.005) == pytest.approx(70.0)
