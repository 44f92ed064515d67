"""Which wrapper of a job records its node's whole-device figures (run/node_role.py): local rank
0 of the innermost launcher, else the first to lock the job's runtime directory; GPUs one lock
each; what a member logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carbonwrap.run.node_role import (
    ALONE,
    LEADER,
    MEMBER,
    NodeRole,
    elect,
    local_rank,
    runtime_root,
)

KEY = "slurm c:7.0"


@pytest.fixture
def runtime(tmp_path: Path) -> dict[str, str]:
    """An environment whose $XDG_RUNTIME_DIR is a private directory of this user."""
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(directory)}


def test_the_innermost_launchers_local_rank_counts() -> None:
    step = {"SLURM_STEP_ID": "0"}
    assert local_rank({**step, "SLURM_LOCALID": "1"}) == ("SLURM_LOCALID", 1)
    # mpirun in a batch script: every rank inherits SLURM_LOCALID=0 (seen on Slurm 22.05)
    mpi = {"SLURM_LOCALID": "0", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}
    assert local_rank(mpi) == ("OMPI_COMM_WORLD_LOCAL_RANK", 1)
    assert local_rank({**step, "SLURM_LOCALID": "0", "LOCAL_RANK": "3"}) == ("LOCAL_RANK", 3)
    assert local_rank({"MPI_LOCALRANKID": "2"}) == ("MPI_LOCALRANKID", 2)
    # the batch script is one task: its SLURM_LOCALID says nothing about what it starts
    assert local_rank({"SLURM_LOCALID": "0"}) is None
    assert local_rank({"LOCAL_RANK": "x", "SLURM_LOCALID": "²"}) is None
    assert local_rank({}) is None


def test_outside_a_job_a_run_records_everything(runtime: dict[str, str]) -> None:
    role = elect(None, {}, runtime)
    assert role is ALONE and role.leader and role.records_gpu(3)
    assert not os.listdir(runtime["XDG_RUNTIME_DIR"])  # nothing made


def test_local_rank_zero_leads(runtime: dict[str, str]) -> None:
    job = {"SLURM_STEP_ID": "0"}
    first = elect(KEY, {**job, "SLURM_LOCALID": "0"}, runtime)
    second = elect(KEY, {**job, "SLURM_LOCALID": "1"}, runtime)
    again = elect(KEY, {**job, "SLURM_LOCALID": "0"}, runtime)  # by rank, not by lock
    assert (first.role, second.role, again.role) == (LEADER, MEMBER, LEADER)
    assert second.basis == "SLURM_LOCALID=1"
    for role in (first, second, again):
        role.release()


def test_without_a_rank_the_first_lock_leads_until_it_ends(runtime: dict[str, str]) -> None:
    first = elect(KEY, {}, runtime)
    later = elect(KEY, {}, runtime)  # a task of the step starting later on this node
    other_step = elect("slurm c:7.1", {}, runtime)
    assert first.leader and not later.leader and other_step.leader
    assert "lock" in first.basis and later.locks == ()
    first.release()  # the leader's run ends: the next wrapper leads a period nobody records
    after = elect(KEY, {}, runtime)
    assert after.leader
    for role in (later, other_step, after):
        role.release()
    made = Path(runtime["XDG_RUNTIME_DIR"], "carbonwrap")
    assert made.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o700 for p in made.iterdir())


def test_each_gpu_is_claimed_by_one_wrapper(runtime: dict[str, str]) -> None:
    job = {"SLURM_STEP_ID": "0"}
    gpus_a = [(0, "GPU-aaaa"), (1, "GPU-bbbb")]
    gpus_b = [(0, "GPU-bbbb"), (1, "GPU-cccc")]  # another task's view: GPU-bbbb is index 0
    a = elect(KEY, {**job, "SLURM_LOCALID": "0"}, runtime, gpus_a)
    b = elect(KEY, {**job, "SLURM_LOCALID": "1"}, runtime, gpus_b)
    assert a.gpus == {0, 1} and b.gpus == {1}  # GPU-bbbb was a's already
    assert b.records_gpu(1) and not b.records_gpu(0)
    a.release()
    b.release()


def test_a_runtime_directory_others_may_write_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert runtime_root({"XDG_RUNTIME_DIR": str(shared)}) == f"/tmp/carbonwrap-{os.geteuid()}"
    assert runtime_root({"XDG_RUNTIME_DIR": "relative"}) == f"/tmp/carbonwrap-{os.geteuid()}"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "carbonwrap").symlink_to(shared)  # planted: never followed
    role = elect(
        KEY, {"SLURM_STEP_ID": "0", "SLURM_LOCALID": "1"}, {"XDG_RUNTIME_DIR": str(private)}
    )
    assert role.role == MEMBER and "no lock directory" in role.basis  # the rank still counts
    alone = elect(KEY, {}, {"XDG_RUNTIME_DIR": str(private)})
    assert alone.leader and "perhaps beside others" in alone.basis  # an overcount, said
    assert not any(shared.iterdir())


def test_what_a_member_and_a_leader_log() -> None:
    device = {"cpu": 100.0, "dram": 20.0, "gpu": 300.0}
    per_gpu = {0: 200.0, 1: 100.0}
    leader = NodeRole(LEADER, "rank 0")
    member = NodeRole(MEMBER, "rank 1")
    assert leader.device_energy_j(device, per_gpu) == device
    assert member.device_energy_j(device, per_gpu) == {}
    claimed = NodeRole(MEMBER, "rank 1", frozenset({1}))
    assert claimed.device_energy_j(device, per_gpu) == {"gpu": 100.0}
    leader_without_gpus = NodeRole(LEADER, "rank 0", frozenset())
    assert leader_without_gpus.device_energy_j(device, per_gpu) == {"cpu": 100.0, "dram": 20.0}
