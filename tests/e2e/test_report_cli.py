"""`carbonwrap report` over real logs of real runs: a SIGKILLed wrapper, ranks of Slurm jobs,
damaged and foreign files; filters, groups, JSON, CSV and CodeCarbon's columns; bad input."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, run_cw

from carbonwrap.measure.leafjoin import own_cgroup_dir
from carbonwrap.render.exports import CODECARBON_COLUMNS
from carbonwrap.render.json import run_document
from carbonwrap.report.read import summarize_log
from carbonwrap.runlog.reader import RecordReader
from carbonwrap.runlog.records import job_key
from carbonwrap.runlog.summary import Fold

# CodeCarbon 3.3.0's emissions.csv header, as a real run of it writes the file.
CODECARBON_3_3_HEADER = (
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,"
    "country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
    "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
    "ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,"
    "ram_utilization_percent,ram_used_gb,on_cloud,pue,wue"
)
BUSY = "sum(range(3_000_000))"
OFFLINE = ("--intensity-source", "static")


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cw_argv("run", "-q", "--log-dir", "logs", *OFFLINE, *args), cwd=cwd, env=env
    )


def _killed_run(cwd: Path) -> None:
    """A run whose wrapper is SIGKILLed: its log has no end record."""
    script = (
        "import os, time\nopen('ready', 'w').write(str(os.getpid()))\n"
        "end = time.time() + 30\nwhile time.time() < end: pass"
    )
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--log-dir", "logs", *OFFLINE, "--interval", "0.1",
                "--log-interval", "0.2", "--tag", "exp=a", "--", sys.executable, "-c", script),
        cwd=cwd, env=cw_env(),
    )  # fmt: skip
    deadline = time.time() + 20
    while not (cwd / "ready").exists():
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The orphaned command still runs in the run's cgroup leaf: end it and remove the leaf.
    os.kill(int((cwd / "ready").read_text()), signal.SIGKILL)
    log = max(logs_in(cwd / "logs"), key=lambda p: p.stat().st_mtime)
    run_id = log.stem.rsplit("-", 1)[-1]
    for version in (2, 1):
        with contextlib.suppress(Exception):
            leaf = Path(own_cgroup_dir(version)) / f"carbonwrap-{run_id}"
            deadline = time.time() + 5
            while leaf.exists() and time.time() < deadline:
                with contextlib.suppress(OSError):
                    leaf.rmdir()
                time.sleep(0.02)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real logs: two ranks of Slurm job 101, job 102 exiting 3, a run killed with SIGKILL,
    plus a damaged line, a copy of a log, foreign files and a symbolic link loop."""
    cwd = tmp_path_factory.mktemp("report")
    procs = [
        _run(["--region", "DK", "--tag", "exp=a", "--tag", "seed=1", "--", sys.executable,
              "-c", BUSY], cw_env(SLURM_JOB_ID="101", SLURM_PROCID="0"), cwd),
        _run(["--region", "DK", "--pue", "1.5", "--tag", "exp=b", "--", sys.executable,
              "-c", BUSY], cw_env(SLURM_JOB_ID="101", SLURM_PROCID="1"), cwd),
        _run(["--region", "FR", "--tag", "exp=a", "--", sys.executable, "-c",
              "import sys; sys.exit(3)"], cw_env(SLURM_JOB_ID="102"), cwd),
    ]  # fmt: skip
    for proc in procs:
        proc.wait(timeout=60)
    _killed_run(cwd)
    root = cwd / "logs"
    found = logs_in(root)
    assert len(found) == 4
    exit3 = next(p for p in found if json.loads(p.read_text().splitlines()[0])["job"].get(
        "SLURM_JOB_ID") == "102")  # fmt: skip
    lines = exit3.read_text().splitlines(keepends=True)
    exit3.write_text("".join([*lines[:2], "{damaged line\n", *lines[2:]]))
    (root / "sub").mkdir()
    rank0 = next(p for p in found if '"SLURM_PROCID":"0"' in p.read_text().splitlines()[0])
    shutil.copy(rank0, root / "sub" / "copy.jsonl")  # the same run, twice
    (root / "notes.jsonl").write_text("not a log\n{ nor this\n")
    (root / "core.jsonl").write_bytes(bytes(range(256)) * 64)
    (root / "README.txt").write_text("logs of the experiment\n")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    return root


def report(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cw("report", *args, cwd=cwd)


def report_json(*args: str, cwd: Path) -> dict[str, Any]:
    result = report("--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_the_table_lists_each_run_once_with_totals(logs: Path) -> None:
    result = report(str(logs), cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["start", "(UTC)", "command", "tags", "host", "region",
                                "duration", "energy", "CO2e", "status"]  # fmt: skip
    rows = lines[1:5]
    assert sorted(row.split()[-1] for row in rows) == ["3", "incomplete", "ok", "ok"]
    assert sum("FAILED exit 3" in row for row in rows) == 1  # it stands out
    assert sum("exp=a seed=1" in row and " DK " in row for row in rows) == 1
    assert sum("exp=a" in row and " FR " in row for row in rows) == 1
    assert lines[6].startswith("total") and "4 runs" in lines[6]
    notes = "\n".join(lines[7:])
    assert "4 runs from 5 logs" in notes
    assert "1 without an end record (killed or still running): counted up to" in notes
    assert "1 corrupt line skipped" in notes
    assert "1 further copy of runs already read ignored" in notes


def test_each_run_is_exactly_a_fold_of_its_whole_log(logs: Path) -> None:
    """The fast reading, checked against folding every record of real logs."""
    document = report_json(str(logs), cwd=logs.parent)
    by_id = {run["run_id"]: run for run in document["runs"]}
    for path in logs_in(logs):
        fold = Fold()
        reader = RecordReader(path)
        for record in reader:
            fold.add(record)
        full = fold.summary()
        full.log_path = str(path)
        fast = summarize_log(path)
        assert fast is not None and fast.bad_lines == reader.bad_lines
        assert fast.energy_j == full.energy_j and fast.duration_s == full.duration_s
        assert fast.co2e_g == pytest.approx(full.co2e_g, rel=1e-12)
        expected, got = run_document(full), by_id[full.run_id]
        # Sums priced in another order: equal but for the last bits, which the rounding to 6
        # (5) significant digits can turn into one unit of the last digit kept.
        assert got.pop("co2e_kg") == pytest.approx(expected.pop("co2e_kg"), rel=2e-6)
        mean = expected["intensity"].pop("mean_g_per_kwh")
        assert got["intensity"].pop("mean_g_per_kwh") == pytest.approx(mean, rel=2e-5)
        assert got == {**expected, "log_path": got["log_path"]}


def test_a_sigkilled_run_is_counted_up_to_its_last_sample(logs: Path) -> None:
    document = report_json(str(logs), cwd=logs.parent)
    (killed,) = [run for run in document["runs"] if run["status"] == "incomplete"]
    assert killed["exit_code"] is None and killed["ended_at"] is not None
    assert killed["cpu_seconds"] > 0.3 and killed["energy_kwh"]["total"] > 0
    assert killed["co2e_kg"] > 0 and 0.8 < killed["duration_s"] < 20


def test_the_json_document(logs: Path) -> None:
    document = report_json(str(logs), "--group-by", "job", cwd=logs.parent)
    assert document["schema"] == "carbonwrap.report/2"
    assert document["logs"] == {
        "read": 5,
        "incomplete": 1,
        "corrupt_lines": 1,
        "not_logs": 2,
        "duplicates": 1,
        "unreadable": [],
        "runs_filtered_out": 0,
    }
    runs = document["runs"]
    assert len(runs) == 4 and all(run["schema"] == "carbonwrap.run/2" for run in runs)
    assert sorted(run["status"] for run in runs) == ["failed", "incomplete", "ok", "ok"]
    assert sorted(run["log_complete"] for run in runs) == [False, True, True, True]
    totals = document["totals"]
    assert totals["runs"] == 4 and totals["incomplete_runs"] == 1 and totals["failed_runs"] == 1
    # Each number rounded to 6 significant digits: the sums agree to that.
    assert totals["co2e_kg"] == pytest.approx(sum(run["co2e_kg"] for run in runs), rel=1e-5)
    assert totals["energy_kwh"] == pytest.approx(
        sum(r["energy_kwh"]["total"] for r in runs), rel=1e-5
    )
    assert set(totals) == {"runs", "incomplete_runs", "failed_runs", "duration_s", "cpu_seconds",
                           "energy_kwh", "device_energy_kwh", "co2e_kg"}  # fmt: skip
    groups = {group["key"]: group for group in document["groups"]}
    assert set(groups) == {"slurm 101", "slurm 102", "(no job id)"}
    ranks = [run for run in runs if run["job"].get("SLURM_JOB_ID") == "101"]
    assert groups["slurm 101"]["runs"] == 2
    assert sorted(groups["slurm 101"]["run_ids"]) == sorted(run["run_id"] for run in ranks)
    assert groups["slurm 101"]["co2e_kg"] == pytest.approx(
        sum(r["co2e_kg"] for r in ranks), rel=1e-5
    )
    assert groups["slurm 101"]["energy_kwh"] == pytest.approx(
        sum(r["energy_kwh"]["total"] for r in ranks), rel=1e-5
    )


def test_group_by_job_adds_up_the_ranks_in_the_table(logs: Path) -> None:
    result = report(str(logs), "--group-by", "job", cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["job", "nodes", "tasks", "run", "time", "energy", "device",
                                "CO2e", "failed", "incomplete"]  # fmt: skip
    keys = [line.split("  ")[0].strip() for line in lines[1:4]]
    assert keys == ["(no job id)", "slurm 101", "slurm 102"]
    assert lines[2].split()[2:4] == ["1", "2"]  # one node, two ranks


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        ("tag:exp", {"a": 3, "b": 1}),
        ("tag:seed", {"1": 1, "(no seed tag)": 3}),
        ("host", {os.uname().nodename: 4}),
        ("day", None),
        ("command", None),
    ],
)
def test_groups(logs: Path, group_by: str, keys: dict[str, int] | None) -> None:
    document = report_json(str(logs), "--group-by", group_by, cwd=logs.parent)
    found = {group["key"]: group["runs"] for group in document["groups"]}
    assert sum(found.values()) == 4
    if keys is not None:
        assert found == keys
    if group_by == "command":
        assert found[f"{sys.executable} -c 'import sys; sys.exit(3)'"] == 1
    if group_by == "day":
        assert all(len(key) == 10 and key[4] == "-" for key in found)


def test_filters(logs: Path) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    yesterday, tomorrow = today - dt.timedelta(days=1), today + dt.timedelta(days=1)

    def count(*args: str) -> int:
        return int(report_json(str(logs), *args, cwd=logs.parent)["totals"]["runs"])

    assert count("--since", str(today), "--until", str(today)) == 4  # the whole day
    assert count("--until", str(yesterday)) == 0
    assert count("--since", str(tomorrow)) == 0
    assert count("--since", f"{yesterday}T12:00:00+02:00") == 4
    assert count("--tag", "exp=a") == 3
    assert count("--tag", "exp=a", "--tag", "seed=1") == 1  # all must match
    assert count("--tag", "exp=c") == 0
    document = report_json(str(logs), "--tag", "exp=b", cwd=logs.parent)
    assert document["filters"] == {"tags": {"exp": "b"}}
    assert document["logs"]["runs_filtered_out"] == 3


def test_nothing_left_after_the_filters_says_so(logs: Path) -> None:
    result = report(str(logs), "--tag", "exp=none", cwd=logs.parent)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "No runs."
    assert "4 runs outside the filters left out" in result.stdout


def test_csv_one_row_per_run(logs: Path) -> None:
    result = report(str(logs), "--csv", cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    document = report_json(str(logs), cwd=logs.parent)
    assert [row["run_id"] for row in rows] == [run["run_id"] for run in document["runs"]]
    for row, run in zip(rows, document["runs"], strict=True):
        assert float(row["co2e_kg"]) == run["co2e_kg"]
        assert float(row["energy_kwh"]) == run["energy_kwh"]["total"]
        assert float(row["duration_s"]) == run["duration_s"]
        assert row["status"] == run["status"]
        assert row["job"] == (job_key(run["job"]) or "")
        assert row["tag:exp"] in ("a", "b")
    assert result.stdout.splitlines()[0].endswith("log_path,tag:exp,tag:seed")


def test_csv_one_row_per_group(logs: Path) -> None:
    result = report(str(logs), "--csv", "--group-by", "job", cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    groups = report_json(str(logs), "--group-by", "job", cwd=logs.parent)["groups"]
    assert [row["job"] for row in rows] == [group["key"] for group in groups]
    for row, group in zip(rows, groups, strict=True):
        assert int(row["runs"]) == group["runs"]
        assert float(row["co2e_kg"]) == group["co2e_kg"]
        assert float(row["energy_kwh"]) == group["energy_kwh"]


def test_codecarbon_columns(logs: Path) -> None:
    result = report(str(logs), "--format", "codecarbon", cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == CODECARBON_3_3_HEADER
    assert ",".join(CODECARBON_COLUMNS) == CODECARBON_3_3_HEADER
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    runs = {run["run_id"]: run for run in report_json(str(logs), cwd=logs.parent)["runs"]}
    for row in rows:
        run = runs[row["run_id"]]
        assert float(row["emissions"]) == run["co2e_kg"]
        assert float(row["duration"]) == run["duration_s"]
        pue = run["pue"]
        # both rounded to the 6 significant digits measured, each from the unrounded value
        total, cpu = run["energy_kwh"]["total"] * pue, run["energy_kwh"]["cpu"] * pue
        assert float(row["energy_consumed"]) == pytest.approx(total, rel=1e-5)
        assert float(row["cpu_energy"]) == pytest.approx(cpu, rel=1e-5)
        assert float(row["pue"]) == pue and row["tracking_mode"] == "process"
        # What carbonwrap does not record is left empty, never made up.
        for column in (
            "os",
            "python_version",
            "codecarbon_version",
            "cpu_model",
            "cpu_count",
            "ram_total_size",
            "water_consumed",
            "wue",
            "gpu_energy",
            "gpu_power",
        ):
            assert row[column] == "", column  # fmt: skip
        region = run["intensity"]["region"]
        expected = {"DK": ("Denmark", "DNK"), "FR": ("France", "FRA"), "WORLD": ("", "")}
        assert (row["country_name"], row["country_iso_code"]) == expected[region]
        assert row["timestamp"] == run["ended_at"][:19]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no/such/dir"], "no/such/dir: no such file or directory"),
        (["--since", "yesterday"], "--since 'yesterday': not an ISO 8601 date or time"),
        (["--until", "2026-13-01"], "--until '2026-13-01': not an ISO 8601 date or time"),
        (["--group-by", "colour"], "--group-by colour: expected one of command, host, day, job"),
        (["--group-by", "tag:"], "--group-by tag:: expected one of"),
        (["--json", "--csv"], "choose one output format, not csv and json"),
        (["--format", "csv", "--json"], "choose one output format, not csv and json"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--tag", "exp"], "'exp' is not KEY=VALUE"),
        (["--format", "codecarbon", "--group-by", "job"], "one row per run: leave out"),
    ],
)
def test_bad_input_is_one_line_and_exit_125(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "logs").mkdir()
    result = report(*args, cwd=tmp_path)
    assert result.returncode == 125
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def test_no_logs_is_not_an_error(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "other.txt").write_text("x")
    result = report(cwd=tmp_path)  # PATH defaults to ./logs
    assert result.returncode == 0
    assert result.stderr == "carbonwrap: no carbonwrap logs found in logs\n"
    assert result.stdout.startswith("No runs.\n")
    document = report_json(cwd=tmp_path)
    assert document["runs"] == [] and document["totals"]["runs"] == 0
    assert report("--csv", cwd=tmp_path).stdout.count("\n") == 1  # the header only


def test_a_log_named_on_the_command_line_and_found_in_its_directory_counts_once(
    logs: Path,
) -> None:
    first = logs_in(logs)[0]
    document = report_json(str(first), str(logs), str(first), cwd=logs.parent)
    assert document["totals"]["runs"] == 4
