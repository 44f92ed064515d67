"""The report built as the runs are read (issue 19): the same totals, groups, JSON and CSV as
from every summary held, a table of the most recent runs, a fuller copy replacing a run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from log_records import intensity_record, sample_record, start_record, write

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.render.exports import (
    RunsCsv,
    report_document,
    run_json,
    runs_csv,
    write_document,
)
from carbonwrap.render.runs import render_text, runs_view
from carbonwrap.report.model import ReadStats, run_key
from carbonwrap.report.read import read_into, read_runs
from carbonwrap.report.select import ReportBuilder, build_report
from carbonwrap.report.spool import RunSpool
from carbonwrap.runlog.summary import RunSummary


def logs(root: Path, n: int) -> Path:
    for k in range(n):
        lines: list[Any] = [
            start_record(run_id=f"run{k:04d}", tags={"exp": "ab"[k % 2]}, host=f"h{k % 3}"),
            intensity_record(0, 100.0 + k),
        ]
        lines += [sample_record(10 * i + k, 50.0 * i * (k + 1), 5.0 * i) for i in range(1, 4)]
        if k % 7:
            lines.append(sample_record(40 + k, 200.0 * (k + 1), 20.0, "end"))
        write(root / f"log{(k * 37) % n:04d}.jsonl", lines)  # files not in start order
    return root


def summaries(n: int) -> list[RunSummary]:
    return [
        RunSummary(
            run_id=f"r{k:03d}",
            started_at=f"2026-09-21T00:{k // 60:02d}:{k % 60:02d}Z",
            command=["train", str(k)],
            host="h",
            tags={"exp": "ab"[k % 2], **({"odd": "1"} if k == 5 else {})},
            complete=True,
            exit_code=0,
            duration_s=1.0 + k,
            co2e_g=0.5 * k,
        )
        for k in range(n)
    ]


@pytest.mark.parametrize("indent", [None, 2])
def test_the_document_with_spooled_runs_is_what_json_dumps_writes(indent: int | None) -> None:
    runs = summaries(5)
    for n in (0, 1, 5):
        spool = RunSpool(run_json(indent))
        builder = ReportBuilder(ReadStats(logs=n), "tag:exp", spool=spool)
        for s in reversed(runs[:n]):  # read in any order: listed by start time
            builder.add(s)
        written = io.StringIO()
        write_document(builder.report(), written.write, indent)
        whole = build_report(runs[:n], ReadStats(logs=n), "tag:exp")
        assert written.getvalue() == json.dumps(report_document(whole), indent=indent) + "\n"
        spool.close()


def test_the_spooled_csv_is_what_runs_csv_writes() -> None:
    runs = summaries(6)
    csv = RunsCsv()
    spool = RunSpool(csv.encode, csv.forget)
    for s in runs[::-1]:
        spool.add(run_key(s), s)
    written = io.StringIO()
    csv.write(spool.rows(), written.write)
    assert written.getvalue() == runs_csv(runs)
    spool.remove(run_key(runs[5]), runs[5])  # the only run tagged odd=1: its column goes
    written = io.StringIO()
    csv.write(spool.rows(), written.write)
    assert written.getvalue() == runs_csv(runs[:5]) and "tag:odd" not in written.getvalue()


def test_the_table_lists_the_most_recent_runs_and_totals_them_all() -> None:
    runs = summaries(30)
    builder = ReportBuilder(ReadStats(logs=30), listed=4)
    for s in runs:
        builder.add(s)
    result = builder.report()
    assert [s.run_id for s in result.runs] == ["r026", "r027", "r028", "r029"]
    assert result.totals.runs == 30 and result.runs_not_listed == 26
    assert result.totals.co2e_g == pytest.approx(sum(s.co2e_g for s in runs))
    text = render_text(runs_view(result))
    assert "the 4 most recent listed, 26 earlier counted in the total only" in text
    assert "30 runs" in text


def test_read_into_a_builder_equals_every_summary_held(tmp_path: Path) -> None:
    root = logs(tmp_path / "logs", 80)
    held, stats_held = read_runs([root], workers=2)
    builder = ReportBuilder(ReadStats(), "tag:exp", listed=10)
    stats = read_into([root], builder, workers=2)
    streamed, whole = builder.report(), build_report(held, stats_held, "tag:exp")
    assert stats == stats_held and stats.logs == 80
    assert streamed.runs == held[-10:]
    assert streamed.totals.runs == whole.totals.runs == 80
    for a, b in zip(streamed.groups or [], whole.groups or [], strict=True):
        assert (a.key, a.totals.runs, a.run_ids) == (b.key, b.totals.runs, b.run_ids)
        assert a.totals.energy_j == pytest.approx(b.totals.energy_j)


def test_a_fuller_copy_read_later_replaces_the_run_in_every_figure(tmp_path: Path) -> None:
    lines: list[Any] = [start_record(run_id="same"), intensity_record(0, 100.0)]
    lines += [sample_record(10, 100.0, 10.0)]
    write(tmp_path / "a-cut.jsonl", lines)  # read first (sorted paths, one process)
    write(tmp_path / "b-whole.jsonl", [*lines, sample_record(20, 300.0, 30.0, "end")])
    builder = ReportBuilder(ReadStats(), "host", listed=5, spool=RunSpool(run_json(None)))
    stats = read_into([tmp_path], builder, workers=1)
    result = builder.report()
    assert (stats.logs, stats.duplicates, stats.incomplete) == (2, 1, 0)
    assert result.totals.runs == 1 and result.totals.energy_j == pytest.approx(330.0)
    assert [s.log_path for s in result.runs] == [str(tmp_path / "b-whole.jsonl")]
    assert result.groups is not None and result.groups[0].totals.runs == 1
    assert result.groups[0].run_ids == ["same"]
    out = io.StringIO()
    write_document(result, out.write, None)
    (only,) = json.loads(out.getvalue())["runs"]
    assert only["log_complete"] is True


def test_the_command_lists_every_run_in_json_and_csv(tmp_path: Path) -> None:
    root = logs(tmp_path / "logs", 70)
    for flag in ("json", "csv"):
        out, err = io.StringIO(), io.StringIO()
        options = ReportOptions([root], as_json=flag == "json", as_csv=flag == "csv")
        assert report(options, {}, out, err) == 0
        if flag == "json":
            document = json.loads(out.getvalue())
            ids = [run["run_id"] for run in document["runs"]]
        else:
            ids = [line.split(",")[0] for line in out.getvalue().splitlines()[1:]]
        assert ids == [f"run{k:04d}" for k in range(70)]
