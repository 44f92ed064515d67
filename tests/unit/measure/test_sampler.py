"""The sampler with a scripted sequence of readings and a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from carbonwrap.measure.attribution import EnergyModel, Reading
from carbonwrap.measure.sampler import Sampler, Totals
from carbonwrap.sensors.gpu import GpuSample

MODEL = EnergyModel(cpu_method="estimate", dram_method="estimate", cpu_w_per_cpu=10.0)


def scripted(readings: list[Reading | Exception]) -> tuple[Iterator[Reading | Exception], object]:
    it = iter(readings)

    def read() -> Reading:
        item = next(it)
        if isinstance(item, Exception):
            raise item
        return item

    return it, read


def test_totals_accumulate_and_failed_read_is_merged_into_next_interval() -> None:
    readings: list[Reading | Exception] = [
        Reading(0.0, 0.0, 0.0),
        Reading(1.0, 1.0, 2.0),
        OSError("stat vanished"),
        Reading(3.0, 2.5, 5.0),
    ]
    _, read = scripted(readings)
    warnings: list[str] = []
    sampler = Sampler(read, MODEL, 1.0, 10.0, lambda t: None, warnings.append)  # type: ignore[arg-type]
    sampler.tick()
    sampler.tick()
    sampler.tick()
    totals = sampler.snapshot()
    assert totals.cpu_s == pytest.approx(2.5)
    assert totals.elapsed_s == pytest.approx(3.0)
    assert totals.energy_j["cpu"] == pytest.approx(25.0)
    assert totals.device_energy_j["cpu"] == pytest.approx(50.0)
    assert len(warnings) == 1 and "stat vanished" in warnings[0]


def test_thread_emits_at_most_once_per_log_interval() -> None:
    t = [0.0]

    def read() -> Reading:
        t[0] += 0.01
        return Reading(t[0], t[0], t[0])

    emitted: list[Totals] = []
    sampler = Sampler(read, MODEL, 0.01, 0.05, emitted.append, lambda m: None)
    sampler.start()
    import time

    time.sleep(0.3)
    sampler.halt()
    final = sampler.final_totals()
    # ~30 ticks at 10 ms; a sample every 50 ms: between 2 and 7 emitted, never one per tick.
    assert 2 <= len(emitted) <= 7
    assert final.cpu_s >= emitted[-1].cpu_s


# -- GPUs: the sampler carries what a counter missed and says what its counters show --

GPU_MODEL = EnergyModel(cpu_method="estimate", dram_method="estimate", gpu=True)
OURS = 4242


def gpu_at(t: float, energy_j: float | None, power_w: float | None = None) -> Reading:
    sample = GpuSample(energy_j, power_w, {OURS: 1 << 30}, {})
    return Reading(t, 0.0, 0.0, tree_pids=frozenset({OURS}), gpu={0: sample})


def gpu_sampler(readings: list[Reading]) -> tuple[Sampler, list[str]]:
    it = iter(readings)
    warnings: list[str] = []
    sampler = Sampler(lambda: next(it), GPU_MODEL, 10.0, 60.0, lambda t: None, warnings.append)
    for _ in readings[1:]:
        sampler.tick()
    return sampler, warnings


def test_one_failed_gpu_counter_read_loses_nothing() -> None:
    """Before the fix: 2000 J of 6000 (-66.7 %), the intervals either side of the failure lost."""
    sampler, warnings = gpu_sampler(
        [gpu_at(0, 1000.0), gpu_at(10, 3000.0), gpu_at(20, None), gpu_at(30, 7000.0)]
    )
    gpu = sampler.snapshot().gpus[0]
    assert gpu.device_energy_j == pytest.approx(6000.0)
    assert gpu.energy_j == pytest.approx(6000.0)
    assert gpu.methods == {"sole-user": 3}
    assert warnings == []


def test_a_counter_that_never_reads_again_gets_power_at_the_end() -> None:
    readings = [gpu_at(0, 0.0, 200.0), gpu_at(10, 2000.0, 200.0)]
    readings += [gpu_at(20, None, 300.0), gpu_at(30, None, 300.0)]
    sampler, warnings = gpu_sampler(readings)
    assert sampler.snapshot().gpus[0].device_energy_j == pytest.approx(2000.0)  # waiting
    final = sampler.final_totals()  # no reading left: the tick fails, the carry is flushed
    assert final.gpus[0].device_energy_j == pytest.approx(2000.0 + 2500.0 + 3000.0)
    assert final.energy_j["gpu"] == pytest.approx(7500.0)
    assert warnings[-1] == (
        "GPU 0: its energy counter did not read again after failing; the last 20 s are counted "
        "from the power readings"
    )


@pytest.mark.parametrize(
    ("readings", "said"),
    [
        (
            [gpu_at(0, 500.0, 100.0), gpu_at(10, 5.0, 100.0), gpu_at(20, 1.0, 100.0)],
            "GPU 0: energy counter went back from 500.000 J to 5.000 J: power used for that "
            "interval",
        ),
        (
            [gpu_at(0, 0.0), gpu_at(10, 1e9), gpu_at(20, 2e9)],
            "GPU 0: energy counter jumped by 1e+09 J in 10.0 s (1e+08 W): no energy counted for "
            "that interval",
        ),
    ],
)
def test_a_counter_not_believed_is_said_once_per_device(readings: list[Reading], said: str) -> None:
    """Before: the interval silently fell back to power (or 0) with nothing said."""
    _, warnings = gpu_sampler(readings)
    assert warnings == [said]


def test_a_counter_that_disagrees_with_integrated_power_is_said_once() -> None:
    # 60 s where the counter says 250 W and the power readings 200 W (+25 %), twice over.
    readings = [gpu_at(10 * i, 2500.0 * i, 200.0) for i in range(13)]
    _, warnings = gpu_sampler(readings)
    assert warnings == [
        "GPU 0: energy counter gave 15000.0 J over 60 s where integrated power gave 12000.0 J "
        "(+25.0 %): the counter is used; power sampled every interval misses what happens "
        "between samples, a counter off by this much may be broken"
    ]
    _, agreeing = gpu_sampler([gpu_at(10 * i, 2100.0 * i, 200.0) for i in range(13)])
    assert agreeing == []


def test_cpu_energy_is_not_counted_twice_while_a_module_gpu_is_in_use() -> None:
    """A GH200 whose counter covers its Grace CPU (GpuInfo.module_scope): intervals in which the
    tree used that GPU count the CPU there only; others count the CPU as usual."""
    model = GPU_MODEL._replace(cpu_w_per_cpu=10.0, cpu_in_gpus=frozenset({0}))
    idle = GpuSample(0.0, None, {}, {})
    readings = [
        Reading(0, 0.0, 0.0, tree_pids=frozenset({OURS}), gpu={0: idle}),
        Reading(10, 5.0, 5.0, tree_pids=frozenset({OURS}), gpu={0: idle}),  # CPU only
        gpu_at(20, 3000.0)._replace(tree_cpu_s=10.0, busy_all_s=10.0),  # the GPU too
    ]
    it = iter(readings)
    sampler = Sampler(lambda: next(it), model, 10.0, 60.0, lambda t: None, lambda m: None)
    sampler.tick()
    sampler.tick()
    totals = sampler.snapshot()
    assert totals.energy_j["cpu"] == pytest.approx(50.0)  # the first interval's 5 CPU-s only
    assert totals.gpus[0].energy_j == pytest.approx(3000.0)  # the module: CPU included


def test_readings_added_later_give_the_same_totals_bit_for_bit() -> None:
    """Without a budget (no `on_reading`) readings wait and are added in a batch when anything
    asks for the totals, or every PENDING_READINGS: the sums are those of adding each at once,
    exactly (==, not approx), through snapshot, energy_now, peek, a logged sample, the end."""
    from carbonwrap.measure import sampler as sampler_module

    model = EnergyModel("estimate", "estimate", cpu_w_per_cpu=7.3, dram_w_per_gb=0.372)
    n = 3 * sampler_module.PENDING_READINGS + 5
    readings = [
        Reading(0.1 * i + 1e-7 * i * i, 0.013 * i + 1e-9 * i**3, 0.031 * i, {}, 10**8 + i, 10**9)
        for i in range(n + 2)
    ]
    reading_at = {"every": 0, "batched": 0}

    def reader(name: str) -> object:
        def read() -> Reading:
            reading_at[name] += 1
            return readings[reading_at[name] - 1]

        return read

    def reading_cpu() -> Reading:
        return readings[-1]

    logged: dict[str, list[Totals]] = {"every": [], "batched": []}

    def sampler(name: str, on_reading: Callable[[Totals], None] | None) -> Sampler:
        return Sampler(
            reader(name),  # type: ignore[arg-type]
            model,
            0.1,
            1.0,
            logged[name].append,
            print,
            clock=lambda: readings[reading_at[name] - 1].mono_s,
            on_reading=on_reading,
        )

    every, batched = sampler("every", lambda t: None), sampler("batched", None)
    for i in range(n):
        every.step()
        batched.step()
        if i % 7 == 3:
            assert batched.energy_now() == every.energy_now()
        if i % 11 == 5:
            assert batched.snapshot() == every.snapshot()
            assert batched.peek(reading_cpu) == every.peek(reading_cpu)
    assert len(logged["every"]) >= 3 and logged["batched"] == logged["every"]
    assert batched.final_totals() == every.final_totals()
