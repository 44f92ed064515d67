"""CPU-time capture: carbonwrap's `cpu_seconds` against the truth the processes report themselves.

    python3 bench/cpu_capture.py [--repeat 3] [--modes cgroup2,cgroup1,process-tree]
                                 [--busy-seconds 3] [--scale 1] [--python PATH]

Workloads (bench/workloads/tree.py, run by this interpreter):
  tree  short-lived grandchildren (10 x 0.2 s, one after another), a double-forked daemon (2 s),
        a parent ignoring SIGCHLD whose 4 children burn 0.3 s each (never waited for), and the
        top process (0.5 s); about 5.8 CPU-seconds in 19 processes;
  busy  one process burning --busy-seconds.
Every process appends its own CPU time (time.process_time(), as its last act before os._exit)
to a truth file named by $CARBONWRAP_BENCH_TRUTH; truth = the sum of the lines. Each workload
runs under `carbonwrap run -q --cpu-accounting MODE --json - -- ...` --repeat times per mode;
measured = the JSON's cpu_seconds; error = (measured - truth) / truth.

For reference the same workloads also run without carbonwrap, showing what os.wait4 on the
top process credits (its own time plus the children it, and they, waited for: no daemon, no
children of the SIGCHLD-ignoring parent).

What the truth cannot see, so a small positive error is expected from an exact counter: the
kernel's exit path of each process after its last measurement (unmapping its memory: about a
millisecond for a forked Python process here). The script measures that cost first
(tree.py --exit-cost 20: wait4's figure minus the child's own last reading) and prints the
excess it predicts. The reverse, in the truth but outside a cgroup: the few hundred µs the
forked child spends before it joins the leaf. Target (issue 2): within 1 % of the truth for
cgroup accounting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads", "tree.py")
sys.path.insert(0, os.path.dirname(WORKLOAD))
from tree import TREE_PROCESSES  # noqa: E402

TARGET_PCT = 1.0


@dataclass
class Run:
    truth_s: float
    lines: int
    expected: int
    measured_s: float | None
    accounting: str
    wall_s: float
    exit_code: int
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.measured_s is None or not self.truth_s:
            return None
        return 100 * (self.measured_s - self.truth_s) / self.truth_s

    def residual_pct(self, exit_cost_s: float) -> float | None:
        """Error left after adding the calibrated exit-path CPU of every reporting process."""
        if self.measured_s is None or not self.truth_s:
            return None
        expected = self.truth_s + self.lines * exit_cost_s
        return 100 * (self.measured_s - expected) / self.truth_s


def workload_argv(kind: str, args: argparse.Namespace) -> tuple[list[str], int]:
    if kind == "busy":
        return [sys.executable, WORKLOAD, "--busy", f"{args.busy_seconds:g}"], 1
    return [sys.executable, WORKLOAD, "--scale", f"{args.scale:g}"], TREE_PROCESSES


def read_truth(path: str) -> tuple[float, int]:
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return 0.0, 0
    return sum(float(r[2]) for r in rows), len(rows)


def run_wrapped(
    interp: _bench.Interpreter, mode: str, kind: str, args: argparse.Namespace, tmp: str
) -> Run:
    truth = os.path.join(tmp, "truth.txt")
    if os.path.exists(truth):
        os.unlink(truth)
    work, expected = workload_argv(kind, args)
    argv = _bench.carbonwrap_argv(
        interp,
        "run",
        "-q",
        "--cpu-accounting",
        mode,
        "--json",
        "-",
        "--log-dir",
        os.path.join(tmp, "logs"),
        "--",
        *work,
    )
    env = _bench.carbonwrap_env(os.path.join(tmp, "pycache"), {"CARBONWRAP_BENCH_TRUTH": truth})
    t0 = time.monotonic()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=120,
    )
    wall = time.monotonic() - t0
    _bench.clear_logs(os.path.join(tmp, "logs"))
    total, lines = read_truth(truth)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        err = proc.stderr.strip().splitlines()
        return Run(
            total,
            lines,
            expected,
            None,
            mode,
            wall,
            proc.returncode,
            f"no JSON; stderr: {err[-1] if err else ''}",
        )
    note = ""
    if doc.get("leftover_pids"):
        note = f"leftover pids {doc['leftover_pids']}"
    return Run(
        total,
        lines,
        expected,
        float(doc["cpu_seconds"]),
        doc["cpu_accounting"],
        wall,
        proc.returncode,
        note,
    )


def run_bare(kind: str, args: argparse.Namespace, tmp: str) -> Run:
    """No wrapper: what os.wait4 on the top process credits."""
    truth = os.path.join(tmp, "truth.txt")
    if os.path.exists(truth):
        os.unlink(truth)
    work, expected = workload_argv(kind, args)
    env = dict(os.environ, CARBONWRAP_BENCH_TRUTH=truth)
    t0 = time.monotonic()
    proc = subprocess.Popen(work, stdin=subprocess.DEVNULL, env=env, cwd=tmp)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    # The daemon was re-parented to init (or a subreaper above us): let it finish reporting.
    deadline = time.monotonic() + 30
    total, lines = read_truth(truth)
    while lines < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        total, lines = read_truth(truth)
    return Run(
        total,
        lines,
        expected,
        usage.ru_utime + usage.ru_stime,
        "wait4 (no wrapper)",
        wall,
        proc.returncode,
    )


def fmt(run: Run, exit_cost_s: float) -> str:
    measured = "—" if run.measured_s is None else f"{run.measured_s:8.3f} s"
    err = "—" if run.error_pct is None else f"{run.error_pct:+7.2f} %"
    res = run.residual_pct(exit_cost_s)
    err += "" if res is None else f" (after exit-path allowance {res:+6.2f} %)"
    lines = "" if run.lines == run.expected else f" ONLY {run.lines}/{run.expected} reported"
    extra = f"  [{run.note}]" if run.note else ""
    exit_note = "" if run.exit_code == 0 else f" exit {run.exit_code}"
    return (
        f"truth {run.truth_s:8.3f} s  measured {measured}  error {err}  "
        f"wall {run.wall_s:5.2f} s{exit_note}{lines}{extra}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode and workload (default 3)")
    ap.add_argument(
        "--modes",
        default="cgroup2,cgroup1,process-tree",
        help="comma-separated --cpu-accounting modes",
    )
    ap.add_argument(
        "--busy-seconds",
        type=float,
        default=3.0,
        help="CPU seconds of the plain busy child (default 3)",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="scale the tree's burn times")
    _bench.add_common_args(ap)
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    print(_bench.header("carbonwrap CPU-time capture (bench/cpu_capture.py)", interp))
    print(
        f"workloads: tree = {sys.executable} {WORKLOAD} --scale {args.scale:g} "
        f"({TREE_PROCESSES} processes); busy = ... --busy {args.busy_seconds:g}; "
        f"{args.repeat} run(s) per mode; carbonwrap run -q --cpu-accounting MODE --json - -- ..."
    )
    print()
    cost_ms = float(
        subprocess.run(
            [sys.executable, WORKLOAD, "--exit-cost", "20"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    print(
        f"exit-path CPU after each process's last measurement (tree.py --exit-cost 20): "
        f"{cost_ms:.2f} ms per process -> an exact counter should read about "
        f"{TREE_PROCESSES * cost_ms:.0f} ms above the tree's truth and "
        f"{cost_ms:.1f} ms above the busy child's"
    )
    print()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results: dict[tuple[str, str], list[Run]] = {}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cw-bench-cpu-") as tmp:
        for kind in ("tree", "busy"):
            print(f"## {kind}")
            bare = run_bare(kind, args, tmp)
            print(f"  {'no wrapper, os.wait4':<28} {fmt(bare, cost_ms / 1e3)}")
            for mode in modes:
                runs = results.setdefault((kind, mode), [])
                for i in range(args.repeat):
                    run = run_wrapped(interp, mode, kind, args, tmp)
                    runs.append(run)
                    label = f"{mode} #{i + 1}" + (
                        f" ({run.accounting})" if run.accounting != mode else ""
                    )
                    print(f"  {label:<28} {fmt(run, cost_ms / 1e3)}", flush=True)
            print()

    print("## summary (error of cpu_seconds against the truth)")
    for (kind, mode), runs in results.items():
        errs = [r.error_pct for r in runs if r.error_pct is not None]
        if not errs:
            print(f"  {kind:<5} {mode:<13} no measurement ({runs[0].note})")
            continue
        worst = max(errs, key=abs)
        captured = statistics.median(
            100 * r.measured_s / r.truth_s for r in runs if r.measured_s is not None and r.truth_s
        )
        verdict = ""
        if mode.startswith("cgroup"):
            verdict = (
                " — "
                + ("within" if abs(worst) <= TARGET_PCT else "OUTSIDE")
                + f" the {TARGET_PCT:g} % target"
            )
        residuals = [r.residual_pct(cost_ms / 1e3) for r in runs]
        res = statistics.median(x for x in residuals if x is not None)
        print(
            f"  {kind:<5} {mode:<13} median error {statistics.median(errs):+6.2f} %, "
            f"worst {worst:+6.2f} % (captured {captured:.1f} % of the truth; median after "
            f"exit-path allowance {res:+.2f} %){verdict}"
        )
    print(f"\n(total bench time {time.monotonic() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
