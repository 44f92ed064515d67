"""A process tree that hides CPU time from pollers and from wait4, for bench/cpu_capture.py.

    CARBONWRAP_BENCH_TRUTH=/path/truth.txt python3 bench/workloads/tree.py [--scale X]
    CARBONWRAP_BENCH_TRUTH=/path/truth.txt python3 bench/workloads/tree.py --busy SECONDS

Tree (default), with --scale 1:
  top     burns 0.5 s, then waits for everything below;
  spawner a child that starts 10 short-lived grandchildren one after another, each burning
          0.2 s, and waits for each (so wait4 sees them, 1 Hz polling mostly does not);
  daemon  double-forked: an intermediate child starts it in a new session and exits at once, so
          it is re-parented (to the nearest subreaper, else init) and nobody in the tree waits
          for it; it burns 2 s;
  ignorer a child that sets SIGCHLD to SIG_IGN and starts 4 children burning 0.3 s each: the
          kernel reaps them itself, so their CPU never reaches anyone's RUSAGE_CHILDREN; it
          blocks in wait() until they are gone (wait() then fails with ECHILD).
--busy S: a single process that burns S seconds (the "plain busy child").
--exit-cost N: calibration, no truth file: forks N children like the ones above (burn 0.05 s,
  measure, os._exit) and prints the mean CPU milliseconds each spent after its measurement
  (os.wait4's figure minus the child's own last process_time()), i.e. what an exact counter
  sees that the truth file cannot.

Every process measures its own CPU time with time.process_time() (CLOCK_PROCESS_CPUTIME_ID:
all its threads, ns) as its very last act, appends "pid role seconds" to the truth file with a
single O_APPEND write, and leaves with os._exit, so almost no CPU is spent after the
measurement. The top process exits only after the daemon has reported and is no longer
running (gone or a zombie), so the whole tree finishes inside the wrapped run. It writes
nothing to stdout; the number of lines to expect is TREE_PROCESSES below (1 for --busy).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable

GRANDCHILDREN = 10
IGNORED_CHILDREN = 4
# top + spawner + grandchildren + intermediate + daemon + ignorer + its children
TREE_PROCESSES = 1 + 1 + GRANDCHILDREN + 1 + 1 + 1 + IGNORED_CHILDREN


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def report_and_exit(truth: str, role: str, code: int = 0) -> None:
    cpu = time.process_time()
    line = f"{os.getpid()} {role} {cpu:.9f}\n".encode()
    fd = os.open(truth, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line)
    os._exit(code)


def fork(body: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(70)  # body should have left through report_and_exit
    return pid


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def tree(truth: str, scale: float) -> None:
    def grandchild() -> None:
        burn(0.2 * scale)
        report_and_exit(truth, "grandchild")

    def spawner() -> None:
        for _ in range(GRANDCHILDREN):
            os.waitpid(fork(grandchild), 0)
        report_and_exit(truth, "spawner")

    r, w = os.pipe()

    def daemon() -> None:
        os.close(r)
        os.close(w)
        os.setsid()
        burn(2.0 * scale)
        report_and_exit(truth, "daemon")

    def intermediate() -> None:
        pid = fork(daemon)
        os.write(w, f"{pid}\n".encode())
        report_and_exit(truth, "intermediate")

    def ignored_child() -> None:
        burn(0.3 * scale)
        report_and_exit(truth, "ignored-child")

    def ignorer() -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        for _ in range(IGNORED_CHILDREN):
            fork(ignored_child)
        try:
            while True:
                os.wait()  # blocks until every child is gone, then ECHILD
        except ChildProcessError:
            pass
        report_and_exit(truth, "ignorer")

    waited = [fork(spawner), fork(intermediate), fork(ignorer)]
    os.close(w)
    daemon_pid = int(os.read(r, 64).split()[0])
    os.close(r)
    burn(0.5 * scale)
    for pid in waited:
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 60
    while running(daemon_pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    report_and_exit(truth, "top")


def exit_cost(n: int) -> None:
    costs = []
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            burn(0.05)
            os.write(w, f"{time.process_time():.9f}".encode())
            os._exit(0)
        os.close(w)
        _, _, usage = os.wait4(pid, 0)
        reported = float(os.read(r, 64))
        os.close(r)
        costs.append(usage.ru_utime + usage.ru_stime - reported)
    print(f"{1e3 * sum(costs) / len(costs):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every burn time")
    ap.add_argument("--busy", type=float, metavar="SECONDS", help="one process burning SECONDS")
    ap.add_argument("--exit-cost", type=int, metavar="N", help="calibration (see above)")
    args = ap.parse_args()
    if args.exit_cost:
        exit_cost(args.exit_cost)
        return
    truth = os.environ.get("CARBONWRAP_BENCH_TRUTH")
    if not truth:
        sys.exit("tree.py: set CARBONWRAP_BENCH_TRUTH to the truth file's path")
    sys.stdout.flush()
    if args.busy is not None:
        burn(args.busy)
        report_and_exit(truth, "busy")
    tree(truth, args.scale)


if __name__ == "__main__":
    main()
