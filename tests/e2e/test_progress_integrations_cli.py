"""The Keras callback in a real run of carbonwrap: its reports reach the log."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from conftest import logs_in, records, run_cw

PY = sys.executable


def test_keras_callback_in_a_real_run(workdir: Path) -> None:
    """A fake `keras` package on PYTHONPATH; the script fits as Keras would; the log has the
    steps, the last one included."""
    package = workdir / "fakes" / "keras"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from keras import callbacks\n")
    (package / "callbacks.py").write_text(
        "class Callback:\n"
        "    def __init__(self):\n        self.params = {}\n"
        "    def set_params(self, params):\n        self.params = params\n"
    )
    script = textwrap.dedent(
        """
        from carbonwrap.integrations.keras import CarbonwrapProgress
        callback = CarbonwrapProgress()
        callback.set_params({"epochs": 3, "steps": 20})
        callback.on_train_begin()
        for epoch in range(3):
            callback.on_epoch_begin(epoch)
            for batch in range(20):
                callback.on_train_batch_end(batch)
            callback.on_epoch_end(epoch)
        """
    )
    from conftest import cw_env

    env = cw_env()
    env["PYTHONPATH"] = str(workdir / "fakes") + os.pathsep + env["PYTHONPATH"]
    result = run_cw("run", "-q", "--", PY, "-c", script, cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    (log,) = logs_in(workdir)
    progress = [r for r in records(log) if r["type"] == "progress"]
    assert progress[0]["unit"] == "step" and progress[0]["total"] == 60
    assert (progress[-1]["done"], progress[-1]["total"]) == (60, 60)
