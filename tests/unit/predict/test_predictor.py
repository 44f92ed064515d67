"""Predictions during a run, in-process: the observer fed records directly (fake readings and
clock), the fold's view of prediction and budget records, and the poller's forecast."""

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from carbonwrap.predict import predictor
from carbonwrap.predict.predictor import Predictor
from carbonwrap.runlog import records as events
from carbonwrap.runlog.recorder import Recorder
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Run:
    """A Recorder over a real log, a predictor observing it, and a fake sampler: the tree uses
    `power_w` from the start, readings taken when asked."""

    def __init__(
        self,
        tmp_path: Path,
        power_w: float = 100.0,
        intensity: float = 200.0,
        pue: float = 1.5,
        forecast: list[tuple[float, float, float]] | None = None,
        log_interval_s: float = 10.0,
    ) -> None:
        self.clock = Clock()
        self.power_w = power_w
        self.recorder = Recorder(EventLog(str(tmp_path), "run.jsonl"))
        self.recorder(self._start(pue))
        self.recorder(
            events.intensity(
                time_s=T0, elapsed_s=0, intensity_g_per_kwh=intensity, region="DK", source="t"
            )
        )
        self.predictor = Predictor(
            self.recorder,
            lambda: (self.clock.now, self.power_w * self.clock.now),
            lambda: self.recorder.locked(Fold.so_far),
            pue,
            T0,
            log_interval_s,
            self.clock,
            (lambda: forecast) if forecast is not None else None,
            clock=self.clock,
            wall=lambda: T0 + self.clock.now,
        )
        self.heard: list[dict[str, Any]] = []
        self.predictor.listeners.append(self.heard.append)
        self.recorder.observers.append(self.predictor.observe)

    @staticmethod
    def _start(pue: float) -> dict[str, Any]:
        return events.start(
            run_id="r",
            time_s=T0,
            argv=["train"],
            cwd="/",
            host="h",
            pid=1,
            versions={},
            cpu_accounting="cgroup2",
            components={"cpu": {"method": "rapl"}},
            region={"code": "DK"},
            pue=pue,
            interval_s=1,
            log_interval_s=10,
            job={},
            tags={},
        )

    def sample(self, t: float) -> None:
        self.clock.now = t
        self.recorder(
            events.sample(
                time_s=T0 + t,
                elapsed_s=t,
                cpu_s=t,
                energy_j={"cpu": self.power_w * t},
                device_energy_j={"cpu": self.power_w * t},
            )
        )

    def progress(self, t: float, done: float, total: float | None, unit: str = "epoch") -> None:
        self.clock.now = t
        self.recorder(
            events.progress(
                time_s=T0 + t, elapsed_s=t, done=done, total=total, unit=unit, source="channel"
            )
        )

    def predictions(self) -> list[dict[str, Any]]:
        self.recorder.log.close()
        lines = (Path(self.recorder.log.path)).read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["type"] == "prediction"]


def test_epochs_give_predictions_priced_at_the_current_intensity(tmp_path: Path) -> None:
    run = Run(tmp_path)
    for epoch in range(1, 6):  # 50 s an epoch, 100 W, 10 epochs
        run.sample(50.0 * epoch - 5)
        run.progress(50.0 * epoch, epoch, 10)
    run.predictor.flush()
    found = run.predictions()
    first, last = found[0], found[-1]
    assert first["done"] == 2 and first["basis"] == "from 1 epoch"  # two reports are needed
    assert last["done"] == 5 and last["fraction"] == 0.5
    assert last["duration_s"] == pytest.approx(500)
    assert last["energy_j"] == pytest.approx(50_000)
    # 50 kJ × PUE 1.5 × 200 g/kWh
    assert last["co2e_g"] == pytest.approx(50_000 / 3.6e6 * 1.5 * 200)
    assert last["intensity_basis"] == "current" and last["intensity_g_per_kwh"] == 200
    assert last["energy_margin_j"] == pytest.approx(0, abs=1e-6)
    assert last["intervals"] == 4
    assert run.heard[-1] == last
    summary = run.recorder.fold.summary()
    assert summary.predictions["first"]["done"] == 2
    assert summary.predictions["at_50"]["fraction"] == 0.5
    assert summary.predictions["last"]["co2e_g"] == pytest.approx(last["co2e_g"])


def test_the_remaining_energy_is_priced_with_the_forecast(tmp_path: Path) -> None:
    # From 250 s on (the prediction's last report) 100 g/kWh for 100 s, then 400 g/kWh; the
    # remaining 250 s past the forecast's end: the current 200 g/kWh.
    forecast = [(T0 + 250, T0 + 350, 100.0), (T0 + 350, T0 + 450, 400.0)]
    run = Run(tmp_path, forecast=forecast)
    for epoch in range(1, 6):
        run.progress(50.0 * epoch, epoch, 10)
    run.predictor.flush()
    last = run.predictions()[-1]
    assert last["intensity_basis"] == "forecast+current"
    assert last["intensity_g_per_kwh"] == pytest.approx((100 * 100 + 100 * 400 + 50 * 200) / 250)
    so_far = 25_000 / 3.6e6 * 1.5 * 200
    rest = 25_000 / 3.6e6 * 1.5 * last["intensity_g_per_kwh"]
    assert last["co2e_g"] == pytest.approx(so_far + rest)


def test_logged_at_most_once_per_log_interval_but_milestones_and_the_last(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path, log_interval_s=100.0)
    for step in range(1, 101):  # a step every 2 s, 100 steps
        run.progress(2.0 * step, step, 100, "step")
    run.predictor.flush()
    found = run.predictions()
    done = [p["done"] for p in found]
    # The first (step 2), then every 100 s (50 steps) or at 25/50/75 %, and the last.
    assert done == [2, 25, 50, 75, 100]
    assert len(run.heard) > len(found)  # the budget hears every estimate (once a second)


def test_no_total_no_prediction_and_a_fraction_counts_to_one(tmp_path: Path) -> None:
    run = Run(tmp_path)
    for k in range(1, 5):
        run.progress(10.0 * k, k, None)
    run.predictor.flush()
    assert run.heard == []
    run = Run(tmp_path / "b")
    for k in range(1, 5):
        run.progress(10.0 * k, k / 10, None, "fraction")
    run.predictor.flush()
    assert run.heard[-1]["duration_s"] == pytest.approx(100)
    assert run.heard[-1]["basis"] == "from 30 % of the work"


def test_many_reports_are_thinned_and_stay_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictor, "MAX_POINTS", 64)
    run = Run(tmp_path, log_interval_s=1e9)
    n = 500
    for step in range(1, n + 1):
        run.progress(0.5 * step, step, 2 * n, "step")
    run.predictor.flush()
    assert len(run.predictor._points) <= 64 + 1
    assert run.heard[-1]["duration_s"] == pytest.approx(0.5 * 2 * n)
    assert run.heard[-1]["basis"].startswith("from 499 steps")


def test_bad_reports_are_ignored_and_a_failure_stops_predictions_once(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.progress(1.0, 1, 10)
    run.recorder({"type": "progress", "done": "x", "total": 10, "elapsed_s": 2})
    run.recorder({"type": "progress", "done": True, "total": 10, "elapsed_s": 2})
    warnings: list[str] = []
    run.predictor._warn = warnings.append

    def broken() -> tuple[float, float]:
        raise OSError("sensor gone")

    run.predictor._reading = broken
    run.progress(2.0, 2, 10)
    run.progress(3.0, 3, 10)
    assert warnings == ["predictions stopped: OSError('sensor gone')"]


def test_observers_run_after_the_fold_outside_the_lock(tmp_path: Path) -> None:
    """An observer may record (the predictor logs predictions) and read the fold."""
    recorder = Recorder(EventLog(str(tmp_path), "run.jsonl"))
    seen: list[tuple[str, int]] = []

    def observer(record: dict[str, Any]) -> None:
        if record["type"] == "warning" and record["message"] == "one":
            recorder(events.warning(time_s=T0, elapsed_s=0, message="two"))
        seen.append((record["message"], recorder.locked(lambda f: len(f.s.notes))))

    recorder.observers.append(observer)
    worker = threading.Thread(
        target=recorder, args=(events.warning(time_s=T0, elapsed_s=0, message="one"),)
    )
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert seen == [("two", 2), ("one", 2)]


def test_the_fold_keeps_predictions_and_budget_events_from_hostile_records() -> None:
    fold = Fold()
    fold.add({"type": "prediction", "duration_s": "x", "energy_j": 1, "co2e_g": 1})
    fold.add({"type": "budget", "event": "exceeded", "message": "before any set"})
    fold.add({"type": "budget", "event": "set", "quantity": "volts", "limit_co2e_g": 5})
    assert fold.summary().predictions == {} and fold.summary().budget is None
    for fraction in (0.2, 0.6, 0.9):
        fold.add(
            {
                "type": "prediction",
                "fraction": fraction,
                "duration_s": 10,
                "energy_j": 5,
                "co2e_g": 2,
                "intervals": True,
                "basis": ["not", "text"],
            }
        )
    kept = fold.summary().predictions
    assert [kept[k]["fraction"] for k in ("first", "at_50", "last")] == [0.2, 0.6, 0.9]
    assert kept["last"]["intervals"] is None and kept["last"]["basis"] == "['not', 'text']"
    fold.add(
        events.budget(
            time_s=T0,
            elapsed_s=1,
            event="set",
            limit="500 g",
            quantity="co2e",
            limit_co2e_g=500.0,
            on_exceed="stop",
            grace_s=10.0,
        )
    )
    for _ in range(20):
        fold.add(
            events.budget(
                time_s=T0,
                elapsed_s=2,
                event="exceeded",
                basis="actual",
                co2e_g=503.0,
                fraction=None,
                action="stop",
                message="m",
            )
        )
    budget = fold.summary().budget
    assert budget is not None
    assert budget["limit_value"] == 500.0 and budget["on_exceed"] == "stop"
    assert len(budget["events"]) == 8 and budget["events"][0]["value"] == 503.0


def test_the_first_unit_with_a_total_is_followed(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.progress(1.0, 100, None, "step")  # no total: nothing to predict from
    for epoch in range(1, 6):
        run.progress(50.0 * epoch, epoch, 10)
        run.progress(50.0 * epoch + 10, 1, 5, "batch")  # an evaluation after each epoch
        run.progress(50.0 * epoch + 20, 5, 5, "batch")
    run.predictor.flush()
    last = run.heard[-1]
    assert last["unit"] == "epoch" and last["done"] == 5
    assert last["duration_s"] == pytest.approx(500)


def test_the_live_line_part() -> None:
    from carbonwrap.render.live import LiveState, live_lines
    from carbonwrap.render.prediction import live_text

    p = {"energy_j": 2.3 * 3.6e6, "co2e_g": 410.0, "fraction": 0.34}
    budget: dict[str, Any] = {"limit": "500 g", "events": []}
    assert live_text(p, None) == "→ predicted 2.30 kWh, 410 g at 34 %"
    assert live_text(p, budget) == "→ predicted 2.30 kWh, 410 g at 34 % (budget 500 g)"
    assert live_text(None, budget) == "(budget 500 g)"
    budget["events"] = [{"event": "exceeded", "action": "stop"}]
    assert live_text(None, budget) == "(budget 500 g exceeded: stopping)"
    budget["events"] = [{"event": "exceeded", "action": "warn"}]
    assert live_text(None, budget) == "(budget 500 g exceeded)"
    assert live_text(None, None) is None
    state = LiveState(
        60.0, 50.0, [("CPU", 10.0, 600.0, "rapl")], 200.0, "t", 140.0, live_text(p, None)
    )
    head = live_lines(state, 120, color=False)[0]
    assert "140 g CO2e → predicted 2.30 kWh, 410 g at 34 %" in head


class ForecastProvider:
    """A provider whose latest value never changes and whose forecast is `answers`' next."""

    name = "fake"
    resolution_s = 300.0
    signal = "average"

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.asked = 0

    async def latest(self, session: Any) -> Any:
        from carbonwrap.intensity.points import LATEST, IntensityPoint

        return IntensityPoint(T0, T0 + 300, 120.0, LATEST, "average", "fake:X")

    async def history(self, session: Any, start_s: float, end_s: float) -> list[Any]:
        return []

    async def forecast(self, session: Any) -> list[Any]:
        from carbonwrap.intensity.points import ProviderError

        self.asked += 1
        answer = self.answers[min(self.asked, len(self.answers)) - 1]
        if isinstance(answer, ProviderError):
            raise answer
        return list(answer)


@pytest.mark.parametrize("fails", [False, True])
def test_the_poller_fetches_the_forecast_once_predictions_want_it(fails: bool) -> None:
    import time

    from carbonwrap.intensity.points import FORECAST, STATIC, IntensityPoint, ProviderError
    from carbonwrap.intensity.poller import IntensityPoller

    ahead = [IntensityPoint(T0 + 300, T0 + 600, 80.0, FORECAST, "average", "fake:X")]
    answer: Any = (
        ProviderError("HTTP 403 (the forecast is not in the free plan)") if fails else ahead
    )
    provider = ForecastProvider([answer])
    warnings: list[str] = []
    static = IntensityPoint(0.0, float("inf"), 150.0, STATIC, "average", "table")
    poller = IntensityPoller(
        lambda: provider, "fake", static, "X", lambda r: None, warnings.append, T0, 0.0
    )
    poller.start()
    try:
        time.sleep(0.2)
        assert provider.asked == 0  # nobody wants it yet
        poller.want_forecast()
        poller.want_forecast()  # idempotent
        deadline = time.monotonic() + 20
        while provider.asked == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        assert provider.asked == 1  # once; again after FORECAST_EVERY_S
        if fails:
            assert poller.forecast() == []
            assert warnings == [
                "fake forecast: HTTP 403 (the forecast is not in the free plan); predictions "
                "price the remaining energy at the intensity in force"
            ]
        else:
            assert poller.forecast() == ahead and warnings == []
    finally:
        poller.stop(budget_s=0.3)


def test_the_live_feed_shows_the_latest_logged_prediction_and_the_budget(tmp_path: Path) -> None:
    from carbonwrap.live.feed import LiveFeed
    from carbonwrap.measure.sampler import Totals

    run = Run(tmp_path)
    feed = LiveFeed(
        lambda: Totals(1.0, 1.0, {"cpu": 100.0}, {"cpu": 100.0}),
        run.recorder.locked,
        {"cpu": {"method": "rapl"}},
    )
    assert feed().prediction is None
    run.recorder(
        events.budget(
            time_s=T0,
            elapsed_s=0,
            event="set",
            limit="5 kJ",
            quantity="energy",
            limit_energy_j=5000.0,
            on_exceed="warn",
            grace_s=10.0,
        )
    )
    assert feed().prediction == "(budget 5 kJ)"
    for epoch in range(1, 4):
        run.progress(50.0 * epoch, epoch, 10)
    # 10 epochs of 50 s at 100 W: 50 kJ; × PUE 1.5 × 200 g/kWh; 500 s, 1 s of it gone. No
    # margin: the epochs took the same time and energy (±0 %, not claimed).
    assert feed().prediction == "→ predicted 13.9 Wh, 4.17 g at 30 %, ETA 8 min 19 s (budget 5 kJ)"
