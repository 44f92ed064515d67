"""The sampler with a scripted sequence of readings and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carbonwrap.measure.attribution import EnergyModel, Reading
from carbonwrap.measure.sampler import Sampler, Totals

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
