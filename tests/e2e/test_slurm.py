"""carbonwrap under a real Slurm (tests/slurm_cluster.py: munged, slurmctld and slurmd on this
host) against a fake RAPL tree whose counters advance: `srun -n 2` (a wrapper per task, elected
by SLURM_LOCALID), `sbatch --wait` (two wrappers in the batch script: elected by lock) and
`mpirun -n 2` in a batch job (OMPI_COMM_WORLD_LOCAL_RANK). Each job's device energy is counted
once, its tasks' shares add up to no more than it, `report --group-by job` shows one job, and
sacct (no accounting storage here) is skipped quietly. Skipped with the reason where no Slurm
can be started (not root, packages missing); .ci/run installs them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_env, logs_in, records
from slurm_cluster import ClusterUnavailable, SlurmCluster, running, why_not
from sysfs_tree import make_sysfs, zone_file

pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"
PACKAGE_W = 20.0  # the fake package counter's power; DRAM a quarter of it


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """One Slurm for the session's Slurm tests, stopped at the end (started only when one of
    them runs)."""
    try:
        with running(tmp_path_factory.mktemp("slurm")) as started:
            print(f"\nslurm: up in {started.startup_s:.2f} s", file=sys.stderr)
            yield started
    except ClusterUnavailable as exc:
        pytest.fail(f"Slurm could not be started: {exc}")


@pytest.fixture(scope="module")
def sysfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A powercap tree whose package-0 counter moves at PACKAGE_W (DRAM at a quarter)."""
    root = make_sysfs(tmp_path_factory.mktemp("rapl") / "sys")
    package = zone_file(root, "intel-rapl:0", "energy_uj")
    dram = zone_file(root, "intel-rapl:0:2", "energy_uj")
    stop = threading.Event()

    def put(path: Path, value: int) -> None:
        fd = os.open(path, os.O_WRONLY)  # in place, fixed width: never an empty file
        os.pwrite(fd, f"{value:020d}\n".encode(), 0)
        os.close(fd)

    def advance() -> None:
        began, start_uj = time.monotonic(), 1_000_000
        while not stop.is_set():
            uj = start_uj + int((time.monotonic() - began) * PACKAGE_W * 1e6)
            put(package, uj)
            put(dram, uj // 4)
            time.sleep(0.005)

    writer = threading.Thread(target=advance, daemon=True)
    writer.start()
    yield root
    stop.set()
    writer.join()


def job_env(cluster: SlurmCluster, sysfs: Path) -> dict[str, str]:
    """What srun and sbatch pass on to the tasks (--export=ALL, their default)."""
    return cw_env(
        CARBONWRAP_SYSFS_ROOT=str(sysfs),
        SLURM_CONF=cluster.env["SLURM_CONF"],
        PATH=cluster.env["PATH"],
        CARBONWRAP_INTERVAL="0.1",
        CARBONWRAP_REGION="DK",
        XDG_RUNTIME_DIR="",  # the lock directory under /tmp, as on a node without pam_systemd
    )


def wrapper(log_dir: Path) -> str:
    argv = [sys.executable, "-m", "carbonwrap", "run", "-q", "--log-dir", str(log_dir), "--",
            sys.executable, "-c", BUSY]  # fmt: skip
    return shlex.join(argv)


def submit(
    cluster: SlurmCluster, env: dict[str, str], argv: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{cluster.logs()}"
    return result


def check_job(log_dir: Path, tasks: int, key_prefix: str) -> dict[str, Any]:
    """The logs of one job: one leader, members without whole-device CPU/DRAM figures; the
    report's one job row: device energy once (the leader's), shares within it. Returns the
    measured numbers."""
    logs = logs_in(log_dir)
    assert len(logs) == tasks
    starts, ends = [], []
    for log in logs:
        found = records(log)
        starts.append(found[0])
        ends.append(found[-1])
        assert found[-1]["type"] == "end" and found[-1]["exit_code"] == 0
    roles = sorted(start["node_role"] for start in starts)
    assert roles == ["leader"] + ["member"] * (tasks - 1), [s["node_role_basis"] for s in starts]
    leader_end = next(e for s, e in zip(starts, ends, strict=True) if s["node_role"] == "leader")
    for start, end in zip(starts, ends, strict=True):
        if start["node_role"] == "member":
            assert end["device_energy_j"] == {}  # the node's figures are the leader's
    assert set(leader_end["device_energy_j"]) == {"cpu", "dram"}
    device_j = sum(leader_end["device_energy_j"].values())
    shares_j = [sum(end["energy_j"].values()) for end in ends]
    assert device_j > 0.5 * PACKAGE_W  # ~1.5 s at 20 W + 5 W
    assert sum(shares_j) <= device_j * 1.02  # readings of two wrappers are ms apart

    document = report_json(log_dir, "--group-by", "job")
    (group,) = document["groups"]
    assert group["key"].startswith(key_prefix)
    assert group["job"]["nodes"] == 1 and group["job"]["tasks"] == tasks
    assert group["job"]["leaders"] == 1
    assert group["device_energy_kwh"] * 3.6e6 == pytest.approx(device_j, rel=1e-5)
    assert group["energy_kwh"] * 3.6e6 == pytest.approx(sum(shares_j), rel=1e-5)
    assert group["job"]["sacct_energy_kwh"] is None  # no accounting storage: quietly none
    table = report(log_dir, "--group-by", "job")
    assert table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split()[:6] == ["job", "nodes", "tasks", "run", "time", "energy"]
    assert "sacct" not in lines[0]
    rows = [line for line in lines[1:] if line.startswith(key_prefix)]
    assert len(rows) == 1 and rows[0].split()[2:4] == ["1", str(tasks)]
    return {"key": group["key"], "device_j": device_j, "shares_j": shares_j}


def report(log_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cw_env()  # sacct is on PATH: it fails here (no slurmdbd), which must say nothing
    result = subprocess.run(
        [sys.executable, "-m", "carbonwrap", "report", str(log_dir), *args],
        env=env, cwd=log_dir.parent, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def report_json(log_dir: Path, *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(report(log_dir, "--json", *args).stdout)
    return document


def test_srun_one_wrapper_per_task(cluster: SlurmCluster, sysfs: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    argv = ["srun", "-n", "2", *shlex.split(wrapper(logs))]
    submit(cluster, job_env(cluster, sysfs), argv, tmp_path)
    found = check_job(logs, 2, "slurm cwtest:")
    assert found["key"].endswith(".0")  # the job step
    starts = [records(log)[0] for log in logs_in(logs)]
    assert sorted(s["node_role_basis"] for s in starts) == ["SLURM_LOCALID=0", "SLURM_LOCALID=1"]
    ranks = report_json(logs, "--group-by", "job,rank")["groups"]
    assert [g["key"].rsplit(", ", 1)[1] for g in ranks] == ["rank 0", "rank 1"]
    print(f"\nsrun -n 2: {found}", file=sys.stderr)


def test_sbatch_wait_two_wrappers_elect_by_lock(
    cluster: SlurmCluster, sysfs: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/sh\n{wrapper(logs)} &\n{wrapper(logs)} &\nwait\n")
    script.chmod(0o755)
    argv = ["sbatch", "--wait", "-n", "2", "-o", str(tmp_path / "out.txt"), str(script)]
    submit(cluster, job_env(cluster, sysfs), argv, tmp_path)
    found = check_job(logs, 2, "slurm cwtest:")
    assert "." not in found["key"].split(":")[1]  # the batch script: no step
    bases = sorted(records(log)[0]["node_role_basis"] for log in logs_in(logs))
    assert all("(no local rank: lock)" in basis for basis in bases), bases
    print(f"\nsbatch --wait: {found}", file=sys.stderr)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed (openmpi-bin)")
def test_mpirun_in_a_batch_job(cluster: SlurmCluster, sysfs: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    script = tmp_path / "mpi.sh"
    # Open MPI refuses root unless told (the CI runs as root); --oversubscribe: 2 ranks may
    # share fewer cores than Slurm counts.
    script.write_text(
        "#!/bin/sh\nexport OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n"
        f"mpirun --oversubscribe -n 2 {wrapper(logs)}\n"
    )
    script.chmod(0o755)
    argv = ["sbatch", "--wait", "-n", "2", "-o", str(tmp_path / "out.txt"), str(script)]
    result = submit(cluster, job_env(cluster, sysfs), argv, tmp_path)
    assert result.returncode == 0, (tmp_path / "out.txt").read_text()
    found = check_job(logs, 2, "slurm cwtest:")
    bases = sorted(records(log)[0]["node_role_basis"] for log in logs_in(logs))
    assert bases == ["OMPI_COMM_WORLD_LOCAL_RANK=0", "OMPI_COMM_WORLD_LOCAL_RANK=1"]
    print(f"\nmpirun -n 2: {found}", file=sys.stderr)


def test_logs_of_several_jobs_in_one_directory(
    cluster: SlurmCluster, sysfs: Path, tmp_path: Path
) -> None:
    """Two jobs' logs side by side (as many nodes' logs in one shared directory): one row
    each, and the whole-device total is each job's leader's once."""
    logs = tmp_path / "logs"
    env = job_env(cluster, sysfs)
    for _ in range(2):
        submit(cluster, env, ["srun", "-n", "2", *shlex.split(wrapper(logs))], tmp_path)
    document = report_json(logs, "--group-by", "job")
    assert len(document["groups"]) == 2
    assert all(g["job"]["tasks"] == 2 and g["job"]["leaders"] == 1 for g in document["groups"])
    leaders = [r for r in document["runs"] if r.get("node_role") == "leader"]
    device = sum(r["device_energy_kwh"]["total"] for r in leaders)
    assert document["totals"]["device_energy_kwh"] == pytest.approx(device, rel=1e-5)
