"""The framework callbacks (carbonwrap/integrations/), driven through their real methods against
minimal fake framework modules (Keras, Lightning, Transformers are not installed for the tests),
with the reports read from a real channel."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from carbonwrap import report_progress
from carbonwrap.predict.channel import ProgressChannel


class Channel:
    """A real channel that logs every report (interval 0)."""

    def __init__(self, root: str) -> None:
        self.logged: list[tuple[Any, ...]] = []
        self.channel = ProgressChannel(root, os.urandom(4).hex(), self._log, 0.0)
        self.channel.start()

    def _log(self, done: Any, total: Any, unit: str, source: str, at_s: float) -> None:
        self.logged.append((done, total, unit))

    def call(self, method: Callable[..., Any], *args: Any, reports: int = 1, **kw: Any) -> None:
        """Call a callback method; wait until the `reports` it sends have been read."""
        before = self.channel.limiter.reports + self.channel.bad
        method(*args, **kw)
        deadline = time.monotonic() + 20
        while self.channel.limiter.reports + self.channel.bad < before + reports:
            assert time.monotonic() < deadline, f"{method.__name__}: no report"
            time.sleep(0.002)

    def close(self) -> None:
        self.channel.close(lambda message: None)
        assert self.channel.bad == 0


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    root = tempfile.mkdtemp(prefix="cwi-", dir="/tmp")
    ch = Channel(root)
    monkeypatch.setenv("CARBONWRAP_PROGRESS", ch.channel.path)
    report_progress.reset()
    yield ch
    ch.close()
    report_progress.reset()
    shutil.rmtree(root, ignore_errors=True)


def fake_modules(monkeypatch: pytest.MonkeyPatch, **modules: Any) -> None:
    """Put fake modules in sys.modules (None: the import fails) and forget our integrations, so
    that they are imported again on top of the fakes."""
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name.replace("__", "."), module)
    for name in list(sys.modules):
        if name.startswith("carbonwrap.integrations."):
            monkeypatch.delitem(sys.modules, name)


def module(name: str, **attributes: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(mod, key, value)
    return mod


class KerasCallback:
    """What keras.callbacks.Callback gives a subclass: params, set by fit."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.model = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params


def fake_keras(monkeypatch: pytest.MonkeyPatch, via_tensorflow: bool = False) -> type[Any]:
    callbacks = module("keras.callbacks", Callback=KerasCallback)
    if via_tensorflow:
        tf_keras = module("tensorflow.keras", callbacks=callbacks)
        fake_modules(
            monkeypatch,
            keras=None,
            tensorflow=module("tensorflow", keras=tf_keras),
            tensorflow__keras=tf_keras,
        )
    else:
        fake_modules(monkeypatch, keras=module("keras", callbacks=callbacks))
    cls: type[Any] = importlib.import_module("carbonwrap.integrations.keras").CarbonwrapProgress
    assert issubclass(cls, KerasCallback)
    return cls


def fit_keras(channel: Channel, callback: Any, epochs: int, steps: int | None) -> None:
    """What Keras's fit calls, in order."""
    callback.set_params({"epochs": epochs, "steps": steps, "verbose": 1})
    channel.call(callback.on_train_begin, {})
    for epoch in range(epochs):
        callback.on_epoch_begin(epoch, {})
        for batch in range(steps or 4):
            channel.call(
                callback.on_train_batch_end, batch, {"loss": 0.1}, reports=int(bool(steps))
            )
        channel.call(callback.on_epoch_end, epoch, {"loss": 0.1})


@pytest.mark.parametrize("via_tensorflow", [False, True])
def test_keras_reports_steps_of_the_whole_fit(
    channel: Channel, monkeypatch: pytest.MonkeyPatch, via_tensorflow: bool
) -> None:
    callback = fake_keras(monkeypatch, via_tensorflow)()
    fit_keras(channel, callback, epochs=2, steps=3)
    channel.close()
    assert channel.logged == [(step, 6, "step") for step in range(7)]


def test_keras_reports_epochs_when_steps_are_unknown(
    channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = fake_keras(monkeypatch)()
    fit_keras(channel, callback, epochs=3, steps=None)
    channel.close()
    assert channel.logged == [(epoch, 3, "epoch") for epoch in range(4)]


class LightningCallback:
    pass


def trainer(**state: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(current_epoch=0, global_step=0, **state)


def fake_lightning(monkeypatch: pytest.MonkeyPatch, old_name: bool = False) -> type[Any]:
    pytorch = module("lightning.pytorch", Callback=LightningCallback)
    if old_name:
        fake_modules(
            monkeypatch,
            lightning=None,
            lightning__pytorch=None,
            pytorch_lightning=module("pytorch_lightning", Callback=LightningCallback),
        )
    else:
        fake_modules(
            monkeypatch, lightning=module("lightning", pytorch=pytorch), lightning__pytorch=pytorch
        )
    cls: type[Any] = importlib.import_module("carbonwrap.integrations.lightning").CarbonwrapProgress
    assert issubclass(cls, LightningCallback)
    return cls


@pytest.mark.parametrize("old_name", [False, True])
def test_lightning_reports_optimizer_steps(
    channel: Channel, monkeypatch: pytest.MonkeyPatch, old_name: bool
) -> None:
    callback = fake_lightning(monkeypatch, old_name)()
    tr = trainer(estimated_stepping_batches=4, max_epochs=2)  # 4 batches, accumulate 2
    channel.call(callback.on_train_start, tr, None)
    for epoch in range(2):
        tr.current_epoch = epoch
        for batch in range(4):
            stepped = batch % 2 == 1
            tr.global_step += stepped
            channel.call(callback.on_train_batch_end, tr, None, None, None, batch, reports=stepped)
        callback.on_train_epoch_end(tr, None)  # the same step again: not sent
    channel.close()
    assert channel.logged == [(step, 4, "step") for step in range(5)]


@pytest.mark.parametrize(
    ("estimate", "max_epochs", "total"),
    [(float("inf"), 3, 3), (RuntimeError("no length"), 3, 3), (float("inf"), -1, None)],
)
def test_lightning_reports_epochs_without_a_step_estimate(
    channel: Channel, monkeypatch: pytest.MonkeyPatch, estimate: Any, max_epochs: int, total: Any
) -> None:
    class Trainer(types.SimpleNamespace):
        @property
        def estimated_stepping_batches(self) -> float:
            if isinstance(estimate, Exception):
                raise estimate
            return float(estimate)

    callback = fake_lightning(monkeypatch)()
    tr = Trainer(current_epoch=0, global_step=0, max_epochs=max_epochs)
    channel.call(callback.on_train_start, tr, None)
    for epoch in range(3):
        tr.current_epoch = epoch
        tr.global_step += 10
        callback.on_train_batch_end(tr, None, None, None, 0)  # nothing: epochs it is
        channel.call(callback.on_train_epoch_end, tr, None)
    channel.close()
    assert channel.logged == [(epoch, total, "epoch") for epoch in range(4)]


class TrainerCallback:
    pass


def fake_transformers(monkeypatch: pytest.MonkeyPatch) -> type[Any]:
    fake_modules(monkeypatch, transformers=module("transformers", TrainerCallback=TrainerCallback))
    mod = importlib.import_module("carbonwrap.integrations.transformers")
    cls: type[Any] = mod.CarbonwrapProgress
    assert issubclass(cls, TrainerCallback)
    return cls


@pytest.mark.parametrize(("max_steps", "total"), [(5, 5), (0, None)])
def test_transformers_reports_global_steps(
    channel: Channel, monkeypatch: pytest.MonkeyPatch, max_steps: int, total: Any
) -> None:
    callback = fake_transformers(monkeypatch)()
    state = types.SimpleNamespace(global_step=0, max_steps=max_steps, epoch=0.0)
    args = control = object()
    assert callback.on_train_begin(args, state, control, model=None) is None
    for _ in range(5):
        state.global_step += 1
        channel.call(callback.on_step_end, args, state, control, model=None)
    channel.call(callback.on_epoch_end, args, state, control)
    channel.call(callback.on_train_end, args, state, control)
    channel.close()
    assert channel.logged == [(step, total, "step") for step in range(6)]


def test_callbacks_are_silent_without_carbonwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBONWRAP_PROGRESS", raising=False)
    report_progress.reset()
    callback = fake_transformers(monkeypatch)()
    state = types.SimpleNamespace(global_step=3, max_steps=5)
    callback.on_step_end(None, state, None)
    assert report_progress._off and report_progress._sock is None
    report_progress.reset()
