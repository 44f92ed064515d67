"""Keras: `model.fit(..., callbacks=[CarbonwrapProgress()])` reports steps of the whole fit
(epoch * steps + batch + 1 of epochs * steps) when fit knows the steps per epoch, else epochs.

At each epoch's end it also puts the run's totals so far into the epoch's `logs`
(carbonwrap_energy_kwh, carbonwrap_co2e_g: `report_progress.totals_for_log`), so History, CSVLogger
and TensorBoard callbacks after it record them beside the loss.

Imports `keras` (Keras 3), else `tensorflow.keras`. Outside carbonwrap it does nothing.
"""

import importlib
from typing import Any

from carbonwrap.report_progress import progress, totals_for_log


def _keras() -> Any:
    try:
        return importlib.import_module("keras")
    except ImportError:
        return importlib.import_module("tensorflow.keras")


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class CarbonwrapProgress(_keras().callbacks.Callback):  # type: ignore[misc]
    """Reports to carbonwrap: one unit for the whole fit (steps, or epochs when the steps per
    epoch are unknown), so the log never alternates between units."""

    def __init__(self) -> None:
        super().__init__()
        self._epochs: int | None = None
        self._steps: int | None = None
        self._epoch = 0

    def on_train_begin(self, logs: Any = None) -> None:
        params = getattr(self, "params", None) or {}
        self._epochs = _positive(params.get("epochs"))
        self._steps = _positive(params.get("steps"))
        if self._epochs and self._steps:
            progress(0, self._epochs * self._steps, "step")
        else:
            progress(0, self._epochs, "epoch")

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if self._epochs and self._steps:
            total = self._epochs * self._steps
            progress(min(self._epoch * self._steps + batch + 1, total), total, "step")

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if isinstance(logs, dict):  # the dict later callbacks of this epoch get
            logs.update(totals_for_log())
        if self._epochs and self._steps:
            total = self._epochs * self._steps
            progress(min((epoch + 1) * self._steps, total), total, "step")
        else:
            done = epoch + 1 if self._epochs is None else min(epoch + 1, self._epochs)
            progress(done, self._epochs, "epoch")
