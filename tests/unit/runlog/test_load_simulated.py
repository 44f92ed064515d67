"""Load, in CI sizes: a simulated day of a run (a week when slow) through carbonwrap's Sampler,
EventLog and Fold on a fake clock and fake counters (bench/load.py's simulated_run): memory
stays flat and the log small."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bench_scenarios import load


def test_a_simulated_day_keeps_memory_and_log_small(tmp_path: Path) -> None:
    result = load.simulated_run(1.0, tmp_path)
    points = result["per_day"]  # every 6 simulated hours
    assert result["log_MB"] < 3.5, result  # a week: ~8.5 MB (bench/load.py), under 20
    assert points[-1]["rss_MB"] - points[0]["rss_MB"] < 2, points
    assert result["samples"] == 8640  # one every 10 s for the first day


@pytest.mark.slow
def test_a_simulated_week(tmp_path: Path) -> None:
    result = load.simulated_run(7.0, tmp_path)
    points = result["per_day"]
    assert result["log_MB"] < 20, result
    assert points[-1]["rss_MB"] - points[3]["rss_MB"] < 2, points  # flat after the first day


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("Linux only", allow_module_level=True)
