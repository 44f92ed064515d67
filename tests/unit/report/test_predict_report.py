"""Prediction and budget records in `carbonwrap report`: the fast reading (most samples never
parsed) folds them as a fold of every record does."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prediction_log import T0, budget, prediction, start, write

from carbonwrap.report.read import fold_every_record, summarize_log
from carbonwrap.runlog import records as events

_step = st.one_of(
    st.tuples(st.just("sample"), st.floats(0, 500), st.floats(1, 100)),
    st.tuples(st.just("intensity"), st.floats(0, 900), st.just(0.0)),
    st.tuples(st.just("prediction"), st.floats(0, 1), st.floats(0, 1e5)),
    st.tuples(st.just("budget"), st.just(0.0), st.just(0.0)),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, max_size=40), ended=st.booleans())
def test_the_fast_reading_folds_predictions_and_budgets_as_a_full_fold(
    tmp_path: Path, steps: list[tuple[str, float, float]], ended: bool
) -> None:
    lines = [start(), budget(0, "set")]
    t = energy = 0.0
    for kind, a, b in steps:
        if kind == "sample":
            t += b
            energy += a
            lines.append(
                events.sample(
                    time_s=T0 + t,
                    elapsed_s=t,
                    cpu_s=t,
                    energy_j={"cpu": energy},
                    device_energy_j={"cpu": energy},
                )
            )
        elif kind == "intensity":
            lines.append(
                events.intensity(
                    time_s=T0 + t,
                    elapsed_s=t,
                    intensity_g_per_kwh=round(a, 3),
                    region="DK",
                    source="latest",
                    kind="latest",
                )
            )
        elif kind == "prediction":
            lines.append(prediction(t, a, b))
        else:
            lines.append(budget(t, "exceeded"))
    if ended:
        end = events.end(
            time_s=T0 + t + 1,
            elapsed_s=t + 1,
            exit_code=0,
            signal=None,
            cpu_s=t,
            energy_j={"cpu": energy + 1},
            device_energy_j={"cpu": energy + 1},
            leftover_pids=[],
            signals_received=[],
            stopped="budget 1 kJ exceeded (actual 1001 J at 1 min 40 s)",
        )
        lines.append(end)
    path = tmp_path / "log.jsonl"
    path.unlink(missing_ok=True)
    write(path, lines)
    fast, full = summarize_log(path), fold_every_record(path)
    assert fast is not None and full is not None
    assert fast.predictions == full.predictions
    assert fast.budget == full.budget and fast.stopped == full.stopped
    assert fast.energy_j == full.energy_j
