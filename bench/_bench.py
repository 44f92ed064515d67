"""Shared helpers for the benchmark scripts in bench/ (stdlib only).

Each bench script prints a header naming the machine, then its numbers. None of them asserts.

How carbonwrap is started: as the installed `carbonwrap` command starts it — the interpreter
running a copy of the package's script, carbonwrap/cli/carbonwrap (what pip installs into bin/,
its `#!python` line pointed at the environment's interpreter), not `-m carbonwrap`, which adds
runpy — with PYTHONPATH set to this checkout and the working directory outside the repository,
so the code under test is the checkout's. The
interpreter should be one in which carbonwrap is NOT installed in editable mode: an editable
install's `.pth` finder runs on every interpreter start (even with PYTHONPATH set) and adds tens
of milliseconds that a normal `pip install` does not have. `--python` picks the interpreter;
otherwise $CARBONWRAP_BENCH_PYTHON, then this interpreter, then the repository's .venv, the first
one that can import click and psutil, preferring one without an editable carbonwrap.

Bytecode: a pip install leaves compiled .pyc files; a checkout run with PYTHONDONTWRITEBYTECODE=1
(set in some development environments) recompiles every carbonwrap module on every start. The
benches therefore drop PYTHONDONTWRITEBYTECODE for carbonwrap and point PYTHONPYCACHEPREFIX at a
temporary directory (nothing is written into the checkout), and warm it up before timing.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import glob
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The code under test: the checkout, or a snapshot of one commit (use_revision).
SOURCE = REPO
SOURCE_NOTE = ""


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--python", help="interpreter that runs carbonwrap (see bench/_bench.py)")
    ap.add_argument(
        "--rev",
        help="benchmark the carbonwrap/ of this commit (a `git archive` snapshot in a temporary "
        "directory) instead of the working tree, e.g. HEAD; immune to edits made meanwhile",
    )


def apply_common_args(args: argparse.Namespace) -> Interpreter:
    if args.rev:
        use_revision(args.rev)
    return pick_interpreter(args.python)


def use_revision(rev: str) -> None:
    """Extract carbonwrap/ at `rev` into a temporary directory and test that."""
    global SOURCE, SOURCE_NOTE
    SOURCE, SOURCE_NOTE = snapshot(rev)


def snapshot(rev: str) -> tuple[Path, str]:
    """carbonwrap/ at commit `rev`, extracted into a temporary directory (removed at exit):
    the directory for PYTHONPATH, and a line saying which commit it is."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"bench: {rev!r} is not a commit of {REPO}")
    snap = tempfile.mkdtemp(prefix=f"cw-bench-src-{sha[:12]}-")
    atexit.register(shutil.rmtree, snap, True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", sha, "carbonwrap"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", snap], input=archive, check=True)
    return Path(snap), f"commit {sha[:12]} ({rev}), snapshot in {snap}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "carbonwrap"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout?)"
    return f"{head}" + (" + uncommitted changes under carbonwrap/" if dirty else "")


@dataclass(frozen=True)
class Interpreter:
    python: str
    version: str
    editable: bool  # carbonwrap installed editable in this interpreter's site-packages
    note: str


def _probe(python: str) -> Interpreter | None:
    code = (
        "import sys, site, glob, os\n"
        "import click, psutil\n"
        "dirs = list(site.getsitepackages()) + [site.getusersitepackages()]\n"
        "ed = any(glob.glob(os.path.join(d, '__editable__*carbonwrap*')) for d in dirs)\n"
        "print(sys.version.split()[0], int(ed))\n"
    )
    try:
        out = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            cwd="/",
            timeout=30,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    version, editable = out.stdout.split()
    return Interpreter(python, version, editable == "1", "")


def pick_interpreter(requested: str | None) -> Interpreter:
    if requested:
        found = _probe(requested)
        if found is None:
            sys.exit(f"bench: {requested} cannot import click and psutil")
        return found
    candidates = [
        os.environ.get("CARBONWRAP_BENCH_PYTHON", ""),
        sys.executable,
        str(REPO / ".venv" / "bin" / "python"),
    ]
    usable = [i for i in (_probe(c) for c in candidates if c) if i is not None]
    if not usable:
        sys.exit("bench: no interpreter with click and psutil; pass --python")
    for interp in usable:
        if not interp.editable:
            return interp
    return usable[0]


def carbonwrap_env(
    pycache: str | None, extra: dict[str, str] | None = None, source: Path | None = None
) -> dict[str, str]:
    """Environment for a carbonwrap run; `pycache` = a directory for cached bytecode, or None for
    carbonwrap's modules compiled from source at every start (the standard library and click
    keep their installed bytecode, as they would); `source`: another tree than SOURCE."""
    source = SOURCE if source is None else source
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source)
    if pycache is None:
        # A copy of the package without __pycache__ (the checkout's may hold fresh .pyc files),
        # and nothing written.
        copy = tempfile.mkdtemp(prefix="cw-bench-nopyc-")
        atexit.register(shutil.rmtree, copy, True)
        shutil.copytree(
            source / "carbonwrap",
            os.path.join(copy, "carbonwrap"),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        env["PYTHONPATH"] = copy
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    env.pop("CARBONWRAP_REGION", None)
    env.update(extra or {})
    return env


# The `carbonwrap` command as installed: the package's own script (pyproject.toml's
# script-files; not a [project.scripts] entry point, whose wrapper imports re: ~5 ms), copied out
# of the checkout so that the directory Python puts first on sys.path is not a package's.
_SCRIPT: list[str] = []


def launcher() -> str:
    if not _SCRIPT:
        where = tempfile.mkdtemp(prefix="cw-bench-bin-")
        atexit.register(shutil.rmtree, where, True)
        script = os.path.join(where, "carbonwrap")
        shutil.copyfile(REPO / "carbonwrap" / "cli" / "carbonwrap", script)
        _SCRIPT.append(script)
    return _SCRIPT[0]


def carbonwrap_argv(interp: Interpreter, *args: str) -> list[str]:
    return [interp.python, launcher(), *args]


def header(title: str, interp: Interpreter | None = None) -> str:
    u = os.uname()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    lines = [
        f"# {title}",
        f"machine:  {u.sysname} {u.release} {u.machine} · {cpu_model()} · "
        f"{os.cpu_count()} logical CPUs ({affinity} usable) · host {u.nodename}",
        f"python:   bench {platform.python_version()} ({sys.executable})",
        f"date:     {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"checkout: {REPO} at {git_state()}",
        f"tested:   {SOURCE_NOTE or 'the working tree of the checkout (as it is while running)'}",
        "load:     {:.2f} {:.2f} {:.2f} (1/5/15 min load average at the start; other work on "
        "the machine inflates wall times, not CPU-time counts)".format(*os.getloadavg()),
    ]
    if interp is not None:
        how = (
            "editable install present (its finder adds start-up time!)"
            if interp.editable
            else "carbonwrap not installed editable; code imported via PYTHONPATH"
        )
        lines.append(
            f"carbonwrap: PYTHONPATH={SOURCE} {interp.python} <carbonwrap/cli/carbonwrap, "
            "the installed script> "
            f"(Python {interp.version}; {how}; bytecode cached in a temporary "
            "PYTHONPYCACHEPREFIX unless a line says otherwise)"
        )
    return "\n".join(lines)


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """(p10, median, p90) with linear interpolation between order statistics."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    deciles = statistics.quantiles(xs, n=10, method="inclusive")
    return deciles[0], statistics.median(xs), deciles[-1]


def clear_logs(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "carbonwrap-*.jsonl")):
        os.unlink(path)
