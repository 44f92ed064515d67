"""Energy and CO2e per unit of reported work (`RunSummary.per_unit`): folded from the log's
progress records, read back by `report` (its fast reader), in the JSON and the final report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carbonwrap.render.final import compact_view, render_text, report_view
from carbonwrap.render.json import run_document
from carbonwrap.report.read import read_runs
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import Fold

T0 = 1_800_000_000.0


def log(
    reports: list[tuple[float, float | None, str, str]],
    exit_code: int = 0,
    predicted_done: float | None = None,
) -> list[dict[str, object]]:
    """A run of 100 s using 3.6 MJ (1 kWh) at 200 g/kWh, with these progress reports (done,
    total, unit, source) and a last prediction at `predicted_done` epochs."""
    out: list[dict[str, object]] = [
        records.start(
            run_id="r1", time_s=T0, argv=["train"], cwd="/", host="h", pid=1, versions={},
            cpu_accounting="cgroup-v2", components={"cpu": {"method": "rapl"}},
            region={"code": "DE"}, pue=1.0, interval_s=1.0, log_interval_s=10.0, job={}, tags={},
        ),
        records.intensity(time_s=T0, elapsed_s=0, intensity_g_per_kwh=200.0, region="DE",
                          source="t"),
    ]  # fmt: skip
    for n in range(1, 10):
        out.append(
            records.sample(
                time_s=T0 + 10 * n, elapsed_s=10.0 * n, cpu_s=n, energy_j={"cpu": 36000.0 * n},
                device_energy_j={"cpu": 36000.0 * n},
            )
        )  # fmt: skip
        if n <= len(reports):
            done, total, unit, source = reports[n - 1]
            out.append(records.progress(time_s=T0 + 10 * n, elapsed_s=10.0 * n, done=done,
                                        total=total, unit=unit, source=source))  # fmt: skip
    if predicted_done is not None:
        out.append(records.prediction(
            time_s=T0 + 99, elapsed_s=99.0, done=predicted_done, total=predicted_done,
            unit="epoch", duration_s=100.0, energy_j=3.6e6, co2e_g=200.0,
            duration_margin_s=None, energy_margin_j=None, co2e_margin_g=None,
            intensity_g_per_kwh=200.0, intensity_basis="current", basis="b", intervals=3,
        ))  # fmt: skip
    out.append(records.end(
        time_s=T0 + 100, elapsed_s=100.0, exit_code=exit_code, signal=None, cpu_s=10.0,
        energy_j={"cpu": 3.6e6}, device_energy_j={"cpu": 3.6e6}, leftover_pids=[],
        signals_received=[],
    ))  # fmt: skip
    return out


def fold(lines: list[dict[str, object]]) -> Fold:
    f = Fold()
    for line in lines:
        f.add(line)
    f.summary()
    return f


def test_per_step_from_the_last_report() -> None:
    steps = [(250.0 * n, 1000.0, "step", "channel") for n in range(1, 5)]
    per = fold(log(steps)).s.per_unit
    assert per == {
        "unit": "step",
        "count": 1000.0,
        "energy_j_per_unit": pytest.approx(3600.0),
        "co2e_g_per_unit": pytest.approx(0.2),  # 200 g over 1000 steps
    }


def test_the_channel_counts_before_the_output_and_fractions_do_not_count() -> None:
    reports = [(0.5, 1.0, "fraction", "channel"), (120.0, None, "it", "output")]
    assert fold(log(reports)).s.per_unit["unit"] == "it"  # type: ignore[index]
    both = [(3.0, 10.0, "epoch", "channel"), (500.0, None, "it", "output")]
    assert fold(log(both)).s.per_unit["count"] == 3.0  # type: ignore[index]
    assert fold(log([(0.5, 1.0, "fraction", "channel")])).s.per_unit is None
    assert fold(log([])).s.per_unit is None
    assert fold(log([(0.0, 10.0, "epoch", "channel")])).s.per_unit is None  # nothing done


def test_a_clean_exit_completes_the_last_epoch_as_the_prediction_does() -> None:
    # `Epoch 4/4` in the output reads as 3 done; exit 0 and the last prediction say 4
    lines = log([(3.0, 4.0, "epoch", "output")], predicted_done=4.0)
    assert fold(lines).s.per_unit["count"] == 4.0  # type: ignore[index]
    failed = log([(3.0, 4.0, "epoch", "output")], exit_code=1, predicted_done=4.0)
    assert fold(failed).s.per_unit["count"] == 3.0  # type: ignore[index]


def test_damaged_progress_records_are_skipped() -> None:
    f = fold(log([(2.0, 4.0, "epoch", "channel")]))
    for bad in ({"done": "3"}, {"done": -1}, {"done": 1e400}, {"done": 3, "unit": 7}):
        f.add({"type": "progress", "unit": "epoch", "source": "channel", **bad})
    assert f.s.per_unit["count"] == 2.0  # type: ignore[index]


def test_report_reads_it_back_and_every_report_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "carbonwrap-x.jsonl"
    lines = log([(n, 5, "epoch", "channel") for n in range(1, 6)])
    path.write_bytes(b"".join(records.encode(line) for line in lines))
    (summary,), _ = read_runs([tmp_path], workers=1)  # the fast reader skips most samples
    assert summary.per_unit == fold(lines).s.per_unit
    document = json.loads(json.dumps(run_document(summary)))
    assert document["per_unit"] == {
        "unit": "epoch",
        "count": 5.0,
        "energy_j_per_unit": 720000.0,
        "co2e_g_per_unit": 40.0,
    }
    compact = render_text(compact_view(summary))
    assert "Per epoch  200 Wh, 40.0 g CO2e (the whole run's over 5 reported)" in compact
    assert "Per epoch" in render_text(report_view(summary))
    none = fold(log([]))
    assert "per_unit" not in run_document(none.s)
    assert "Per " not in render_text(compact_view(none.s))
