"""Cost of one DrmClients.read() (carbonwrap/sensors/drm_fdinfo.py): the walk of every process's
fd table for DRM fds, beside a baseline measured in the same run (listing /proc alone, which any
scan needs).

Three trees:
- this machine's real /proc as it is;
- the real /proc with `--spawn` extra processes (`sleep`) holding `--fds` fds each (real procfs
  magic links, the kernel's own readlink cost); they are ended at the end;
- a synthetic tree of real files (`--processes` × `--fds` symlinks, a few of them DRM fds with
  amdgpu fdinfo texts) in a temporary directory: the Python side's cost without procfs.

For each: a read that walks every fd table (`walk_fds_per_read=None`, as the first read does)
and the default read (new PIDs walked, then the PIDs walked longest ago until WALK_FDS_PER_READ
fds were looked at; known DRM fds re-read). Wall and CPU time per read, median of `--reads`.

    python3 bench/fdinfo_scan.py [--spawn 2000] [--processes 2000] [--fds 50] [--reads 30]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from _bench import header  # noqa: E402
from drm_tree import amdgpu_fdinfo  # noqa: E402

from carbonwrap.sensors.drm_fdinfo import WALK_FDS_PER_READ, DrmClients  # noqa: E402


def timed(call: Callable[[], object], reads: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `call` over `reads` calls, after one warm-up."""
    call()
    walls, cpus = [], []
    for _ in range(reads):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def list_pids(proc: str) -> Callable[[], object]:
    return lambda: [name for name in os.listdir(proc) if name.isdigit()]


def count(proc: str) -> tuple[int, int]:
    """(processes, fds) visible to us under `proc`."""
    pids = fds = 0
    for name in os.listdir(proc):
        if name.isdigit():
            pids += 1
            with contextlib.suppress(OSError):
                fds += len(os.listdir(f"{proc}/{name}/fd"))
    return pids, fds


def measure(title: str, proc: str, reads: int) -> None:
    pids, fds = count(proc)
    print(f"\n## {title}: {pids} processes, {fds} fds readable")
    rows = [("baseline: list /proc, keep the PIDs", timed(list_pids(proc), reads))]
    full = DrmClients(proc, walk_fds_per_read=None)
    rows.append(("read(), every fd table walked (first read)", timed(full.read, reads)))
    rolling = DrmClients(proc)
    rolling.read()  # the first read walks everything; later ones roll
    rows.append((f"read(), default ({WALK_FDS_PER_READ} fds walked)", timed(rolling.read, reads)))
    print(f"{'what':48} {'wall ms':>9} {'CPU ms':>9}")
    for what, (wall, cpu) in rows:
        print(f"{what:48} {wall:9.2f} {cpu:9.2f}")
    scan = rows[1][1][1] - rows[0][1][1]
    if fds:
        print(f"full walk minus baseline: {scan:.2f} ms CPU, {scan * 1000 / fds:.2f} µs per fd")
        turns = -(-(fds + pids) // WALK_FDS_PER_READ)
        print(f"default reads: the whole table is walked every {turns} reads")


def spawn(processes: int, fds: int) -> list[subprocess.Popen[bytes]]:
    """`processes` sleeping children, each holding `fds` extra fds (on /dev/null)."""
    extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(fds)]
    try:
        return [
            subprocess.Popen(["sleep", "3600"], pass_fds=extra, stdin=subprocess.DEVNULL)
            for _ in range(processes)
        ]
    finally:
        for fd in extra:
            os.close(fd)


def synthetic(base: Path, processes: int, fds: int) -> str:
    """A /proc of real files: every 100th process holds one DRM fd (amdgpu fdinfo)."""
    proc = base / "proc"
    for pid in range(1000, 1000 + processes):
        fd_dir = proc / str(pid) / "fd"
        info_dir = proc / str(pid) / "fdinfo"
        fd_dir.mkdir(parents=True)
        info_dir.mkdir()
        for fd in range(fds):
            drm = fd == fds - 1 and pid % 100 == 0
            (fd_dir / str(fd)).symlink_to("/dev/dri/renderD128" if drm else f"pipe:[{pid}{fd}]")
            text = amdgpu_fdinfo(pid, "0000:0a:00.0", pid) if drm else "pos:\t0\nflags:\t02\n"
            (info_dir / str(fd)).write_text(text)
    return str(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawn", type=int, default=2000, help="extra real processes (0: none)")
    parser.add_argument("--processes", type=int, default=2000, help="synthetic tree processes")
    parser.add_argument("--fds", type=int, default=50, help="fds per process")
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    print(header("DRM fdinfo scan cost (DrmClients.read)"))
    print(f"euid: {os.geteuid()} (non-root cannot read other users' fd tables: they cost less)")
    measure("real /proc", "/proc", args.reads)
    if args.spawn:
        children = spawn(args.spawn, args.fds)
        try:
            title = f"real /proc + {args.spawn} sleeping processes × {args.fds} fds"
            measure(title, "/proc", args.reads)
        finally:
            for child in children:
                child.kill()
            for child in children:
                child.wait()
    base = Path(tempfile.mkdtemp(prefix="carbonwrap-fdinfo-bench-"))
    try:
        proc = synthetic(base, args.processes, args.fds)
        measure(f"synthetic tree, {args.processes} processes × {args.fds} fds", proc, args.reads)
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
