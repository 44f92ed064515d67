"""A real single-host Slurm for the cluster tests: munged, slurmctld and slurmd of Debian's
`slurm-wlm` and `munge` packages, started as root from a private directory (their own munge key,
socket, ports, state and logs; nothing under /etc is touched) and stopped at the end.

Configuration: slurm.conf(5) of Slurm 22.05 (https://slurm.schedmd.com/archive/slurm-22.05.8/
slurm.conf.html): one node named after this host with its CPUs, one partition, no accounting
storage (no slurmdbd: `sacct` answers with an error, which carbonwrap must skip quietly),
proctrack/linuxproc and task/none (no cgroup plugin of Slurm's own: carbonwrap makes its leaves
below the cgroup it is started in, as anywhere). munged(8): --key-file, --socket, --pid-file,
--log-file, --seed-file; Slurm reaches it through `AuthInfo=socket=PATH` (auth/munge and
cred/munge). Client commands find the configuration through $SLURM_CONF.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("srun", "sbatch", "sinfo", "scontrol")
START_TIMEOUT_S = 30.0


class ClusterUnavailable(Exception):
    """Why no Slurm can be started here, in words for a skip."""


@dataclass
class SlurmCluster:
    """A running single-host Slurm: `env` for its client commands ($SLURM_CONF set),
    `startup_s` how long it took to be ready (node idle)."""

    root: Path
    node: str
    cpus: int
    env: dict[str, str]
    startup_s: float = 0.0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def logs(self) -> str:
        """The daemons' logs, for a failing test's message."""
        text = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            with contextlib.suppress(OSError):
                text.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(text)

    def stop(self) -> None:
        """Every daemon started, in reverse, SIGTERM then SIGKILL after 5 s."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()


def why_not() -> str | None:
    """Why a Slurm cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "a test Slurm needs root (munged and slurmd run as root here)"
    missing = [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=_PATH) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge; "
            ".ci/run does it)"
        )
    return None


_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _config(root: Path, node: str, cpus: int, ports: list[int]) -> str:
    return f"""\
ClusterName=cwtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MessageTimeout=10
InactiveLimit=0
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def start(root: Path) -> SlurmCluster:
    """munged, slurmctld and slurmd from `root`, once the node is idle; ClusterUnavailable
    (with the daemons' logs) when they do not come up."""
    reason = why_not()
    if reason is not None:
        raise ClusterUnavailable(reason)
    began = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for name in ("state", "spool"):
        (root / name).mkdir(exist_ok=True)
    node = os.uname().nodename.split(".")[0]
    cpus = max(2, os.cpu_count() or 1)  # srun -n 2 needs two; config_overrides allows more
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(_config(root, node, cpus, _free_ports(2)))
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": _PATH}
    cluster = SlurmCluster(root, node, cpus, env)

    def daemon(*argv: str) -> None:
        cluster.processes.append(
            subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(root / f"{os.path.basename(argv[0])}.err", "wb"),  # noqa: SIM115
                start_new_session=True,  # a Ctrl-C of the tests does not reach them first
            )
        )

    try:
        daemon(
            "munged", "--foreground", "--force", f"--key-file={key}",
            f"--socket={root}/munge.socket", f"--pid-file={root}/munged.pid",
            f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed",
        )  # fmt: skip
        _wait_for(lambda: (root / "munge.socket").exists(), cluster, "munged")
        daemon("slurmctld", "-D", "-i", "-f", str(conf))
        daemon("slurmd", "-D", "-N", node, "-f", str(conf))
        _wait_for(lambda: _node_idle(cluster), cluster, "the node to be idle")
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_s = time.monotonic() - began
    return cluster


def _node_idle(cluster: SlurmCluster) -> bool:
    result = subprocess.run(
        ["sinfo", "--noheader", "-o", "%t"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "idle"


def _wait_for(ready: object, cluster: SlurmCluster, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if callable(ready) and ready():
            return
        for proc in cluster.processes:
            if proc.poll() is not None:
                raise ClusterUnavailable(
                    f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}\n"
                    + cluster.logs()
                )
        time.sleep(0.1)
    raise ClusterUnavailable(f"timed out waiting for {what}\n" + cluster.logs())


@contextlib.contextmanager
def running(root: Path) -> Iterator[SlurmCluster]:
    cluster = start(root)
    try:
        yield cluster
    finally:
        cluster.stop()
