"""Attribution arithmetic with plain numbers."""

from __future__ import annotations

import itertools

import pytest

from carbonwrap.measure.attribution import (
    EnergyModel,
    Reading,
    busy_share,
    counter_delta,
    interval_energy,
)
from carbonwrap.measure.gpu_attribution import (
    CounterRejected,
    GpuCarry,
    GpuShare,
    PowerCheck,
    counter_power_disagree,
    ended_in_tree,
    gpu_carry_flush,
    gpu_device_energy_j,
    gpu_interval,
    gpu_share,
    gpu_step,
    power_check_step,
)
from carbonwrap.runlog.ledger import co2e_g
from carbonwrap.sensors.gpu import GpuSample


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


# -- GPU intervals with state: a counter that fails to read, accounting, the cross-check --

GPU_MODEL = EnergyModel(cpu_method="estimate", dram_method="estimate", gpu=True)
OURS, FOREIGN = 100, 200


def gpu_reading(
    t: float,
    energy_j: float | None,
    power_w: float | None = None,
    processes: dict[int, int] | None = None,
    sm: dict[int, float] | None = None,
    tree: frozenset[int] = frozenset({OURS}),
) -> Reading:
    sample = GpuSample(energy_j, power_w, {OURS: 1} if processes is None else processes, sm or {})
    return Reading(t, 0.0, 0.0, tree_pids=tree, gpu={0: sample})


def run_steps(readings: list[Reading]) -> tuple[list[GpuShare], dict[int, GpuCarry]]:
    carries: dict[int, GpuCarry] = {}
    shares = []
    for prev, cur in itertools.pairwise(readings):
        step = gpu_step(prev, cur, GPU_MODEL, carries)
        carries = step.carries
        shares.append(step.shares[0])
    return shares, carries


def test_a_failed_counter_read_loses_no_energy() -> None:
    """Before the fix one failed read in the middle lost 2 of 3 intervals (-66.7 %): the
    intervals on either side of it counted 0."""
    shares, carries = run_steps(
        [
            gpu_reading(0, 1000.0),
            gpu_reading(10, 3000.0),
            gpu_reading(20, None),
            gpu_reading(30, 7000.0),
        ]
    )
    assert sum(s.device_energy_j for s in shares) == pytest.approx(6000.0)
    assert sum(s.energy_j for s in shares) == pytest.approx(6000.0)
    assert [s.method for s in shares] == ["sole-user"] * 3  # every interval keeps its method
    assert carries[0] == GpuCarry(7000.0)  # nothing waits any more


def test_carried_intervals_are_shared_by_duration_and_share() -> None:
    # 30 s where the tree was not on the device, 10 s at a 3/4 SM share, then 20 s as the one
    # busy process; the counter fails at the first two ends: 6000 J over 60 s for all three.
    readings = [
        gpu_reading(0, 0.0, processes={FOREIGN: 1}, tree=frozenset()),
        gpu_reading(30, None, processes={FOREIGN: 1}, tree=frozenset()),
        gpu_reading(40, None, processes={OURS: 1, FOREIGN: 1}, sm={OURS: 75.0, FOREIGN: 25.0}),
        gpu_reading(60, 6000.0, sm={OURS: 50.0}),
    ]
    shares, _ = run_steps(readings)
    assert [s.method for s in shares] == ["not-in-use", "sm-share", "sm-share"]
    assert [s.energy_j for s in shares[:2]] == [0.0, 0.0]  # waiting
    # 100 J/s: the device's part is the 30 s the tree used it, the tree's 0.75×10 s + 20 s.
    assert shares[2].device_energy_j == pytest.approx(3000.0)
    assert shares[2].energy_j == pytest.approx(2750.0)


def test_counter_missing_at_both_ends_uses_power_and_a_never_returning_counter_flushes() -> None:
    # No good counter before: power serves, as before the carry existed.
    shares, _ = run_steps([gpu_reading(0, None, 100.0), gpu_reading(10, None, 300.0)])
    assert shares[0].device_energy_j == pytest.approx(2000.0)
    # A counter that fails and never reads again: the waiting intervals' power, at the end.
    shares, carries = run_steps(
        [gpu_reading(0, 50.0, 100.0), gpu_reading(10, None, 100.0), gpu_reading(20, None, 300.0)]
    )
    assert [s.device_energy_j for s in shares] == [0.0, 0.0]
    flushed = gpu_carry_flush(carries[0])
    assert flushed is not None and flushed.device_energy_j == pytest.approx(1000.0 + 2000.0)
    assert gpu_carry_flush(GpuCarry(5.0)) is None


def test_a_counter_back_after_a_gap_but_reset_is_rejected_with_power_standing_in() -> None:
    step = None
    carries: dict[int, GpuCarry] = {}
    readings = [
        gpu_reading(0, 900.0, 100.0),
        gpu_reading(10, None, 100.0),
        gpu_reading(20, 5.0, 100.0),
    ]
    for prev, cur in itertools.pairwise(readings):
        step = gpu_step(prev, cur, GPU_MODEL, carries)
        carries = step.carries
    assert step is not None
    assert step.shares[0].device_energy_j == pytest.approx(2000.0)  # 100 W × 20 s
    assert step.rejected == [CounterRejected(0, 900.0, 5.0, 20.0, True)]
    assert carries[0] == GpuCarry(5.0)


def test_stateless_gpu_interval_is_one_step() -> None:
    prev, cur = gpu_reading(0, 100.0), gpu_reading(1, 160.5)
    assert gpu_interval(prev, cur, GPU_MODEL) == {0: GpuShare(60.5, 60.5, "sole-user")}


# -- processes only NVML accounting saw (started and ended between two readings) --

SHORT = 300  # a PID the tree's listing never held


def accounting_reading(
    t: float,
    energy_j: float,
    processes: dict[int, int],
    ended: dict[int, int],
    sm: dict[int, float] | None = None,
    tree: frozenset[int] = frozenset({OURS}),
) -> Reading:
    sample = GpuSample(energy_j, None, processes, sm or {}, ended=ended)
    return Reading(t, 0.0, 0.0, tree_pids=tree, gpu={0: sample})


def test_a_short_process_alone_on_the_device_is_credited_as_accounting() -> None:
    """Before accounting was read, the interval was not-in-use: 0 J for a real GPU job."""
    prev = accounting_reading(0, 0.0, {}, {})
    cur = accounting_reading(10, 2000.0, {}, {SHORT: 500}, sm={SHORT: 90.0})
    (share,) = gpu_step(prev, cur, GPU_MODEL, {}).shares.values()
    assert share == GpuShare(2000.0, 2000.0, "accounting")


def test_a_short_process_beside_a_foreign_one_is_credited_only_if_the_tree_listed_it() -> None:
    prev = accounting_reading(0, 0.0, {FOREIGN: 100}, {})
    cur = accounting_reading(10, 2000.0, {FOREIGN: 100}, {SHORT: 300})
    # Unknown: a foreign process used the device, so the short one may be anybody's; it still
    # held a context in the interval and takes its part from the tree's share.
    assert gpu_step(prev, cur, GPU_MODEL, {}).shares[0].method == "not-in-use"
    # The tree listed the PID at the interval's start (it lived there, GPU work came later).
    listed = cur._replace(tree_pids=frozenset({OURS, SHORT}))
    share = gpu_step(prev, listed, GPU_MODEL, {}).shares[0]
    assert share.method == "accounting"
    assert share.energy_j == pytest.approx(1500.0)  # no samples: 300 of 400 bytes


@pytest.mark.parametrize(
    ("tree", "processes", "sm", "ended", "credited"),
    [
        ({OURS}, {}, {}, {}, set()),
        ({OURS}, {OURS: 1}, {OURS: 5.0}, {SHORT: 1}, {SHORT}),  # only the tree and it
        ({OURS}, {FOREIGN: 1}, {}, {SHORT: 1}, set()),  # a foreign context
        ({OURS}, {}, {FOREIGN: 3.0}, {SHORT: 1}, set()),  # foreign samples
        ({OURS, SHORT}, {FOREIGN: 1}, {}, {SHORT: 1, 301: 1}, {SHORT}),  # listed by the tree
        ({OURS}, {}, {}, {SHORT: 1, 301: 1}, {SHORT, 301}),
    ],
)
def test_ended_in_tree(
    tree: set[int],
    processes: dict[int, int],
    sm: dict[int, float],
    ended: dict[int, int],
    credited: set[int],
) -> None:
    assert ended_in_tree(frozenset(tree), processes, sm, ended) == credited


# -- the counter checked against integrated power --


@pytest.mark.parametrize(
    ("counter_j", "power_j", "span_s", "disagree"),
    [
        (12000.0, 10000.0, 60.0, True),  # +20 %
        (11400.0, 10000.0, 60.0, False),  # +14 %
        (8400.0, 10000.0, 60.0, True),  # -16 %
        (12000.0, 10000.0, 59.0, False),  # window too short
        (1500.0, 1000.0, 60.0, False),  # 16.7 W mean: idle, not judged
        (1500.0, 1200.0, 60.0, True),  # 20 W mean: judged, +25 %
    ],
)
def test_counter_power_disagree(
    counter_j: float, power_j: float, span_s: float, disagree: bool
) -> None:
    assert counter_power_disagree(counter_j, power_j, span_s) is disagree


def test_power_check_windows_are_60_s_of_intervals_with_both_readings() -> None:
    def sample(energy_j: float | None, power_w: float | None) -> GpuSample:
        return GpuSample(energy_j, power_w, {}, {})

    check = PowerCheck()
    # Counter missing at one end or power missing: not part of the window.
    check, verdict = power_check_step(check, sample(0.0, 200.0), sample(None, 200.0), 10.0)
    check, verdict = power_check_step(check, sample(0.0, None), sample(2000.0, 200.0), 10.0)
    assert check == PowerCheck() and verdict is None
    energy_j = 0.0
    for _ in range(5):  # 50 s: counter 250 W, power 200 W
        check, verdict = power_check_step(
            check, sample(energy_j, 200.0), sample(energy_j + 2500.0, 200.0), 10.0
        )
        energy_j += 2500.0
        assert verdict is None
    assert check == PowerCheck(12500.0, 10000.0, 50.0)
    check, verdict = power_check_step(
        check, sample(energy_j, 200.0), sample(energy_j + 2500.0, 200.0), 10.0
    )
    assert verdict == PowerCheck(15000.0, 12000.0, 60.0)
    assert check == PowerCheck()  # a new window
