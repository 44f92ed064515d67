"""Hugging Face Transformers: `Trainer(..., callbacks=[CarbonwrapProgress()])` reports
state.global_step of state.max_steps at every step and epoch end.

Whenever the Trainer logs (every logging_steps, and at the end), it also adds the run's
totals so far to those logs (carbonwrap_energy_kwh, carbonwrap_co2e_g) and to
state.log_history's newest entry (trainer_state.json). Callbacks called after it see them in
`logs`: the console printer, and report_to integrations listed after it (the Trainer puts those
given in report_to before the callbacks passed to it: add this one first with
`trainer.callback_handler.callbacks.insert(0, CarbonwrapProgress())` where they should have them).

Imports `transformers`. Every process reports; carbonwrap keeps one process's reports. Outside
carbonwrap it does nothing.
"""

import importlib
from typing import Any

from carbonwrap.report_progress import progress, totals_for_log

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

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        logged = totals_for_log()
        if not logged or not isinstance(logs, dict):
            return
        logs.update(logged)
        history = getattr(state, "log_history", None)
        # Trainer.log appends {**logs, "step": global_step} before calling on_log
        newest = history[-1] if isinstance(history, list) and history else None
        if isinstance(newest, dict) and newest.get("step") == getattr(state, "global_step", None):
            newest.update(logged)

    @staticmethod
    def _report(state: Any) -> None:
        step, total = state.global_step, state.max_steps
        if isinstance(total, int) and total > 0:
            progress(min(step, total), total, "step")
        else:
            progress(step, None, "step")
