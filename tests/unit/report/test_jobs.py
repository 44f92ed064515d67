"""Jobs in reports: job keys with the step, --group-by job / job,host / job,rank with nodes,
tasks and each node's device energy once, sacct's ConsumedEnergyRaw beside them (a fake `sacct`
program on PATH), and the job labels of the Prometheus textfile."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from prometheus_text import parse, value

from carbonwrap.render.json import job_document
from carbonwrap.render.prometheus import PromSnapshot, render_prometheus
from carbonwrap.render.runs import render_text, runs_view
from carbonwrap.report.model import ReadStats
from carbonwrap.report.sacct import (
    MAX_CALLS,
    add_consumed_energy,
    parse_consumed_energy,
    sacct_argv,
)
from carbonwrap.report.select import build_report, check_group_by, natural_order
from carbonwrap.runlog import records
from carbonwrap.runlog.records import job_key, job_rank, slurm_job_id
from carbonwrap.runlog.summary import Fold, RunSummary

T0 = 1_800_000_000.0


def task(
    run_id: str, host: str, rank: int, local: int, device: dict[str, float], job_id: str = "42"
) -> RunSummary:
    """A finished run of one task of Slurm job `job_id` step 0, as its log folds: 10 J CPU
    share; `device` the whole-device figures it logged ({} for a member)."""
    job = {"SLURM_JOB_ID": job_id, "SLURM_STEP_ID": "0", "SLURM_CLUSTER_NAME": "c",
           "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(local)}  # fmt: skip
    fold = Fold()
    fold.add(
        records.start(
            run_id=run_id, time_s=T0, argv=["python", "train.py"], cwd="/w", host=host, pid=1,
            versions={}, cpu_accounting="cgroup2", components={"cpu": {"method": "rapl"}},
            region={"code": "DK"}, pue=1.0, interval_s=1.0, log_interval_s=10.0, job=job,
            tags={}, node_role=("leader" if device else "member", f"SLURM_LOCALID={local}"),
        )
    )  # fmt: skip
    fold.add(records.intensity(time_s=T0, elapsed_s=0.0, intensity_g_per_kwh=100.0,
                               region="DK", source="static"))  # fmt: skip
    fold.add(
        records.end(
            time_s=T0 + 60, elapsed_s=60.0, exit_code=0, signal=None, cpu_s=50.0,
            energy_j={"cpu": 10.0}, device_energy_j=device, leftover_pids=[],
            signals_received=[],
        )
    )  # fmt: skip
    return fold.summary()


def cluster_runs() -> list[RunSummary]:
    """Job 42 step 0: 2 nodes × 2 tasks (ranks 0-3), one leader per node; and job 43."""
    return [
        task("a", "node1", 0, 0, {"cpu": 100.0}),
        task("b", "node1", 1, 1, {}),
        task("c", "node2", 2, 0, {"cpu": 80.0}),
        task("d", "node2", 3, 1, {}),
        task("e", "node1", 0, 0, {"cpu": 5.0}, job_id="43"),
    ]


def test_job_keys_carry_the_step_and_old_logs_stay_readable() -> None:
    step = {"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_CLUSTER_NAME": "c"}
    assert job_key(step) == "slurm c:7.0"
    assert slurm_job_id(step) == "7.0"
    array = {**step, "SLURM_ARRAY_JOB_ID": "5", "SLURM_ARRAY_TASK_ID": "2"}
    assert job_key(array) == "slurm c:5_2.0" and slurm_job_id(array) == "5_2.0"
    assert job_key({"SLURM_JOB_ID": "7", "SLURM_CLUSTER_NAME": "c"}) == "slurm c:7"  # batch/old
    assert job_key({"SLURM_JOB_ID": "7"}) == "slurm 7"
    assert slurm_job_id({}) == ""


def test_ranks_from_the_innermost_launcher() -> None:
    assert job_rank({"SLURM_STEP_ID": "0", "SLURM_PROCID": "3"}) == "3"
    # mpirun in a batch script: the batch step's SLURM_PROCID 0 is not the rank
    assert job_rank({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "OMPI_COMM_WORLD_RANK": "1"}) == "1"
    assert job_rank({"SLURM_PROCID": "0", "SLURM_LOCALID": "0"}) is None  # the batch script
    assert job_rank({"SLURM_PROCID": "2"}) == "2"  # a log from before SLURM_LOCALID was kept
    assert job_rank({"RANK": "5", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1"}) == "5"


def test_group_by_job_counts_each_nodes_device_energy_once() -> None:
    report = build_report(cluster_runs(), ReadStats(logs=5), "job")
    assert report.groups is not None
    [job42, job43] = report.groups
    assert job42.key == "slurm c:42.0" and job43.key == "slurm c:43.0"
    assert job42.job is not None
    assert (job42.job.nodes, job42.job.tasks, job42.job.leaders) == (2, 4, 2)
    assert job42.totals.energy_j == 40.0  # every task's share
    assert job42.totals.device_energy_j == 180.0  # node1's 100 J + node2's 80 J, once each
    assert job42.job.slurm_job_id == "42.0" and job42.job.cluster == "c"
    assert job_document(job42.job) == {"nodes": 2, "tasks": 4, "leaders": 2,
                                       "slurm_job_id": "42.0", "cluster": "c",
                                       "sacct_energy_kwh": None}  # fmt: skip


def test_group_by_job_host_and_job_rank() -> None:
    by_host = build_report(cluster_runs(), ReadStats(), "job,host").groups
    assert by_host is not None
    assert [g.key for g in by_host] == ["slurm c:42.0, node1", "slurm c:42.0, node2",
                                        "slurm c:43.0, node1"]  # fmt: skip
    assert [g.totals.device_energy_j for g in by_host] == [100.0, 80.0, 5.0]
    by_rank = build_report(cluster_runs(), ReadStats(), "job,rank").groups
    assert by_rank is not None
    assert [g.key for g in by_rank][:4] == [f"slurm c:42.0, rank {n}" for n in range(4)]
    check_group_by("job,host")
    check_group_by("job,rank")


def test_groups_sort_numbers_by_value() -> None:
    keys = ["slurm c:9.0, rank 10", "slurm c:9.0, rank 2", "slurm c:10.0, rank 1"]
    assert sorted(keys, key=natural_order) == [keys[1], keys[0], keys[2]]
    hostile = ["x" + "9" * 5000, "x²", "x0010", "x9"]
    assert sorted(hostile, key=natural_order)[:2] == ["x9", "x0010"]  # no int() of 5000 digits


def test_the_jobs_table() -> None:
    report = build_report(cluster_runs(), ReadStats(logs=5), "job")
    text = render_text(runs_view(report), None)
    lines = text.splitlines()
    assert lines[0].split() == ["job", "nodes", "tasks", "run", "time", "energy", "device", "CO2e"]
    assert lines[1].split()[:4] == ["slurm", "c:42.0", "2", "4"]
    assert "180 J" in lines[1] and "40.0 J" in lines[1]
    assert "once per node" in text and "sacct" not in lines[0]


def fake_sacct(directory: Path, script: str) -> dict[str, str]:
    """A real `sacct` program in `directory`, first on PATH; it logs its arguments."""
    directory.mkdir(exist_ok=True)
    program = directory / "sacct"
    program.write_text(f'#!/bin/sh\necho "$@" >> {directory}/calls\n{script}\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{directory}{os.pathsep}/usr/bin:/bin"}


def calls(directory: Path) -> list[str]:
    path = directory / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_sacct_is_asked_once_per_job_and_shown(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    env = fake_sacct(bin_dir, 'case "$2" in 42.0) printf "42.0|12345\\n";; '
                              '43.0) printf "43.0|\\n";; esac')  # fmt: skip
    runs = [*cluster_runs(), task("f", "node3", 4, 0, {"cpu": 1.0})]  # job 42 as another run
    runs[-1].job["SLURM_CLUSTER_NAME"] = "other"  # … of another cluster: a job of its own
    report = build_report(runs, ReadStats(logs=6), "job")
    assert report.groups is not None
    assert add_consumed_energy(report.groups, env) == ""
    assert calls(bin_dir) == [
        "-j 42.0 --noheader --parsable2 --format=JobID,ConsumedEnergyRaw -M c",
        "-j 43.0 --noheader --parsable2 --format=JobID,ConsumedEnergyRaw -M c",
        "-j 42.0 --noheader --parsable2 --format=JobID,ConsumedEnergyRaw -M other",
    ]
    figures = {g.key: g.job.sacct_energy_j for g in report.groups if g.job is not None}
    # 43: no figure (energy gathering off)
    assert figures == {"slurm c:42.0": 12345.0, "slurm c:43.0": None, "slurm other:42.0": 12345.0}
    text = render_text(runs_view(report), None)
    assert text.splitlines()[0].split()[7] == "sacct"
    assert "12,345 J" in text.splitlines()[1] and "Slurm's own ConsumedEnergyRaw" in text
    assert "  -  " in text.splitlines()[2]  # job 43: none


def test_sacct_failing_or_absent_is_skipped_quietly(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    env = fake_sacct(bin_dir, 'echo "Slurm accounting storage is disabled" >&2; exit 1')
    report = build_report(cluster_runs(), ReadStats(logs=5), "job")
    assert report.groups is not None
    assert add_consumed_energy(report.groups, env) == ""
    assert len(calls(bin_dir)) == 1  # the first failure ends the asking
    assert all(g.job is not None and g.job.sacct_energy_j is None for g in report.groups)
    assert "sacct" not in render_text(runs_view(report), None)
    assert add_consumed_energy(report.groups, {"PATH": str(tmp_path / "nothing")}) == ""


def test_sacct_asks_about_so_many_jobs_at_most(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    env = fake_sacct(bin_dir, 'echo "$2|1000"')
    runs = [task(f"r{n}", "node1", 0, 0, {"cpu": 1.0}, job_id=str(n)) for n in range(MAX_CALLS + 3)]
    report = build_report(runs, ReadStats(), "job")
    assert report.groups is not None
    note = add_consumed_energy(report.groups, env)
    assert len(calls(bin_dir)) == MAX_CALLS and "3 more not asked" in note


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("42.0|12345\n", 12345.0),
        ("42|99\n42.0|7\n", 7.0),  # the step's own line
        ("42.0|0\n", None),  # no energy gathering
        ("42.0|18446744073709551614\n", None),  # NO_VAL64
        ("42.0|-5\n", None),
        ("42.01|5\n", None),
        ("", None),
    ],
)
def test_parse_consumed_energy(output: str, expected: float | None) -> None:
    assert parse_consumed_energy(output, "42.0") == expected


def test_sacct_argv_names_the_cluster_where_known() -> None:
    assert sacct_argv("7_2.0", "c")[-2:] == ["-M", "c"]
    assert "-M" not in sacct_argv("7", None)


def test_the_textfile_carries_the_job() -> None:
    snapshot = PromSnapshot(
        run_id="r1", host="node1", program="python", version="0", cpu_accounting="cgroup2",
        start_time_s=None, elapsed_s=1.0, cpu_s=1.0, components=[], pue=1.0, co2e_g=2.0,
        intensity=None, ended=False, exit_code=None,
        job=("slurm c:42.0", 'ali"ce', "gpu\nq"),
    )  # fmt: skip
    _, series = parse(render_prometheus(snapshot))
    labels = {"job_key": "slurm c:42.0", "user": 'ali"ce', "partition": "gpu\nq"}
    assert value(series, "carbonwrap_co2e_grams", **labels) == 2.0
    assert value(series, "carbonwrap_run_info", **labels) == 1.0
    outside = render_prometheus(snapshot._replace(job=("", "", "")))
    assert 'job_key=""' in outside  # the same label names in every file
