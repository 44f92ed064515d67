"""Slurm's own energy figure for each job of a report, beside carbonwrap's: `sacct`'s
ConsumedEnergyRaw, asked once per job at report time (never during a run: a job's wrappers
polling the controller would load it), quietly left out where sacct is absent, fails or has no
figure.

sacct(1) of Slurm 22.05 (https://slurm.schedmd.com/archive/slurm-22.05.8/sacct.html):
`-j job(.step)` selects a job or one of its steps, `-M cluster` the cluster, `--noheader
--parsable2` gives `|`-separated fields without a trailing `|`, and ConsumedEnergyRaw is "Total
energy consumed by all tasks in a job, in joules", the job's line summing its steps. It is 0 or
empty where no AcctGatherEnergyType gathers energy; with accounting storage off, sacct exits 1
("Slurm accounting storage is disabled").
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence

from carbonwrap.report.model import Group

TIMEOUT_S = 5.0  # each call; a controller that does not answer by then costs no more
MAX_CALLS = 50  # jobs asked about in one report; more would keep a report waiting for minutes
_NOT_A_VALUE = 1 << 63  # Slurm's NO_VAL64 and INFINITE64 sentinels, and anything as absurd


def sacct_argv(job_id: str, cluster: str | None) -> list[str]:
    argv = ["sacct", "-j", job_id, "--noheader", "--parsable2"]
    argv += ["--format=JobID,ConsumedEnergyRaw"]
    if cluster:
        argv += ["-M", cluster]
    return argv


def parse_consumed_energy(output: str, job_id: str) -> float | None:
    """ConsumedEnergyRaw (J) of `job_id`'s own line in sacct's parsable output; None where the
    line is missing or has no figure (empty, 0, a sentinel)."""
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 2 and fields[0] == job_id:
            value = fields[1].strip()
            if value.isascii() and value.isdigit() and 0 < int(value) < _NOT_A_VALUE:
                return float(value)
            return None
    return None


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _runner(environ: Mapping[str, str]) -> Runner | None:
    path = environ.get("PATH", "")
    sacct = shutil.which("sacct", path=path or None)
    if sacct is None:
        return None

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sacct, *argv[1:]],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_S,
            check=False,
        )

    return run


def add_consumed_energy(groups: Iterable[Group], environ: Mapping[str, str]) -> str:
    """Each Slurm job group's `sacct_energy_j`, one sacct call per job (and cluster). Returns
    a note for the report ("" when there is nothing to say): sacct is never an error, and its
    absence is no news (most machines have none). A first call that fails (no accounting
    storage, no such cluster, a controller down) ends the asking."""
    run = _runner(environ)
    if run is None:
        return ""
    asked: dict[tuple[str, str], float | None] = {}
    answered = False
    left = 0
    for group in groups:
        job = group.job
        if job is None or not job.slurm_job_id:
            continue
        query = (job.slurm_job_id, job.cluster)
        if query not in asked:
            if len(asked) >= MAX_CALLS:
                left += 1
                continue
            try:
                asked[query] = _ask(run, *query)
            except _Failed:
                if not answered:
                    return ""
                asked[query] = None
            answered = True
        job.sacct_energy_j = asked[query]
    if left:
        return f"sacct asked about the first {MAX_CALLS} jobs only ({left} more not asked)"
    return ""


class _Failed(Exception):
    """sacct could not answer."""


def _ask(run: Runner, job_id: str, cluster: str) -> float | None:
    try:
        result = run(sacct_argv(job_id, cluster or None))
    except (OSError, subprocess.SubprocessError):
        raise _Failed from None
    if result.returncode != 0:
        raise _Failed
    return parse_consumed_energy(result.stdout, job_id)
