"""The totals read-back: live/totals.py writes the run's totals so far beside the progress socket,
`report_progress.totals()` reads them, and the framework callbacks hand them to the trainer's
logger. Keras, Lightning and Transformers are not installed for the tests (each is hundreds of
MB): their callbacks are driven through their real methods on minimal fake framework modules
and fake trainer objects, as tests/unit/integrations/test_progress_integrations.py does."""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from carbonwrap import report_progress
from carbonwrap.live.totals import TotalsFile, totals_observer
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import Fold

T0 = 1_800_000_000.0


class Locked:
    """A Recorder's `locked` over a plain Fold (no thread here)."""

    def __init__(self) -> None:
        self.fold = Fold()

    def __call__(self, read: Any) -> Any:
        return read(self.fold)

    def add(self, record: dict[str, Any]) -> None:
        self.fold.add(record)


def folded() -> Locked:
    locked = Locked()
    locked.add(records.start(
        run_id="r", time_s=T0, argv=None, cwd="/", host="h", pid=1, versions={},
        cpu_accounting="x", components={"cpu": {"method": "rapl"}}, region={"code": "DE"},
        pue=1.2, interval_s=1.0, log_interval_s=10.0, job={}, tags={},
    ))  # fmt: skip
    locked.add(records.intensity(time_s=T0, elapsed_s=0, intensity_g_per_kwh=400.0, region="DE",
                                 source="t"))  # fmt: skip
    locked.add(records.sample(time_s=T0 + 10, elapsed_s=10.0, cpu_s=1.0,
                              energy_j={"cpu": 3600.0},
                              device_energy_j={"cpu": 3600.0}))  # fmt: skip
    return locked


@pytest.fixture
def totals_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "carbonwrap-r"
    directory.mkdir(mode=0o700)
    path = directory / "totals"
    monkeypatch.setenv(report_progress.TOTALS_ENV, str(path))
    monkeypatch.delenv(report_progress.ENV, raising=False)  # progress() does nothing here
    report_progress.reset()
    return path


def test_what_carbonwrap_writes_the_command_reads(totals_path: Path) -> None:
    assert report_progress.totals() is None  # before the first write
    assert report_progress.totals_for_log() == {}
    # the sampler's latest reading (20 s, 7.2 kJ) is newer than the last logged sample
    writer = TotalsFile(str(totals_path), folded(), lambda: (20.0, 7200.0))
    writer.write()
    assert writer.writes == 1 and oct(totals_path.stat().st_mode & 0o777) == "0o600"
    found = report_progress.totals()
    assert found is not None
    assert found["energy_kwh"] == pytest.approx(0.002)
    # the logged 1 Wh x 1.2 x 400 g/kWh, and the next Wh priced at the intensity in force
    assert found["co2e_g"] == pytest.approx(0.96)
    assert found["elapsed_s"] == 20.0 and found["intensity_g_per_kwh"] == 400.0
    assert report_progress.totals_for_log() == {
        "carbonwrap_energy_kwh": pytest.approx(0.002),
        "carbonwrap_co2e_g": pytest.approx(0.96),
    }
    writer.remove()
    assert not totals_path.parent.exists()  # and its directory, once empty
    assert report_progress.totals() is None


def test_the_observer_starts_at_the_first_progress_report_and_removes_at_the_end(
    totals_path: Path,
) -> None:
    locked = folded()
    observe = totals_observer(str(totals_path), locked, lambda: (10.0, 3600.0))
    observe(records.sample(time_s=T0, elapsed_s=1, cpu_s=0, energy_j={}, device_energy_j={}))
    assert not totals_path.exists()  # no progress yet: the command does not read it
    observe(records.progress(time_s=T0, elapsed_s=1, done=1, total=2, unit="epoch",
                             source="channel"))  # fmt: skip
    assert totals_path.exists()
    observe({"type": "end"})
    assert not totals_path.exists()


def test_a_reader_never_sees_part_of_a_file(totals_path: Path) -> None:
    energy = [0.0]

    def reading() -> tuple[float, float]:
        energy[0] += 1.0
        return 1.0, energy[0]

    writer = TotalsFile(str(totals_path), folded(), reading)
    writer.write()
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            writer.write()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        seen = [report_progress.totals() for _ in range(2000)]
    finally:
        stop.set()
        thread.join()
    assert all(found is not None and found["energy_j"] for found in seen)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"energy_kwh": "1"}', b" " * 5000 + b"{}", None],
)
def test_what_is_not_carbonwrap_s_reads_as_nothing(
    totals_path: Path, content: bytes | None
) -> None:
    if content is None:  # a FIFO: opening it must not block
        os.mkfifo(totals_path)
        began = time.monotonic()
        assert report_progress.totals() is None
        assert time.monotonic() - began < 1
        return
    totals_path.write_bytes(content)
    found = report_progress.totals()
    assert found is None or found == {"energy_kwh": None}
    assert report_progress.totals_for_log() == {}


def test_outside_carbonwrap_there_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report_progress.TOTALS_ENV, raising=False)
    assert report_progress.totals() is None


# The callbacks, on fake frameworks.

TOTALS = {"energy_kwh": 0.5, "co2e_g": 120.0, "elapsed_s": 60.0}
LOGGED = {"carbonwrap_energy_kwh": 0.5, "carbonwrap_co2e_g": 120.0}


@pytest.fixture
def totals_file(totals_path: Path) -> Path:
    totals_path.write_text(json.dumps(TOTALS))
    return totals_path


def fake(monkeypatch: pytest.MonkeyPatch, **modules: types.ModuleType) -> None:
    for name, mod in modules.items():
        monkeypatch.setitem(sys.modules, name.replace("__", "."), mod)
    for name in list(sys.modules):
        if name.startswith("carbonwrap.integrations."):
            monkeypatch.delitem(sys.modules, name)


def module(name: str, **attributes: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(mod, key, value)
    return mod


class KerasCallback:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}


def test_keras_puts_the_totals_in_the_epoch_logs(
    totals_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callbacks = module("keras.callbacks", Callback=KerasCallback)
    fake(monkeypatch, keras=module("keras", callbacks=callbacks))
    callback = importlib.import_module("carbonwrap.integrations.keras").CarbonwrapProgress()
    callback.params = {"epochs": 2, "steps": 3}
    callback.on_train_begin({})
    logs = {"loss": 0.25}
    callback.on_epoch_end(0, logs)  # what History and CSVLogger after it then record
    assert logs == {"loss": 0.25, **LOGGED}
    callback.on_epoch_end(1, None)  # Keras may pass no logs: nothing to add to, no failure


class LightningCallback:
    pass


class Module:
    """What a LightningModule's log_dict takes, recorded."""

    def __init__(self, fail: bool = False) -> None:
        self.logged: list[tuple[dict[str, float], dict[str, Any]]] = []
        self.fail = fail

    def log_dict(self, values: dict[str, float], **options: Any) -> None:
        if self.fail:  # as Lightning does where logging is not allowed
            raise RuntimeError("You are trying to `self.log()` but it is not managed")
        self.logged.append((dict(values), options))


def test_lightning_logs_the_totals_at_each_epoch_end(
    totals_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytorch = module("lightning.pytorch", Callback=LightningCallback)
    fake(monkeypatch, lightning=module("lightning", pytorch=pytorch), lightning__pytorch=pytorch)
    callback = importlib.import_module("carbonwrap.integrations.lightning").CarbonwrapProgress()
    trainer = types.SimpleNamespace(
        current_epoch=0, global_step=0, estimated_stepping_batches=4, max_epochs=2
    )
    callback.on_train_start(trainer, None)
    pl_module = Module()
    callback.on_train_epoch_end(trainer, pl_module)
    assert pl_module.logged == [(LOGGED, {"on_step": False, "on_epoch": True, "sync_dist": False})]
    callback.on_train_epoch_end(trainer, Module(fail=True))  # never fails the fit


def test_lightning_logs_nothing_outside_carbonwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(report_progress.TOTALS_ENV, raising=False)
    pytorch = module("lightning.pytorch", Callback=LightningCallback)
    fake(monkeypatch, lightning=module("lightning", pytorch=pytorch), lightning__pytorch=pytorch)
    callback = importlib.import_module("carbonwrap.integrations.lightning").CarbonwrapProgress()
    trainer = types.SimpleNamespace(current_epoch=0, global_step=0, max_epochs=1)
    callback.on_train_start(trainer, None)
    pl_module = Module()
    callback.on_train_epoch_end(trainer, pl_module)
    assert pl_module.logged == []


class TrainerCallback:
    pass


def test_transformers_adds_the_totals_to_the_logs_and_the_log_history(
    totals_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(monkeypatch, transformers=module("transformers", TrainerCallback=TrainerCallback))
    cls = importlib.import_module("carbonwrap.integrations.transformers").CarbonwrapProgress
    callback = cls()
    # as Trainer.log: the history entry {**logs, "step": global_step} first, then on_log(logs)
    state = types.SimpleNamespace(global_step=50, max_steps=100, log_history=[])
    logs = {"loss": 1.5, "learning_rate": 1e-4}
    state.log_history.append({**logs, "step": 50})
    callback.on_log(None, state, None, logs=logs)
    assert logs == {"loss": 1.5, "learning_rate": 1e-4, **LOGGED}
    assert state.log_history[-1] == {"loss": 1.5, "learning_rate": 1e-4, "step": 50, **LOGGED}
    older = types.SimpleNamespace(global_step=60, max_steps=100, log_history=[{"step": 50}])
    callback.on_log(None, older, None, logs={})  # the newest entry is not this log's
    assert older.log_history == [{"step": 50}]
