"""Start-up overhead: wall time of `carbonwrap run -- true` against bare `true`.

    python3 bench/startup.py [--runs 30] [--python PATH]

Runs every variant N times, interleaved (one of each per round, rotating the order) after a
warm-up round, with stdout and stderr sent to /dev/null, and prints the median, p10 and p90 wall
time of each and the median added over bare `true`. Variants:
  - `true` (the baseline) and `python -c pass` (the interpreter's own floor, for reference);
  - `carbonwrap run -- true` with the plain-text report going to /dev/null (stderr is not a TTY);
  - `carbonwrap run -q -- true` (no report);
  - `carbonwrap run -q --json - -- true` (JSON on stdout, to /dev/null);
  - `carbonwrap run -q -- true` with PYTHONDONTWRITEBYTECODE=1 and no cached bytecode, i.e. every
    carbonwrap module compiled at each start (how a checkout runs in an environment that sets it).
All other carbonwrap variants use bytecode cached in a temporary PYTHONPYCACHEPREFIX, as a pip
install would have it.
--breakdown adds a cumulative table of where the start-up CPU goes: the interpreter, `import
click`, `import carbonwrap.cli`, `+ carbonwrap.run`, `+ every carbonwrap module a run of
`true` imports` (found with -X importtime), and the whole run.
The CPU time (user+sys from os.wait4, the wrapper plus `true`) is printed beside the wall time:
on a machine shared with other work it is the steadier figure, since start-up is single-threaded
and CPU-bound (wall ≈ CPU when the machine is idle).
The wall time is measured around spawn + wait from this process, so the spawn cost is the same
for every variant and cancels in the difference. Target (issue 2): at most 150 ms added (median).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench

TARGET_MS = 150.0


def timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall ms, and CPU ms (user+sys of the process and the children it waited for)."""
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter_ns() - t0) / 1e6
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
        tail = (again.stderr.strip().splitlines() or [""])[-1]
        sys.exit(f"bench: {shlex.join(argv)} exited {rc}; stderr of a rerun: {tail}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1e3


def breakdown(interp: _bench.Interpreter, true: str, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cw-bench-startup-") as tmp:
        env = _bench.carbonwrap_env(os.path.join(tmp, "pycache"))
        logs = os.path.join(tmp, "logs")
        run = _bench.carbonwrap_argv(interp, "run", "-q", "--log-dir", logs, "--", true)
        trace = subprocess.run(
            [interp.python, "-X", "importtime", *run[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        ).stderr
        modules = sorted(
            {
                line.rsplit("|", 1)[1].strip()
                for line in trace.splitlines()
                if line.startswith("import time:") and "carbonwrap" in line.rsplit("|", 1)[1]
            }
        )
        py = interp.python
        # Each import step runs as carbonwrap's entry point does: without the cyclic GC, and
        # leaving with os._exit (the interpreter's teardown would otherwise count in each step).
        start, leave = "import gc; gc.disable(); ", "; import os; os._exit(0)"
        steps = [
            ("python -c pass", [py, "-c", start + "pass" + leave]),
            ("import click", [py, "-c", start + "import click" + leave]),
            ("import carbonwrap.cli", [py, "-c", start + "import carbonwrap.cli" + leave]),
            (
                "+ carbonwrap.run",
                [py, "-c", start + "import carbonwrap.cli, carbonwrap.run" + leave],
            ),
            (
                f"+ all {len(modules)} carbonwrap modules a run imports",
                [
                    py,
                    "-c",
                    start
                    + "import "
                    + ", ".join(["carbonwrap.cli.definition", "carbonwrap.run.phases", *modules])
                    + leave,
                ],
            ),
            ("carbonwrap run -q -- true (whole run)", run),
        ]
        for _, argv in steps:
            timed(argv, env, tmp)
        cpu: dict[str, list[float]] = {name: [] for name, _ in steps}
        for _ in range(runs):
            for name, argv in steps:
                cpu[name].append(timed(argv, env, tmp)[1])
            _bench.clear_logs(logs)
    print(f"start-up CPU breakdown (median user+sys over {runs} runs, cumulative):")
    prev = None
    for name, _ in steps:
        med = _bench.quantiles(cpu[name])[1]
        step = "" if prev is None else f"(+{med - prev:5.1f} ms)"
        print(f"  {med:6.1f} ms  {step:>12}  {name}")
        prev = med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=30, help="timed runs per variant (default 30)")
    ap.add_argument(
        "--breakdown", action="store_true", help="also show where the start-up CPU goes"
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time `run -- true` and `run -q -- true` of the carbonwrap/ of commit REV, "
        "interleaved with the rest (before and after a change, in one run)",
    )
    _bench.add_common_args(ap)
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    true = shutil.which("true") or "/bin/true"
    print(_bench.header("carbonwrap start-up overhead (bench/startup.py)", interp))
    print(
        f"runs:     {args.runs} per variant, interleaved, after 1 warm-up round; "
        "stdout+stderr -> /dev/null; cwd outside the repo"
    )
    print()

    with tempfile.TemporaryDirectory(prefix="cw-bench-startup-") as tmp:
        logs = os.path.join(tmp, "logs")
        env = _bench.carbonwrap_env(os.path.join(tmp, "pycache"))
        no_pyc = _bench.carbonwrap_env(None)
        cw = _bench.carbonwrap_argv
        variants: list[tuple[str, list[str], dict[str, str]]] = [
            ("true", [true], env),
            ("python -c pass", [interp.python, "-c", "pass"], env),
            (
                "carbonwrap run -- true (text report -> /dev/null)",
                cw(interp, "run", "--log-dir", logs, "--", true),
                env,
            ),
            (
                "carbonwrap run -q -- true",
                cw(interp, "run", "-q", "--log-dir", logs, "--", true),
                env,
            ),
            (
                "carbonwrap run -q --json - -- true",
                cw(interp, "run", "-q", "--json", "-", "--log-dir", logs, "--", true),
                env,
            ),
            (
                "carbonwrap run -q -- true, no .pyc (compiled each start)",
                cw(interp, "run", "-q", "--log-dir", logs, "--", true),
                no_pyc,
            ),
        ]
        if args.baseline:
            source, note = _bench.snapshot(args.baseline)
            print(f"baseline: {note}\n")
            base_env = _bench.carbonwrap_env(os.path.join(tmp, "pycache-base"), source=source)
            variants += [
                (
                    f"{args.baseline}: carbonwrap run -- true (text report -> /dev/null)",
                    cw(interp, "run", "--log-dir", logs, "--", true),
                    base_env,
                ),
                (
                    f"{args.baseline}: carbonwrap run -q -- true",
                    cw(interp, "run", "-q", "--log-dir", logs, "--", true),
                    base_env,
                ),
            ]
        times: dict[str, list[float]] = {v[0]: [] for v in variants}
        cpu: dict[str, list[float]] = {v[0]: [] for v in variants}
        for _, argv, e in variants:  # warm-up: page cache, .pyc files
            timed(argv, e, tmp)
        for i in range(args.runs):
            k = i % len(variants)
            for name, argv, e in variants[k:] + variants[:k]:
                wall_ms, cpu_ms = timed(argv, e, tmp)
                times[name].append(wall_ms)
                cpu[name].append(cpu_ms)
            _bench.clear_logs(logs)

    base = _bench.quantiles(times["true"])[1]
    width = max(len(v[0]) for v in variants)
    cpu_base = _bench.quantiles(cpu["true"])[1]
    print(
        f"{'wall time: variant':<{width}}  {'median':>9}  {'p10':>9}  {'p90':>9}  "
        f"{'added (median)':>15}  {'CPU median':>10}  {'CPU added':>10}"
    )
    for name, *_ in variants:
        p10, med, p90 = _bench.quantiles(times[name])
        added_col = "" if name == "true" else f"{med - base:+10.1f} ms"
        c = _bench.quantiles(cpu[name])[1]
        c_added_col = "" if name == "true" else f"{c - cpu_base:+7.1f} ms"
        print(
            f"{name:<{width}}  {med:6.1f} ms  {p10:6.1f} ms  {p90:6.1f} ms  {added_col:>15}  "
            f"{c:7.1f} ms  {c_added_col:>10}"
        )
    print()
    for name, *_ in variants[2:]:
        added = _bench.quantiles(times[name])[1] - base
        verdict = "within" if added <= TARGET_MS else "OVER"
        c_added = _bench.quantiles(cpu[name])[1] - cpu_base
        print(
            f"{name}: {added:.1f} ms added (median wall), {verdict} the {TARGET_MS:.0f} ms "
            f"target; {c_added:.1f} ms CPU added"
        )
    floor = _bench.quantiles(times["python -c pass"])[1] - base
    print(f"(of which the bare interpreter start accounts for {floor:.1f} ms)")
    if args.breakdown:
        print()
        breakdown(interp, true, args.runs)
    if shutil.which("hyperfine"):
        print()
        print("hyperfine is installed; a cross-check (from a directory outside the repo):")
        wrapped = shlex.join(cw(interp, "run", "-q", "--log-dir", "/tmp/cw-logs", "--", true))
        print(
            f"  PYTHONPATH={_bench.SOURCE} PYTHONPYCACHEPREFIX=/tmp/cw-pyc "
            f"env -u PYTHONDONTWRITEBYTECODE hyperfine -N --warmup 3 --runs {args.runs} "
            f"{shlex.quote(true)} {shlex.quote(wrapped)}"
        )


if __name__ == "__main__":
    main()
