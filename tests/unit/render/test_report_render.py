"""The report's renderers: pure functions of summaries, pinned by golden files.

Regenerate the golden files after an intended change with CARBONWRAP_UPDATE_GOLDEN=1."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from pathlib import Path

import pytest
from conftest import TESTS
from rich.console import Console

from carbonwrap.commands.report import ReportOptions
from carbonwrap.commands.report import report as report_command
from carbonwrap.render.exports import codecarbon_csv, report_document, runs_csv
from carbonwrap.render.runs import render_rich, render_text, runs_view
from carbonwrap.report.model import Place, ReadStats, Report
from carbonwrap.report.select import build_report, parse_time
from carbonwrap.runlog.summary import ComponentSummary, GpuSummary, RunSummary

GOLDEN = TESTS / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CARBONWRAP_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed (CARBONWRAP_UPDATE_GOLDEN=1 to accept)"


def run(
    run_id: str,
    started: str,
    command: list[str] | None,
    energy_j: float,
    co2e_g: float,
    duration_s: float,
    **extra: object,
) -> RunSummary:
    s = RunSummary(
        run_id=run_id,
        command=command,
        host="node1",
        cwd="/home/ada/project",
        started_at=started,
        ended_at=started[:11] + "23:59:59.000Z",
        duration_s=duration_s,
        cpu_s=duration_s * 1.5,
        cpu_accounting="cgroup2",
        exit_code=0,
        complete=True,
        components={
            "cpu": ComponentSummary("rapl", "", energy_j * 0.8, energy_j * 1.6),
            "dram": ComponentSummary("rapl", "", energy_j * 0.2, energy_j * 0.4),
            "gpu": ComponentSummary("unavailable: no NVIDIA driver"),
        },
        pue=1.2,
        region={"code": "DK", "kind": "country", "source": "flag"},
        intensity_mean_g_per_kwh=150.0,
        intensity_min_g_per_kwh=120.0,
        intensity_max_g_per_kwh=180.0,
        intensity_sources=["Energi Data Service CO2Emis"],
        intensity_signals=["average"],
        co2e_g=co2e_g,
        job={"SLURM_JOB_ID": "4242"},
        tags={"exp": "baseline"},
        log_path=f"logs/carbonwrap-{run_id}.jsonl",
    )
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def runs() -> list[RunSummary]:
    gpu = GpuSummary(0, "NVIDIA A100-SXM4-40GB", "GPU-1", "nvml-counter", False, 9e6, 1e7)
    return [
        run("000000000001", "2026-11-25T08:00:00.000Z", ["true"], 0.5, 0.00002, 0.01,
            job={}, tags={}),
        run("000000000002", "2026-11-25T09:30:00.000Z", ["python", "train.py", "--epochs", "3"],
            54_000.0, 2.7, 300.0),
        run("000000000003", "2026-11-26T10:00:00.000Z",
            ["python", "train.py", "--config", "configs/very/long/path/to/experiment.yaml"],
            7.2e9, 360_000.0, 90_000.0, tags={"exp": "big"}, job={"SLURM_JOB_ID": "4243"},
            gpus={0: gpu}, region={"code": "US-CA", "kind": "us-state", "source": "flag"}),
        run("000000000004", "2026-11-26T11:00:00.000Z", ["bash", "-c", "sleep 100"], 3.6e6,
            180.0, 3600.0, complete=False, exit_code=None, ended_at="2026-11-26T12:00:00.000Z"),
        run("000000000005", "2026-11-27T12:00:00.000Z", ["make", "test"], 720.0, 0.036, 65.0,
            exit_code=143, signal="SIGTERM", host="node2", job={}, tags={"exp": "ci"}),
        run("000000000006", "2026-11-27T13:00:00.000Z", None, 36_000.0, 1.5, 12.0,
            exit_code=1, host="node2", job={"TORCHELASTIC_RUN_ID": "none"}, tags={}),
    ]  # fmt: skip


def stats() -> ReadStats:
    return ReadStats(logs=8, incomplete=1, bad_lines=3, not_logs=2, duplicates=1)


def report(group_by: str | None = None, **filters: object) -> Report:
    return build_report(runs(), stats(), group_by, **filters)  # type: ignore[arg-type]


def rich_text(renderable: object, width: int = 100) -> str:
    console = Console(record=True, width=width, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("group_by", [None, "job", "tag:exp"])
def test_the_table_as_text_and_rich(group_by: str | None) -> None:
    view = runs_view(report(group_by))
    name = f"report-{(group_by or 'runs').replace(':', '-')}"
    check_golden(f"{name}.txt", render_text(view))
    check_golden(f"{name}-rich.txt", rich_text(render_rich(view)))


def test_units_scale_in_the_table() -> None:
    text = render_text(runs_view(report()))
    # One unit a column (the typical run's), 3 significant digits each, large values whole.
    for unit in ("0.000139 Wh", "15.0 Wh", "1,000 Wh", "2,000,000 Wh", "0.000020 g",
                 "0.0360 g", "2.70 g", "360,000 g", "12 s", "1 min 05 s", "1 h 00 min",
                 "1 d 01 h"):  # fmt: skip
        assert f" {unit} " in text, unit


def test_a_narrow_terminal_drops_columns_and_shortens_the_command_not_the_numbers() -> None:
    text = rich_text(render_rich(runs_view(report())), width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "2,000,000 Wh" in text and "360,000 g" in text and "KILLED SIGTERM" in text
    assert "incomplete" in text  # (this table's numbers span 2 MWh to 0.5 J: tags give way)
    assert "exp=baseline" in rich_text(render_rich(runs_view(report())), width=100)
    # What tells the two train.py runs apart is kept: the option and the file's name.
    assert "python train.py --epochs 3" in text and "python … --config …/experiment.yaml" in text
    narrow = rich_text(render_rich(runs_view(report())), width=60)
    assert all(len(line) <= 60 for line in narrow.splitlines())
    # Numbers never cut; with this table's 2,000,000 Wh beside 0.000139 Wh the command is
    # squeezed hardest, its start kept.
    assert "python … " in narrow and "2,000,000 Wh" in narrow and "FAILED exit 1" in narrow
    assert "host" not in text and "duration" not in text  # the first columns to give way
    wide = rich_text(render_rich(runs_view(report())), width=160)
    assert "configs/very/long/path/to/experiment.yaml" in wide
    assert "2026-11-26 10:00" in wide and "1 h 00 min" in wide and "US-CA" in wide


def test_an_empty_report() -> None:
    empty = build_report([], ReadStats())
    view = runs_view(empty)
    assert render_text(view) == "No runs.\n  0 runs from 0 logs\n"
    assert rich_text(render_rich(view)).splitlines()[0] == "No runs."


def test_filters_leave_out_runs_and_say_so() -> None:
    since = parse_time("2026-11-26", "--since")
    until = parse_time("2026-11-26", "--until", end_of_day=True)
    r = report(since_s=since, until_s=until, tags={"exp": "baseline"})
    assert [s.run_id for s in r.runs] == ["000000000004"]
    assert r.stats.filtered_out == 5
    assert "5 runs outside the filters left out" in render_text(runs_view(r))
    assert r.filters == {
        "since": "2026-11-26T00:00:00Z",
        "until": "2026-11-27T00:00:00Z",
        "tags": {"exp": "baseline"},
    }


def test_the_json_document() -> None:
    document = report_document(report("job"))
    check_golden("report.json", json.dumps(document, indent=2) + "\n")
    assert document["schema"] == "carbonwrap.report/2"
    # Units in every key that holds a quantity.
    for key in document["totals"]:
        assert key in ("runs", "incomplete_runs", "failed_runs") or key.endswith(
            ("_s", "_seconds", "_kwh", "_kg")
        )


def test_csv_and_codecarbon_columns() -> None:
    r = report()
    check_golden("report.csv", runs_csv(r.runs))
    places = {
        "DK": Place("Denmark", "DNK"),
        "US-CA": Place("United States", "USA", "california"),
    }
    check_golden("report-codecarbon.csv", codecarbon_csv(r.runs, places))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_and_indented_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out, err = Terminal(), io.StringIO()
    assert report_command(ReportOptions([tmp_path / "empty"]), {"TERM": "xterm"}, out, err) == 0
    assert out.getvalue().startswith("\x1b[1mNo runs.")  # bold, from rich
    assert err.getvalue() == f"carbonwrap: no carbonwrap logs found in {tmp_path / 'empty'}\n"
    out = Terminal()
    options = ReportOptions([tmp_path / "empty"], as_json=True)
    report_command(options, {"TERM": "xterm"}, out, io.StringIO())
    assert out.getvalue().startswith('{\n  "schema": "carbonwrap.report/2"')
    dumb = Terminal()
    report_command(ReportOptions([tmp_path / "empty"]), {"TERM": "dumb"}, dumb, io.StringIO())
    assert dumb.getvalue().startswith("No runs.\n")


@pytest.mark.parametrize(
    ("text", "until", "expected"),
    [
        ("2026-11-27", False, "2026-11-27T00:00:00+00:00"),
        ("2026-11-27", True, "2026-11-28T00:00:00+00:00"),
        ("2026-11-27T14:30", True, "2026-11-27T14:30:00+00:00"),
        ("2026-11-27 14:30:15Z", False, "2026-11-27T14:30:15+00:00"),
        ("2026-11-27T14:30+01:00", False, "2026-11-27T13:30:00+00:00"),
    ],
)
def test_times_for_since_and_until(text: str, until: bool, expected: str) -> None:
    got = dt.datetime.fromtimestamp(parse_time(text, "--until", end_of_day=until), dt.timezone.utc)
    assert got.isoformat() == expected
