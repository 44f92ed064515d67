"""The live view's state between the sampler's readings: the view refreshes once a second, the
sampler reads every --interval. A refresh without a new reading keeps the last power (before:
"CPU 0 W · DRAM 0 W"), and the clock ticks on from the reading's time (before: frozen at it)."""

from __future__ import annotations

from carbonwrap.live.feed import LiveFeed
from carbonwrap.measure.sampler import GpuTotals, Totals
from carbonwrap.render.live import live_lines
from carbonwrap.runlog.summary import Fold

COMPONENTS = {"cpu": {"method": "rapl"}, "dram": {"method": "rapl"}, "gpu": {"method": "nvml"}}


class Sampler:
    """What `Sampler.snapshot` gives: the totals of the latest reading, set by the test."""

    def __init__(self) -> None:
        self.totals = Totals()

    def snapshot(self) -> Totals:
        return self.totals.copy()

    def read(self, elapsed_s: float, cpu_j: float, dram_j: float, gpu_j: float) -> None:
        self.totals = Totals(
            elapsed_s,
            elapsed_s,
            {"cpu": cpu_j, "dram": dram_j, "gpu": gpu_j},
            {"cpu": cpu_j, "dram": dram_j, "gpu": gpu_j},
            {0: GpuTotals(gpu_j, gpu_j, {"sole-user": 1})},
        )


def fold_locked(read):  # type: ignore[no-untyped-def]
    return read(Fold())


def powers(feed: LiveFeed) -> dict[str, float | None]:
    return {label: power for label, power, _, _ in feed().components}


def test_the_last_power_holds_until_the_next_reading() -> None:
    sampler = Sampler()
    feed = LiveFeed(sampler.snapshot, fold_locked, COMPONENTS)
    sampler.read(2.0, 24.0, 4.0, 600.0)
    assert powers(feed) == {"CPU": 12.0, "DRAM": 2.0, "GPU 0": 300.0}
    # A second refresh, no reading since: the same powers, not 0 W.
    assert powers(feed) == {"CPU": 12.0, "DRAM": 2.0, "GPU 0": 300.0}
    lines = live_lines(feed(), 200, False)
    assert "CPU 12.0 W" in lines[1] and "DRAM 2.00 W" in lines[1], lines
    assert " 0 W" not in lines[1]
    # Two readings since the last refresh: their mean.
    sampler.read(6.0, 24.0 + 4 * 20.0, 4.0 + 4 * 2.0, 600.0 + 4 * 100.0)
    assert powers(feed) == {"CPU": 20.0, "DRAM": 2.0, "GPU 0": 100.0}
    assert powers(feed) == {"CPU": 20.0, "DRAM": 2.0, "GPU 0": 100.0}


def test_no_power_before_the_first_interval_is_read() -> None:
    sampler = Sampler()
    feed = LiveFeed(sampler.snapshot, fold_locked, {"cpu": {"method": "rapl"}})
    sampler.totals = Totals(0.0, 0.0, {"cpu": 0.0}, {"cpu": 0.0})
    state = feed()
    assert state.components == [("CPU", None, 0.0, "rapl")]
    assert live_lines(state, 200, False)[1] == "CPU 0 J rapl"  # no "CPU 0 W"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_clock_ticks_between_readings() -> None:
    """A reading at 1000.0 s (monotonic), 4 s after the first: the refreshes at 1000.5 and
    1001.5 show 4.5 s and 5.5 s, the next reading's refresh 6.5 s."""
    sampler = Sampler()
    clock = Clock(1000.5)
    feed = LiveFeed(sampler.snapshot, fold_locked, {"cpu": {"method": "rapl"}}, clock)
    sampler.totals = Totals(4.0, 4.0, {"cpu": 48.0}, {"cpu": 48.0}, mono_s=1000.0)
    assert feed().elapsed_s == 4.5
    clock.now = 1001.5
    state = feed()
    assert state.elapsed_s == 5.5
    assert live_lines(state, 200, False)[0].startswith("carbonwrap · 5.5 s · ")
    clock.now = 1002.5
    sampler.totals = Totals(6.0, 6.0, {"cpu": 72.0}, {"cpu": 72.0}, mono_s=1002.0)
    assert feed().elapsed_s == 6.5


def test_without_the_readings_time_the_readings_elapsed() -> None:
    sampler = Sampler()
    feed = LiveFeed(sampler.snapshot, fold_locked, {"cpu": {"method": "rapl"}}, Clock(5e6))
    sampler.totals = Totals(3.0, 3.0, {"cpu": 36.0}, {"cpu": 36.0})  # mono_s 0: unknown
    assert feed().elapsed_s == 3.0
