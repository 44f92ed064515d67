"""Load: a fork storm, thousands of threads, a flood of output, many runs at once, a week.

    python3 bench/load.py [--quick] [--only NAME,...]

Full sizes (the issue's): 2,000 processes, 5,000 threads, 1 GB of stdout, 20 runs at once in
one log directory, a simulated week. `--quick` uses the sizes tests/e2e/test_load.py and
tests/unit/runlog/test_load_simulated.py run in CI (200 processes, 500 threads, 50 MB, 20 runs, a
simulated day). Each scenario prints its numbers; the tests assert on the same functions' results.

How each number is got:
- CPU of the tree, the truth: the wrapped workload reports its own RUSAGE_SELF + RUSAGE_CHILDREN
  (every process it started was waited for, so this is the whole tree) into a file.
- carbonwrap's own CPU: os.wait4 on carbonwrap gives its CPU plus that of every descendant
  waited for (the tree); the tree's own report is subtracted. Start-up is included.
- Output throughput: bytes over the time from the first byte to EOF as the reader sees them (so
  start-up is not counted), with and without carbonwrap, best of N.
- The week: carbonwrap's Sampler, EventLog and Fold driven by a fake clock and fake counters
  (one reading a second, a sample logged every 10 s, an intensity record an hour); RSS and the
  log's size at the end of each simulated day.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FORK_STORM = """
import os, resource, sys
n, out = int(sys.argv[1]), sys.argv[2]
pending = set()
for _ in range(n):
    pending.add(os.posix_spawn("/bin/true", ["true"], os.environ))
    if len(pending) >= 64:  # as fast as it can, without running out of processes
        pid, _ = os.wait()
        pending.discard(pid)
for pid in pending:
    os.waitpid(pid, 0)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
open(out, "w").write(repr(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime))
"""

THREADS = """
import resource, sys, threading
n, out = int(sys.argv[1]), sys.argv[2]
threading.stack_size(256 * 1024)
gate = threading.Event()
def work():
    gate.wait()
    sum(range(20_000))
threads = [threading.Thread(target=work) for _ in range(n)]
for t in threads:
    t.start()
alive = threading.active_count()
gate.set()
for t in threads:
    t.join()
me = resource.getrusage(resource.RUSAGE_SELF)
open(out, "w").write(repr(me.ru_utime + me.ru_stime))
open(out + ".alive", "w").write(str(alive))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    for name in list(env):
        if name.startswith("CARBONWRAP_"):
            del env[name]
    for provider in ("ELECTRICITYMAPS", "UKGRID", "ENERGIDATASERVICE", "WATTTIME"):
        env[f"CARBONWRAP_{provider}_URL"] = "http://127.0.0.1:9"
    return env


def _carbonwrap(*args: str) -> list[str]:
    return [sys.executable, "-m", "carbonwrap", *args]


def wrapped_cpu(workload: str, size: int, workdir: Path) -> dict[str, float]:
    """Run `workload` (FORK_STORM or THREADS) with `size` under carbonwrap."""
    out = workdir / "tree_cpu.txt"
    report = workdir / "report.json"
    argv = _carbonwrap(
        "run",
        "-q",
        "--json",
        str(report),
        "--log-dir",
        str(workdir / "logs"),
        "--",
        sys.executable,
        "-c",
        workload,
        str(size),
        str(out),
    )
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=workdir, env=_env())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}")
    tree_s = float(out.read_text())
    document = json.loads(report.read_text())
    result = {
        "tree_cpu_s": tree_s,
        "counted_cpu_s": float(document["cpu_seconds"]),
        "wrapper_cpu_s": usage.ru_utime + usage.ru_stime - tree_s,
        "wall_s": wall_s,
        "accounting": document["cpu_accounting"],
    }
    alive = Path(str(out) + ".alive")
    if alive.exists():
        result["threads_alive"] = float(alive.read_text())
    return result


def output_throughput(size_bytes: int, tries: int, workdir: Path) -> dict[str, float]:
    """Bytes per second of `yes | head -c SIZE` as its reader sees them, with and without."""
    command = ["sh", "-c", f"yes | head -c {size_bytes}"]

    def once(argv: list[str]) -> float:
        proc = subprocess.Popen(argv, cwd=workdir, env=_env(), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        first = proc.stdout.read(1)
        t0 = time.perf_counter()
        got = len(first)
        while chunk := proc.stdout.read1(1 << 20):
            got += len(chunk)
        t1 = time.perf_counter()
        proc.wait()
        if got != size_bytes or proc.returncode != 0:
            raise RuntimeError(f"read {got} of {size_bytes} bytes, exit {proc.returncode}")
        return (got - 1) / (t1 - t0)

    wrapped = _carbonwrap("run", "-q", "--log-dir", str(workdir / "logs"), "--", *command)
    plain_bps = max(once(command) for _ in range(tries))
    wrapped_bps = max(once(wrapped) for _ in range(tries))
    return {
        "plain_MBps": plain_bps / 1e6,
        "wrapped_MBps": wrapped_bps / 1e6,
        "ratio": wrapped_bps / plain_bps,
    }


def concurrent_runs(runs: int, workdir: Path) -> dict[str, Any]:
    """`runs` carbonwraps at once in one log directory, on a fake RAPL counter that advances
    at 50 W: files, lines, and the sum of attributed CPU energy against the device energy."""
    sys.path.insert(0, str(REPO / "tests"))
    from sysfs_tree import make_sysfs, zone_file

    from carbonwrap.runlog.reader import RecordReader

    sysfs = make_sysfs(workdir / "sys")
    counter = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    stop = threading.Event()
    value = [1_000_000]

    def advance() -> None:
        fd = os.open(counter, os.O_WRONLY)
        try:
            while not stop.is_set():
                value[0] += 250_000  # 0.25 J every 5 ms: 50 W
                os.pwrite(fd, f"{value[0]:020d}\n".encode(), 0)
                time.sleep(0.005)
        finally:
            os.close(fd)

    writer = threading.Thread(target=advance)
    writer.start()
    first_uj = value[0]
    logs = workdir / "shared-logs"
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    env = {**_env(), "CARBONWRAP_SYSFS_ROOT": str(sysfs)}
    try:
        procs = [
            subprocess.Popen(
                _carbonwrap(
                    "run",
                    "-q",
                    "--interval",
                    "0.1",
                    "--log-interval",
                    "0.1",
                    "--log-dir",
                    str(logs),
                    "--json",
                    str(workdir / f"r{n}.json"),
                    "--",
                    sys.executable,
                    "-c",
                    burn,
                ),
                cwd=workdir,
                env=env,
            )
            for n in range(runs)
        ]
        codes = [p.wait(timeout=300) for p in procs]
    finally:
        stop.set()
        writer.join()
    device_j = (value[0] - first_uj) / 1e6
    files = sorted(logs.glob("carbonwrap-*.jsonl"))
    bad = sum(_bad_lines(RecordReader(f)) for f in files)
    documents = [json.loads((workdir / f"r{n}.json").read_text()) for n in range(runs)]
    attributed_j = sum(d["energy_kwh"]["cpu"] * 3.6e6 for d in documents)
    largest_device_j = max(d["device_energy_kwh"]["cpu"] * 3.6e6 for d in documents)
    return {
        "exit_codes": codes,
        "files": len(files),
        "run_ids": len({d["run_id"] for d in documents}),
        "bad_lines": bad,
        "attributed_cpu_j": attributed_j,
        "device_cpu_j": device_j,
        "largest_run_device_j": largest_device_j,
        "cpu_s": sum(d["cpu_seconds"] for d in documents),
    }


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def simulated_run(days: float, workdir: Path, gpus: int = 1) -> dict[str, Any]:
    """carbonwrap's Sampler, EventLog and Fold over `days` of fake time: one reading a second,
    a sample every 10 s, an hourly intensity record; RSS and log size at each day's end."""
    import gc

    from carbonwrap.measure.attribution import EnergyModel, Reading
    from carbonwrap.measure.sampler import Sampler
    from carbonwrap.run.context import sample_record as _sample
    from carbonwrap.runlog import records as events
    from carbonwrap.runlog.summary import Fold
    from carbonwrap.runlog.writer import EventLog
    from carbonwrap.sensors.gpu import GpuSample

    def Gpu(energy_j: float) -> GpuSample:
        return GpuSample(energy_j, None, {os.getpid(): 1 << 30}, {})

    clock = [0.0]
    t0_wall = 1_790_000_000.0
    model = EnergyModel(
        "rapl", "rapl", {"p": "package", "d": "dram"}, {"p": 262_143.0, "d": 65_712.0}, gpu=gpus > 0
    )

    def read() -> Reading:
        t = clock[0]  # rates with many digits, as real counters give (the log's numbers too)
        return Reading(
            mono_s=t,
            tree_cpu_s=t * 0.9137,
            busy_all_s=t * 1.2291,
            rapl_j={"p": (t * 65.4321) % 262_143.328850, "d": (t * 6.1234) % 65_712.999613},
            tree_pids=frozenset({os.getpid()}),
            gpu={i: Gpu(t * 251.123456) for i in range(gpus)},  # type: ignore[misc]
        )

    log = EventLog(str(workdir), "week.jsonl")
    fold = Fold()
    lock = threading.Lock()

    def record(r: dict[str, Any]) -> None:
        with lock:
            log.write(r)
            fold.add(r)

    wall = time.time
    try:
        time.time = lambda: t0_wall + clock[0]  # type: ignore[assignment]  # sample timestamps
        record(
            events.start(
                run_id="week",
                time_s=t0_wall,
                argv=["train"],
                cwd="/",
                host="h",
                pid=1,
                versions={},
                cpu_accounting="fake",
                components={},
                region={},
                pue=1.0,
                interval_s=1.0,
                log_interval_s=10.0,
                job={},
                tags={},
            )
        )
        sampler = Sampler(
            read,
            model,
            1.0,
            10.0,
            lambda totals: record(_sample(totals)),
            lambda m: None,
            clock=lambda: clock[0],
        )
        per_day = []
        started = time.perf_counter()
        seconds = int(days * 86_400)
        for second in range(1, seconds + 1):
            clock[0] = float(second)
            if second % 3600 == 1:
                record(
                    events.intensity(
                        time_s=t0_wall + second,
                        elapsed_s=second,
                        intensity_g_per_kwh=100.0 + second // 3600 % 50,
                        region="DK",
                        source="fake",
                        kind="latest",
                    )
                )
            sampler.step()
            if second % 21_600 == 0 or second == seconds:  # every 6 hours
                gc.collect()
                per_day.append(
                    {
                        "day": second / 86_400,
                        "rss_MB": _rss_bytes() / 1e6,
                        "log_MB": os.path.getsize(log.path) / 1e6,
                    }
                )
        elapsed = time.perf_counter() - started
        summary = fold.summary()
    finally:
        time.time = wall  # type: ignore[assignment]
        log.close()
    return {
        "days": days,
        "per_day": per_day,
        "log_MB": os.path.getsize(log.path) / 1e6,
        "samples": Path(log.path).read_text().count('"type":"sample"'),
        "seconds_to_simulate": elapsed,
        "energy_kWh": summary.energy_j / 3.6e6,
        "co2e_kg": summary.co2e_g / 1000,
    }


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.node()} ({os.cpu_count()} CPUs, {cpu}), Linux {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI sizes")
    parser.add_argument("--only", default="fork,threads,output,concurrent,week")
    args = parser.parse_args()
    only = set(args.only.split(","))
    quick = args.quick
    print(
        f"# bench/load.py {'--quick ' if quick else ''}on {machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        if "fork" in only:
            n = 200 if quick else 2000
            print(f"fork storm, {n} processes:", json.dumps(wrapped_cpu(FORK_STORM, n, work)))
        if "threads" in only:
            n = 500 if quick else 5000
            print(f"threads, {n}:", json.dumps(wrapped_cpu(THREADS, n, work)))
        if "output" in only:
            size = (50 if quick else 1024) << 20
            print(f"stdout, {size >> 20} MiB:", json.dumps(output_throughput(size, 3, work)))
        if "concurrent" in only:
            print("20 runs at once:", json.dumps(concurrent_runs(20, work)))
        if "week" in only:
            result = simulated_run(1.0 if quick else 7.0, work)
            print(f"simulated {result['days']:g} day(s):", json.dumps(result))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"# bench process peak RSS {peak / 1024:.0f} MB")


def _bad_lines(reader: Any) -> int:
    """Lines of one log that are not records: read it all, then count."""
    for _ in reader:
        pass
    return int(reader.bad_lines)


if __name__ == "__main__":
    main()
