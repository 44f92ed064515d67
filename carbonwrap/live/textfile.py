"""--prometheus-textfile: keep a .prom file current for node_exporter's textfile collector,
rendered from the run's fold and replaced atomically.

Written after the start records, after every logged sample (the sampler's emit, so the fold has
just taken that sample in: the file and the log agree) and after the end record, with final
values and `carbonwrap_run_ended 1`. The file is then left in place: a scrape after the run still
sees the final values, and the series stay until the file is replaced (the next run writing the
same PATH) or removed (`carbonwrap run ... ; rm -f PATH` for a one-off job). Removing it at the
end would lose whatever happened since the last scrape.

Each write goes to a new hidden temporary file in the same directory (`.NAME.XXXX.tmp`: no `.prom`
ending, so node_exporter never reads it) and is renamed over PATH: a reader sees the old file or
the new one, never part of one. The directory is reached and the file replaced by outfiles'
rules (often a directory every job on the node shares): no other user's symlink is followed or
replaced, a directory anyone may write without the sticky bit is refused. No fsync: it would
stall the sampling thread on a busy disk, and after a crash the file is stale anyway; what must
survive is in the log.

A write that fails (disk full, directory removed) never reaches the child or the run: the reason
is kept, one warning goes to the log, later writes try again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from carbonwrap import __version__, outfiles
from carbonwrap.errors import CarbonwrapError
from carbonwrap.render.prometheus import ComponentPoint, PromSnapshot, render_prometheus
from carbonwrap.runlog.records import job_key, parse_utc
from carbonwrap.runlog.summary import Fold

OPTION = "--prometheus-textfile"


def check_target(path: str) -> None:
    """Before the child starts: a .prom name in a directory carbonwrap may write to by outfiles'
    rules, else one line, exit 125."""
    if not os.path.basename(path).endswith(".prom"):
        raise CarbonwrapError(
            f"{OPTION} {path}: node_exporter's textfile collector reads only *.prom files; "
            "give the name a .prom ending"
        )
    outfiles.check_target(OPTION, path)


class TextfileExporter:
    """Call `write()` whenever the fold has new totals; it renders and replaces the file."""

    def __init__(
        self,
        path: str,
        fold_locked: Callable[[Callable[[Fold], Any]], Any],
        warn: Callable[[str], None],
    ) -> None:
        self.path = path  # as given, for messages
        self._target = os.path.abspath(path)
        self._fold_locked = fold_locked
        self._warn = warn
        self._lock = threading.Lock()
        # the previous write's energy per component and duration, for power over the interval
        self._previous: tuple[dict[str, float], float] | None = None
        self._power_w: dict[str, float] = {}
        self.failed: str | None = None  # the last write's failure, None once one succeeds
        self._warned = False
        self.writes = 0

    def write(self) -> None:
        """Render the fold as it is now and replace the file; never raises."""
        with self._lock:
            try:
                snapshot = self._fold_locked(self._snapshot)
                self._replace(render_prometheus(snapshot).encode("utf-8"))
            except Exception as exc:  # the run goes on whatever happens here
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.failed = f"{type(exc).__name__}: {reason}"
                if not self._warned:
                    self._warned = True
                    self._warn(
                        f"{OPTION} {self.path}: could not write it ({reason}); the run goes on, "
                        "later writes are tried (said once)"
                    )
                return
            self.failed = None
            self.writes += 1

    def _snapshot(self, fold: Fold) -> PromSnapshot:
        """Under the recorder's lock: an immutable copy of what the file shows."""
        s = fold.summary()
        energy = {name: c.energy_j for name, c in s.components.items() if c.energy_j is not None}
        if self._previous is not None:
            before, before_s = self._previous
            span_s = s.duration_s - before_s
            if span_s > 0:  # else keep the last value (two writes at the same totals)
                self._power_w = {
                    name: max(0.0, joules - before.get(name, 0.0)) / span_s
                    for name, joules in energy.items()
                }
        self._previous = (energy, s.duration_s)
        current = fold.current_intensity()
        return PromSnapshot(
            run_id=s.run_id,
            host=s.host,
            program=os.path.basename(s.command[0]) if s.command else "",
            version=__version__,
            cpu_accounting=s.cpu_accounting,
            start_time_s=parse_utc(s.started_at),
            elapsed_s=s.duration_s,
            cpu_s=s.cpu_s,
            components=[
                ComponentPoint(
                    name, c.method, c.energy_j, c.device_energy_j, self._power_w.get(name)
                )
                for name, c in s.components.items()
            ],
            pue=s.pue,
            co2e_g=s.co2e_g,
            intensity=(
                (current[0], s.region.get("code", ""), current[1], current[2]) if current else None
            ),
            ended=s.complete,
            exit_code=s.exit_code,
            job=(
                job_key(s.job) or "",
                s.job.get("SLURM_JOB_USER", ""),
                s.job.get("SLURM_JOB_PARTITION", ""),
            ),
        )

    def _replace(self, data: bytes) -> None:
        # 0644 (less the umask): node_exporter runs as another user; nothing in it is secret
        outfiles.replace_whole(self._target, data, mode=0o644)
