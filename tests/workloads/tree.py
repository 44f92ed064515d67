"""A process tree that hides CPU from pollers: short-lived grandchildren, a double-forked
daemon, and a parent that ignores SIGCHLD so its children are never waited for.

Every process appends its own CPU seconds to $TRUTH_FILE when it ends; the top process waits
until everything reported, so the whole tree finishes inside the run.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def report(truth: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # µs resolution, this process only
    line = f"{os.getpid()} {usage.ru_utime + usage.ru_stime:.6f}\n".encode()
    fd = os.open(truth, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line)
    os.close(fd)


def child(truth: str, seconds: float) -> None:
    burn(seconds)
    report(truth)
    os._exit(0)


def main() -> None:
    truth = os.environ["TRUTH_FILE"]
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    expected = 1  # the top process itself
    # 1. Short-lived grandchildren, each started by a short-lived child that waits for them.
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            grandchild = os.fork()
            if grandchild == 0:
                child(truth, 0.1 * scale)
            os.waitpid(grandchild, 0)
            child(truth, 0.02 * scale)
        os.waitpid(pid, 0)
    expected += 8
    # 2. A double-forked daemon: its parent exits at once, so it is re-parented.
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os.setsid()
            child(truth, 0.5 * scale)
        os._exit(0)
    os.waitpid(pid, 0)
    expected += 1
    # 3. A parent that ignores SIGCHLD: the kernel reaps its children, nobody waits for them.
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        for _ in range(3):
            if os.fork() == 0:
                child(truth, 0.1 * scale)
        burn(0.05 * scale)
        time.sleep(0.2)
        child(truth, 0.0)
    os.waitpid(pid, 0)
    expected += 4
    burn(0.1 * scale)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(truth) as f:
            if sum(1 for _ in f) >= expected - 1:
                break
        time.sleep(0.02)
    report(truth)


if __name__ == "__main__":
    main()
