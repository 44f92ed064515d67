"""Which wrapper of a job records a node's whole-device figures: one per node and job step leads
(package and DRAM energy), each GPU's figure is recorded by one wrapper, the others record only
their tree's share, so that a job's device energy is the sum over its logs, counted once.

The leader is local rank 0 where a launcher says the local rank, read from the innermost launcher
first: a wrapper started by torchrun or mpirun inside a Slurm allocation inherits the batch step's
SLURM_LOCALID=0 while its own launcher numbers it (seen on Slurm 22.05 with Open MPI 4.1: every
rank of `mpirun -n 2` in an sbatch script has SLURM_LOCALID=0 and OMPI_COMM_WORLD_LOCAL_RANK 0
and 1). Names: torchrun's LOCAL_RANK (https://pytorch.org/docs/stable/elastic/run.html), Open
MPI's OMPI_COMM_WORLD_LOCAL_RANK (https://docs.open-mpi.org/en/v5.0.x/tuning-apps/environment-
var.html), MPICH/Intel MPI's MPI_LOCALRANKID, Cray PALS's PALS_LOCAL_RANKID, Slurm's
SLURM_LOCALID (srun(1), "OUTPUT ENVIRONMENT VARIABLES").

Without a local rank, the first wrapper to take an flock(2) on `node.lock` in the job's runtime
directory leads and holds it while it runs: a wrapper of the step that starts later on that node
finds it taken and records its share only; the kernel drops the lock when the leader ends however
it ends (SIGKILL too), so no stale file elects anybody. GPUs are claimed the same way, one lock
per device (`gpu-<uuid>.lock`), since tasks of one node may each see other GPUs
(CUDA_VISIBLE_DEVICES set per task by Slurm). The runtime directory is $XDG_RUNTIME_DIR/carbonwrap
where that is the user's own private directory (pam_systemd's; under srun it may be the login
node's value, absent here), else /tmp/carbonwrap-<uid>; then one directory per job key. Each is
made 0700, and an existing one is used only if it is a real directory of this user that nobody
else may write (no symlink followed): another user cannot plant a lock file to steal or block
the election.
"""

import contextlib
import fcntl
import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from typing import NamedTuple

# The innermost launcher first (see above).
LOCAL_RANK_VARIABLES = (
    "LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MPI_LOCALRANKID",
    "PALS_LOCAL_RANKID",
    "SLURM_LOCALID",
)
LEADER, MEMBER = "leader", "member"


class NodeRole(NamedTuple):
    """This wrapper's part on its node. `gpus`: the GPU indices whose whole-device figures it
    records (None: every GPU it sees); `basis`: why, in words (logged); `locks`: descriptors
    holding the claims, open until the process ends."""

    role: str  # LEADER or MEMBER
    basis: str
    gpus: frozenset[int] | None = None
    locks: tuple[int, ...] = ()

    @property
    def leader(self) -> bool:
        return self.role == LEADER

    def device_energy_j(
        self, device_energy_j: Mapping[str, float], gpu_device_energy_j: Mapping[int, float]
    ) -> dict[str, float]:
        """The whole-device figures this wrapper records: CPU and DRAM (every component but
        the GPU) only as leader, the GPU component summed over the GPUs it records."""
        kept = {k: v for k, v in device_energy_j.items() if k != "gpu" and self.leader}
        if "gpu" in device_energy_j:
            if self.gpus is None:
                if self.leader:
                    kept["gpu"] = device_energy_j["gpu"]
            elif self.gpus:
                kept["gpu"] = sum(
                    joules for index, joules in gpu_device_energy_j.items() if index in self.gpus
                )
        return kept

    def records_gpu(self, index: int) -> bool:
        return self.leader if self.gpus is None else index in self.gpus

    def release(self) -> None:
        for fd in self.locks:
            with contextlib.suppress(OSError):
                os.close(fd)


ALONE = NodeRole(LEADER, "not part of a job: the only wrapper")


def local_rank(job: Mapping[str, str]) -> tuple[str, int] | None:
    """The innermost launcher's local rank: (variable, rank), or None where none says it.
    SLURM_LOCALID counts only in a step srun started (SLURM_STEP_ID set): the batch script
    is one task, local id 0, and so is every wrapper it starts in the background."""
    for name in LOCAL_RANK_VARIABLES:
        if name == "SLURM_LOCALID" and not job.get("SLURM_STEP_ID"):
            continue
        value = job.get(name, "").strip()
        if value.isascii() and value.isdigit():
            return name, int(value)
    return None


def runtime_root(environ: Mapping[str, str]) -> str:
    """$XDG_RUNTIME_DIR/carbonwrap where that directory is the user's own and private, else
    /tmp/carbonwrap-<uid>."""
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        with contextlib.suppress(OSError):
            st = os.lstat(xdg)
            if _private(st):
                return os.path.join(xdg, "carbonwrap")
    return f"/tmp/carbonwrap-{os.geteuid()}"


def _private(st: os.stat_result) -> bool:
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _private_dir(parent_fd: int, name: str) -> int:
    """A descriptor of directory `name` in `parent_fd` (never through a symlink), made 0700
    if missing; OSError unless it is a real directory of this user nobody else may write."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, dir_fd=parent_fd)
    if not _private(os.fstat(fd)):
        os.close(fd)
        raise PermissionError(f"{name} is not a private directory of uid {os.geteuid()}")
    return fd


def job_directory(root: str, key: str) -> int:
    """A descriptor of the job's runtime directory (`root`/<key as a file name>), made on the
    way; OSError where a rule refuses it."""
    parent, name = os.path.split(root.rstrip("/"))
    base = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        top = _private_dir(base, name)
    finally:
        os.close(base)
    try:
        return _private_dir(top, _file_name(key))
    finally:
        os.close(top)


def _file_name(key: str) -> str:
    """The job key as a file name: its safe characters, and a hash that tells keys apart."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in key)
    return f"{safe[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def try_lock(dir_fd: int, name: str) -> int | None:
    """The descriptor holding an exclusive flock on `name` (created 0600 if missing), or None
    when another process holds it."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def elect(
    key: str | None,
    job: Mapping[str, str],
    environ: Mapping[str, str],
    gpus: Sequence[tuple[int, str]] = (),
) -> NodeRole:
    """This wrapper's role for job `key` (None: not in a job, it records everything); `gpus`:
    (index, uuid) of the GPUs it sees. Never raises: where no lock can be taken a wrapper with
    a local rank still knows its role, and one without leads (an overcount said in `basis`
    beats a node nobody records)."""
    if key is None:
        return ALONE
    ranked = local_rank(job)
    locks: list[int] = []
    try:
        directory = job_directory(runtime_root(environ), key)
    except OSError as exc:
        why = f"no lock directory ({exc.strerror or exc})"
        if ranked is None:
            return NodeRole(LEADER, f"no local rank and {why}: leads, perhaps beside others")
        name, rank = ranked
        return NodeRole(LEADER if rank == 0 else MEMBER, f"{name}={rank}; {why}")
    try:
        if ranked is not None:
            name, rank = ranked
            role, basis = (LEADER if rank == 0 else MEMBER), f"{name}={rank}"
        else:
            fd = try_lock(directory, "node.lock")
            if fd is not None:
                locks.append(fd)
            role = LEADER if fd is not None else MEMBER
            basis = "first wrapper of the step here" if fd is not None else "the step's leader runs"
            basis += " (no local rank: lock)"
        claimed = set()
        for index, uuid in gpus:
            fd = try_lock(directory, f"gpu-{_file_name(uuid or str(index))}.lock")
            if fd is not None:
                locks.append(fd)
                claimed.add(index)
        return NodeRole(role, basis, frozenset(claimed) if gpus else None, tuple(locks))
    except OSError as exc:
        for fd in locks:
            os.close(fd)
        leads = ranked is None or ranked[1] == 0
        return NodeRole(LEADER if leads else MEMBER, f"lock failed ({exc.strerror or exc})")
    finally:
        os.close(directory)
