"""The run's totals so far, kept in a small file for the command itself to read back
(`carbonwrap.report_progress.totals()`: the framework callbacks hand them to the trainer's
logger).

The file is `totals` in the progress channel's own 0700 directory (CARBONWRAP_TOTALS names it
in the command's environment), written once the command has reported progress: at each logged
progress report and sample, from the sampler's latest reading priced at the intensity in force
(as the budget prices it), so it is at most one --interval old when a report is logged. Each
write replaces the file whole (outfiles.replace_whole: a new file renamed over it), so a reader
sees one version or the next, never part of one. Removed with its directory after the end
record, once the command has ended. A write that fails is skipped; the next one tries again
(the numbers are a convenience for the command: the log holds the real ones)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from carbonwrap import outfiles
from carbonwrap.runlog.ledger import J_PER_KWH
from carbonwrap.runlog.summary import Fold

ENV = "CARBONWRAP_TOTALS"  # report_progress.TOTALS_ENV reads the same name
NAME = "totals"


class TotalsFile:
    """`write()` when the totals have moved on; `remove()` once the command has ended."""

    def __init__(
        self,
        path: str,
        fold_locked: Callable[[Callable[[Fold], Any]], Any],
        reading: Callable[[], tuple[float, float]],
    ) -> None:
        """`reading`: the sampler's latest (elapsed s, attributed energy J)."""
        self.path = path
        self._fold_locked = fold_locked
        self._reading = reading
        self.writes = 0
        self.failures = 0

    def write(self) -> None:
        """The totals now; never raises."""
        try:
            elapsed_s, energy_j = self._reading()
            so_far = self._fold_locked(Fold.so_far)
            energy_j = max(energy_j, so_far.energy_j)
            document = {
                "time_s": round(time.time(), 3),
                "elapsed_s": round(elapsed_s, 3),
                "energy_j": round(energy_j, 6),
                "energy_kwh": energy_j / J_PER_KWH,
                "co2e_g": so_far.co2e_at_g(energy_j),
                "pue": so_far.pue,
                "intensity_g_per_kwh": so_far.intensity[0] if so_far.intensity else None,
            }
            data = json.dumps(document, allow_nan=False).encode()
            outfiles.replace_whole(self.path, data, mode=0o600, exact=True)
        except Exception:  # a full disk, the directory gone: the next write tries again
            self.failures += 1
            return
        self.writes += 1

    def remove(self) -> None:
        """The file, and the channel's directory if nothing else is left in it (the channel,
        closed before the end record, could not remove it while the file was there)."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))


def totals_observer(
    path: str,
    fold_locked: Callable[[Callable[[Fold], Any]], Any],
    reading: Callable[[], tuple[float, float]],
) -> Callable[[dict[str, Any]], None]:
    """A Recorder observer keeping `path` current from the first progress record on, removing
    it after the end record."""
    totals = TotalsFile(path, fold_locked, reading)
    started = False

    def observe(record: dict[str, Any]) -> None:
        nonlocal started
        kind = record.get("type")
        if kind == "progress":
            started = True
        if kind == "end":
            totals.remove()
        elif started and kind in ("progress", "sample"):
            totals.write()

    return observe
