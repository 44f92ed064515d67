"""Hugging Face Transformers: `Trainer(..., callbacks=[CarbonwrapProgress()])` reports
state.global_step of state.max_steps at every step and epoch end.

Imports `transformers`. Every process reports; carbonwrap keeps one process's reports. Outside
carbonwrap it does nothing.
"""

import importlib
from typing import Any

from carbonwrap.report_progress import progress

_TrainerCallback: Any = importlib.import_module("transformers").TrainerCallback


class CarbonwrapProgress(_TrainerCallback):  # type: ignore[misc]
    """Reports optimizer steps to carbonwrap (total unknown when max_steps is not set)."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._report(state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._report(state)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._report(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._report(state)

    @staticmethod
    def _report(state: Any) -> None:
        step, total = state.global_step, state.max_steps
        if isinstance(total, int) and total > 0:
            progress(min(step, total), total, "step")
        else:
            progress(step, None, "step")
