"""`carbonwrap report` over 100,000 small logs in one directory: wall time and peak RSS of the
table, --json, --csv and --html, beside bare baselines measured in the same run.

    python3 bench/report_100k.py [--logs 100000] [--repeat 1] [--keep DIR] [--python PATH]

The logs are real-shaped: written with carbonwrap's own record builders by
`report_speed.write_log` (1-8 samples each, 5 % without an end record, Slurm job ranks, one
tag), all in one directory, as an attacker filling a log directory would leave them.

Each case runs the real command (the console script's two lines, stdout to /dev/null) under a
small launcher that forks, execs and reads the child's own peak RSS and CPU from wait4. The
baselines, timed the same way in the same run:

  bare python      `python -c pass` (the interpreter's own start-up and RSS)
  bare walk        a plain `os.scandir` walk of the directory that reads every file whole
                   (the least any report must do: the I/O and the interpreter)

Issue 19 target: every case under 10 s and under 150 MB peak RSS; memory flat in the number
of logs (`--logs 10000` beside `--logs 100000` shows the slope).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench
from report_speed import T0, timed, write_log

TARGET_S = 10.0
TARGET_MB = 150.0

_WALK = """
import os, sys
n = size = 0
with os.scandir(sys.argv[1]) as entries:
    for entry in entries:
        if entry.name.endswith(".jsonl") and entry.is_file():
            with open(entry.path, "rb") as f:
                size += len(f.read())
            n += 1
print(n, size)
"""


def make_flat(root: Path, n: int) -> None:
    """`n` small logs in one directory (report_speed's shapes, not its 100 sub-directories)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(19)
    for k in range(n):
        run_id = f"{k:012x}"
        write_log(
            root / f"carbonwrap-20260921T000000Z-node{k % 100:03d}-{run_id}.jsonl",
            run_id=run_id,
            t0=T0 + 6 * k,
            samples=rng.randint(1, 8),
            intensity="static",
            ended=rng.random() >= 0.05,
            host=f"node{k % 100:03d}",
            argv=["python", "train.py", "--seed", str(k % 5)],
            job={"SLURM_JOB_ID": str(900_000 + k // 8), "SLURM_PROCID": str(k % 8)},
            tags={"exp": "abc"[k % 3]},
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(ap)
    ap.add_argument("--logs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--keep", help="generate into (and keep, and reuse) this directory")
    ap.add_argument("--cases", default="table,json,csv,html,group", help="comma-separated")
    ap.add_argument("--source", help="a directory holding the carbonwrap/ to test (a copy)")
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    if args.source:
        _bench.SOURCE, _bench.SOURCE_NOTE = Path(args.source), f"the copy in {args.source}"
    sys.path.insert(0, str(_bench.SOURCE))
    print(_bench.header(f"carbonwrap report over {args.logs:,} logs in one directory", interp))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cw-report-100k-"))
    pycache = tempfile.mkdtemp(prefix="cw-pycache-")
    # `python -c` puts the working directory first on sys.path: outside the checkout, so the
    # code under test is PYTHONPATH's (`--source`, `--rev`), not the checkout's.
    os.chdir(pycache)
    try:
        t = time.perf_counter()
        if not work.exists() or sum(1 for _ in os.scandir(work)) != args.logs:
            shutil.rmtree(work, ignore_errors=True)
            make_flat(work, args.logs)
        size = sum(e.stat().st_size for e in os.scandir(work)) / 2**20
        print(f"data:     {args.logs:,} logs, {size:.0f} MiB, in {work} "
              f"(ready in {time.perf_counter() - t:.0f} s)")  # fmt: skip
        env = _bench.carbonwrap_env(pycache)
        html = os.path.join(pycache, "report.html")
        every = {
            "table": ("report (table to a pipe)", []),
            "json": ("report --json", ["--json"]),
            "csv": ("report --csv", ["--csv"]),
            "html": ("report --html FILE", ["--html", html]),
            "group": ("report --group-by job", ["--group-by", "job"]),
        }
        cases = [
            ("bare: python -c pass", [interp.python, "-c", "pass"]),
            ("bare: scandir walk reading every file", [interp.python, "-c", _WALK, str(work)]),
        ]
        for name in args.cases.split(","):
            label, extra = every[name.strip()]
            cases.append((label, _bench.carbonwrap_argv(interp, "report", str(work), *extra)))
        timed(_bench.carbonwrap_argv(interp, "report", "--json", os.devnull), env)  # bytecode
        print(f"\n{'case':40s} {'wall s':>8s} {'CPU s':>7s} {'peak RSS MiB':>13s}  "
              f"target {TARGET_S:.0f} s, {TARGET_MB:.0f} MB")  # fmt: skip
        for label, argv in cases:
            runs = [timed(argv, env) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            verdict = "" if label.startswith("bare") else (
                "within" if wall < TARGET_S and rss * 1.048576 < TARGET_MB else "OVER")  # fmt: skip
            print(f"{label:40s} {wall:8.2f} {cpu:7.2f} {rss:13.1f}  {verdict}", flush=True)
        print("load at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
