"""Throughput of --progress-from-output's relay: bytes per second through carbonwrap's pipe.

    python3 bench/relay.py [--mib 1024] [--runs 3] [--python PATH] [--rev REV]

The command is `yes | head -c N` (the worst case: a producer that never waits, and output with
no line a scanner stops at). Each variant runs N MiB to each destination:
  - `direct`: the command alone;
  - `carbonwrap`: under `carbonwrap run -q` (the command writes to the destination itself);
  - `relay`: under `carbonwrap run -q --progress-from-output` (the bytes pass through carbonwrap:
    read into a buffer, written on, scanned for tqdm bars and `Epoch N/M`).
Destinations: /dev/null (costs nothing itself) and a pipe into `cat > /dev/null` (what a batch
log collector or `| tee` looks like). Printed: median wall time, GB/s, and the CPU seconds of the
whole process tree (user+sys from wait4; the relay's own share is the difference to
`carbonwrap`). The outputs of one `relay` run are also compared byte for byte with `direct`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench


def timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the process and the children it waited for)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {argv} exited {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    _bench.add_common_args(ap)
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    size = args.mib << 20
    work = tempfile.mkdtemp(prefix="cw-bench-relay-")
    pycache = os.path.join(work, "pycache")
    env = _bench.carbonwrap_env(pycache, {"CARBONWRAP_LOG_DIR": os.path.join(work, "logs")})
    producer = f"yes | head -c {size}"
    cw = _bench.carbonwrap_argv(interp, "run", "-q", "--")
    relay = _bench.carbonwrap_argv(interp, "run", "-q", "--progress-from-output", "--")
    variants = {
        "direct": ["sh", "-c", producer],
        "carbonwrap": [*cw, "sh", "-c", producer],
        "relay": [*relay, "sh", "-c", producer],
    }
    print(_bench.header(f"relay throughput: {args.mib} MiB of `yes`, {args.runs} runs", interp))
    subprocess.run([*cw, "true"], env=env, cwd=work, check=True)  # warm the bytecode cache
    for dest, wrap in (("/dev/null", "{} > /dev/null"), ("pipe", "{} | cat > /dev/null")):
        print(f"\ndestination: {dest}")
        print(f"{'variant':<12}{'wall s':>9}{'GB/s':>8}{'CPU s':>8}")
        for name, argv in variants.items():
            walls, cpus = [], []
            for _ in range(args.runs):
                line = wrap.format(shlex.join(argv))
                wall, cpu = timed(["bash", "-c", f"set -o pipefail; {line}"], env, work)
                walls.append(wall)
                cpus.append(cpu)
            wall = statistics.median(walls)
            print(f"{name:<12}{wall:>9.2f}{size / wall / 1e9:>8.2f}{statistics.median(cpus):>8.2f}")
    digests = []
    for argv in (variants["direct"], variants["relay"]):
        out = subprocess.run(argv, env=env, cwd=work, capture_output=True, check=True).stdout
        digests.append(hashlib.sha256(out).hexdigest())
    print(f"\nrelay output identical to direct: {digests[0] == digests[1]}")


if __name__ == "__main__":
    main()
