"""PyTorch Lightning: `Trainer(callbacks=[CarbonwrapProgress()])` reports optimizer steps
(trainer.global_step of trainer.estimated_stepping_batches) when the total is known, else epochs
(current_epoch + 1 of max_epochs).

At each training epoch's end it also logs the run's totals so far through the module's logger
(`pl_module.log_dict`: carbonwrap_energy_kwh, carbonwrap_co2e_g), so they reach the trainer's
loggers (TensorBoard, CSV, MLflow, W&B) beside the loss.

Imports `lightning.pytorch`, else `pytorch_lightning` (pass it to the Trainer of the same
package). Every rank reports; carbonwrap keeps one process's reports. Outside carbonwrap it does
nothing.
"""

import contextlib
import importlib
import math
from typing import Any

from carbonwrap.report_progress import progress, totals_for_log


def _lightning() -> Any:
    try:
        return importlib.import_module("lightning.pytorch")
    except ImportError:
        return importlib.import_module("pytorch_lightning")


class CarbonwrapProgress(_lightning().Callback):  # type: ignore[misc]
    """Reports to carbonwrap: steps when the trainer can estimate them, else epochs; one unit
    for the whole fit."""

    def __init__(self) -> None:
        super().__init__()
        self._total_steps: int | None = None
        self._max_epochs: int | None = None
        self._last_step = -1

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        try:
            total = float(trainer.estimated_stepping_batches)
        except Exception:  # an iterable without a length, or an older Lightning
            total = math.inf
        self._total_steps = int(total) if math.isfinite(total) and total >= 1 else None
        max_epochs = getattr(trainer, "max_epochs", None)
        self._max_epochs = max_epochs if isinstance(max_epochs, int) and max_epochs > 0 else None
        self._last_step = -1
        if self._total_steps:
            self._report_step(trainer)
        else:  # 0, or the epoch it resumes from
            progress(trainer.current_epoch, self._max_epochs, "epoch")

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._total_steps:
            self._report_step(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._total_steps:
            self._report_step(trainer)
        else:
            done = trainer.current_epoch + 1
            progress(min(done, self._max_epochs or done), self._max_epochs, "epoch")
        logged = totals_for_log()
        # Each node's carbonwrap run has its own totals (the loggers keep rank 0's): no sync.
        # Never fails the fit: a module not attached to a trainer, an older Lightning.
        if logged:
            with contextlib.suppress(Exception):
                pl_module.log_dict(logged, on_step=False, on_epoch=True, sync_dist=False)

    def _report_step(self, trainer: Any) -> None:
        step = trainer.global_step
        if step != self._last_step:  # with gradient accumulation, several batches per step
            self._last_step = step
            total = self._total_steps
            progress(min(step, total) if total else step, total, "step")
