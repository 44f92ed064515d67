"""Speed and memory of `carbonwrap report` over many logs and many sample lines.

    python3 bench/report_speed.py [--repeat 3] [--python PATH] [--rev REV] [--keep DIR]

Generates synthetic logs in a temporary directory with the real record builders
(carbonwrap.events) written as EventLog.write writes them, then times the real command
(`<python> -m carbonwrap report ...`, stdout to /dev/null) and reads its peak RSS from wait4:

  A  10,000 small logs in 100 directories: 1-8 samples each, 5% without an end record (killed),
     ranks of Slurm jobs, three tags; plus a garbage .jsonl file and a binary one.
  B  1,000,000 sample lines in 100 logs of 10,000 samples (28 h at --log-interval 10): a third
     with one static intensity, a third with a live intensity that changes every 30 minutes, a
     third live plus measured history every 30 minutes (the slow case: buckets are folded).
  C  two logs of the same 11.6 days (live + measured intensity): 1,000,000 samples (one a
     second) and 100,000 (one every 10 s), to show that memory does not grow with the samples
     of a run (it grows with its length in 5-minute buckets, as the fold's does).

Target (issue 5): 10,000 logs or 1,000,000 sample lines aggregated in under 2 s. Before timing,
the fast reading is checked against a fold of every record for logs of each kind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench

TARGET_S = 2.0
T0 = 1_790_000_000.0  # 2026-09-21, UTC
STEP_S = 10.0  # --log-interval default


def line(record: dict[str, object]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()


def write_log(
    path: Path,
    *,
    run_id: str,
    t0: float,
    samples: int,
    intensity: str,
    step_s: float = STEP_S,
    ended: bool = True,
    host: str = "node001",
    argv: list[str] | None = None,
    job: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """One run's log. `intensity`: static | live | measured (live + measured history)."""
    from carbonwrap.runlog import records as events

    rng = random.Random(run_id)
    out = [
        events.start(
            run_id=run_id,
            time_s=t0,
            argv=argv or ["python", "train.py", "--epochs", "3"],
            cwd="/home/user/project",
            host=host,
            pid=4242,
            versions={"carbonwrap": "0.1.0", "python": "3.11.7", "kernel": "6.8.0"},
            cpu_accounting="cgroup2",
            components={
                "cpu": {"method": "rapl", "basis": "2 package zone(s)"},
                "dram": {"method": "rapl", "basis": "2 dram zone(s)"},
                "gpu": {"method": "unavailable: no NVIDIA driver"},
            },
            region={"code": "DK", "kind": "country", "source": "flag", "detail": "--region DK"},
            pue=1.2,
            interval_s=1.0,
            log_interval_s=step_s,
            job=job or {},
            tags=tags or {},
        ),
        events.intensity(
            time_s=t0,
            elapsed_s=0.0,
            intensity_g_per_kwh=150.0,
            region="DK",
            source="static table: Denmark 2024, Ember 2024 yearly average (CC BY 4.0)",
        ),
    ]
    if rng.random() < 0.5:
        out.append(events.warning(time_s=t0, elapsed_s=0.02, message="RAPL psys zone skipped"))
    cpu = dram = 0.0
    with open(path, "wb") as f:
        f.write(b"".join(line(r) for r in out))
        chunk: list[bytes] = []
        every = round(1800 / step_s)  # samples in 30 minutes
        for i in range(1, samples + 1):
            t = t0 + i * step_s
            if intensity != "static" and i % every == 0:
                value = 100.0 + 80.0 * rng.random()
                chunk.append(
                    line(
                        events.intensity(
                            time_s=t,
                            elapsed_s=i * step_s,
                            intensity_g_per_kwh=round(value, 1),
                            region="DK",
                            source="Energi Data Service CO2Emis",
                            kind="latest",
                        )
                    )
                )
                if intensity == "measured":
                    for w in range(6):  # the last half hour, in 5-minute windows
                        start = t - 1800 + 300 * w
                        chunk.append(
                            line(
                                events.intensity(
                                    time_s=t,
                                    elapsed_s=i * step_s,
                                    intensity_g_per_kwh=round(value + 5 * w, 1),
                                    region="DK",
                                    source="Energi Data Service CO2Emis (measured)",
                                    kind="measured",
                                    valid_from_s=start,
                                    valid_to_s=start + 300,
                                )
                            )
                        )
            cpu += (30.0 + 5.0 * rng.random()) * step_s
            dram += (3.0 + 0.5 * rng.random()) * step_s
            chunk.append(
                line(
                    events.sample(
                        time_s=t,
                        elapsed_s=i * step_s,
                        cpu_s=i * step_s * 7.5,
                        energy_j={"cpu": cpu, "dram": dram},
                        device_energy_j={"cpu": 1.6 * cpu, "dram": 1.6 * dram},
                    )
                )
            )
            if len(chunk) >= 10_000:
                f.write(b"".join(chunk))
                chunk.clear()
        if ended:
            t = t0 + samples * step_s + 0.5
            chunk.append(
                line(
                    events.end(
                        time_s=t,
                        elapsed_s=samples * step_s + 0.5,
                        exit_code=0,
                        signal=None,
                        cpu_s=samples * step_s * 7.5,
                        energy_j={"cpu": cpu + 1.0, "dram": dram + 0.1},
                        device_energy_j={"cpu": 1.6 * cpu + 1.6, "dram": 1.6 * dram + 0.16},
                        leftover_pids=[],
                        signals_received=[],
                    )
                )
            )
        f.write(b"".join(chunk))


def make_many(root: Path, n: int) -> None:
    rng = random.Random(5)
    for k in range(n):
        node = root / f"node{k % 100:03d}"
        node.mkdir(parents=True, exist_ok=True)
        run_id = f"{k:012x}"
        job = {"SLURM_JOB_ID": str(900_000 + k // 8), "SLURM_PROCID": str(k % 8)}
        write_log(
            node / f"carbonwrap-20260921T000000Z-node{k % 100:03d}-{run_id}.jsonl",
            run_id=run_id,
            t0=T0 + 60 * k,
            samples=rng.randint(1, 8),
            intensity="static",
            ended=rng.random() >= 0.05,
            host=f"node{k % 100:03d}",
            argv=["python", "train.py", "--seed", str(k % 5)],
            job=job,
            tags={"exp": "abc"[k % 3]},
        )
    (root / "notes.jsonl").write_text("this is not a log\n{ nor is this\n")
    (root / "core.jsonl").write_bytes(bytes(range(256)) * 64)


def make_samples(root: Path, logs: int, samples: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    kinds = ("static", "live", "measured")
    for k in range(logs):
        write_log(
            root / f"carbonwrap-big-{k:04d}.jsonl",
            run_id=f"b{k:011x}",
            t0=T0 + 86_400 * k,
            samples=samples,
            intensity=kinds[k % 3],
        )


def check_exact(paths: list[Path]) -> list[str]:
    """The fast reading against a fold of every record, per log."""
    from carbonwrap.report.read import summarize_log
    from carbonwrap.runlog.reader import RecordReader
    from carbonwrap.runlog.summary import Fold

    lines = []
    for path in paths:
        fast = summarize_log(path)
        fold = Fold()
        for record in RecordReader(path):
            fold.add(record)
        full = fold.summary()
        assert fast is not None
        rel = abs(fast.co2e_g - full.co2e_g) / max(full.co2e_g, 1e-300)
        same = (fast.energy_j, fast.duration_s, fast.complete) == (
            full.energy_j,
            full.duration_s,
            full.complete,
        )
        lines.append(
            f"  {path.name}: CO2e {full.co2e_g:.6f} g (fold of every record) vs "
            f"{fast.co2e_g:.6f} g (fast), relative difference {rel:.1e}; energy, duration, "
            f"status {'identical' if same else 'DIFFERENT'}"
        )
    return lines


def in_process(label: str, directory: Path) -> str:
    from carbonwrap.report.read import read_runs

    found = []
    for workers in (1, len(os.sched_getaffinity(0))):
        t0, c0 = time.perf_counter(), time.process_time()
        runs, _ = read_runs([directory], workers=workers)
        found.append(
            f"{workers} process{'es' if workers > 1 else ''}: {time.perf_counter() - t0:.2f} s "
            f"wall ({time.process_time() - c0:.2f} s CPU here)"
        )
    return f"{label}: {len(runs)} runs; " + "; ".join(found)


# Runs the command and reports on it. A child's peak RSS (ru_maxrss) includes what it had
# before exec, which for a child of this process is this process's memory (vfork shares it):
# a small launcher process in between makes the figure the command's own.
_LAUNCHER = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - t0, usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]))
"""


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall s, CPU s (user+sys, helpers included) and peak RSS MiB of one run, its stdout to
    /dev/null; wall time measured around fork and wait, without the launcher's start-up."""
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        check=False,
    )
    *_, last = out.stdout.decode().strip().splitlines() or [""]
    try:
        wall, cpu, rss, rc = json.loads(last)
    except ValueError:
        rc = -1
    if rc != 0:
        sys.exit(f"bench: {' '.join(argv)} failed: {out.stderr.decode(errors='replace')[-500:]}")
    return wall, cpu, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_args(ap)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="generate into (and keep) this directory")
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    sys.path.insert(0, str(_bench.SOURCE))
    print(_bench.header("carbonwrap report: speed and memory", interp))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cw-report-bench-"))
    pycache = tempfile.mkdtemp(prefix="cw-pycache-")
    try:
        t = time.perf_counter()
        many, big, one, tenth = work / "A", work / "B", work / "C1", work / "C2"
        if not many.exists():
            make_many(many, 10_000)
            make_samples(big, 100, 10_000)
            one.mkdir()
            write_log(one / "carbonwrap-one.jsonl", run_id="c1", t0=T0, samples=1_000_000,
                      intensity="measured", step_s=1.0)  # fmt: skip
            tenth.mkdir()
            write_log(tenth / "carbonwrap-tenth.jsonl", run_id="c2", t0=T0, samples=100_000,
                      intensity="measured", step_s=10.0)  # fmt: skip
        size = sum(p.stat().st_size for p in work.rglob("*.jsonl")) / 2**20
        print(f"data:     generated in {time.perf_counter() - t:.0f} s, {size:.0f} MiB, in {work}")
        print("exactness (fast path against a fold of every record):")
        exact = [*sorted(big.glob("*.jsonl"))[:3], *tenth.glob("*.jsonl")]
        print("\n".join(check_exact(exact)))
        print("in this process, read_runs alone (no start-up, no output), CPU-bound:")
        for label, directory in (("A", many), ("B", big)):
            print("  " + in_process(label, directory))
        env = _bench.carbonwrap_env(pycache)
        cases = [
            ("A: 10,000 logs, table", [str(many)]),
            ("A: 10,000 logs, --group-by job", [str(many), "--group-by", "job"]),
            ("A: 10,000 logs, --json", [str(many), "--json"]),
            ("A: 10,000 logs, --csv", [str(many), "--csv"]),
            ("B: 1,000,000 samples in 100 logs, table", [str(big)]),
            ("B: 1,000,000 samples in 100 logs, --json", [str(big), "--json"]),
            ("C: 1,000,000 samples of one run (11.6 days)", [str(one)]),
            ("C: 100,000 samples of one run (11.6 days)", [str(tenth)]),
        ]
        timed(_bench.carbonwrap_argv(interp, "report", str(tenth)), env)  # warm bytecode, cache
        print(f"\n{'case':45s} {'wall s (median of ' + str(args.repeat) + ')':>24s} "
              f"{'CPU s':>7s} {'peak RSS MiB':>13s}  target {TARGET_S:.0f} s")  # fmt: skip
        for label, extra in cases:
            argv = _bench.carbonwrap_argv(interp, "report", *extra)
            runs = [timed(argv, env) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            verdict = "within" if wall < TARGET_S else "OVER"
            print(f"{label:45s} {wall:24.2f} {cpu:7.2f} {rss:13.1f}  {verdict}")
        print("load at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    finally:
        shutil.rmtree(pycache, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
