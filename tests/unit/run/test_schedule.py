"""Carbon-aware start, in process: durations, the window planner (synthetic series with known
answers, a brute-force cross-check, the recorded GB/DK/Electricity Maps responses), the record
and its words, the wait with an injected clock, and the forecast fetch against a local server."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Any

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from intensity_server import FIXTURES, RecordedServer, probe_while_serving

from carbonwrap.intensity.points import AVERAGE, FORECAST, IntensityPoint, ProviderError
from carbonwrap.intensity.providers.electricitymaps import ElectricityMaps
from carbonwrap.intensity.providers.electricitymaps import parse_forecast as em_forecast
from carbonwrap.intensity.providers.energidataservice import EnergiDataService, parse_records
from carbonwrap.intensity.providers.ukgrid import UkGrid, parse_national, parse_regional
from carbonwrap.intensity.window import best_window, steps
from carbonwrap.quantities import format_duration, parse_duration_s
from carbonwrap.render.schedule import announce, report_line
from carbonwrap.run.schedule import Forecast, decide, fetch_forecast, wait_until

H = 3600.0
M = 60.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, on the hour


def series(start_s: float, step_s: float, values: list[float]) -> list[IntensityPoint]:
    return [
        IntensityPoint(start_s + i * step_s, start_s + (i + 1) * step_s, v, FORECAST, AVERAGE, "t")
        for i, v in enumerate(values)
    ]


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8h", 8 * H), ("90m", 90 * M), ("1h30m", 90 * M), ("3600s", H), ("2d", 2 * 86400),
     ("1.5h", 90 * M), ("2d 4h", 52 * H), ("1H", H), (".5h", 30 * M), ("0", 0), (" 45s ", 45),
     ("0h", 0)],
)  # fmt: skip
def test_durations_people_write(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("value", "why"),
    [("8", "needs a unit"), (8, "needs a unit"), ("8x", "not a duration"), ("", "not a duration"),
     ("h", "not a duration"), ("30m1h", "not a duration"), ("1h1h", "not a duration"),
     ("-1h", "not a duration"), ("nan", "not a duration"), ("inf", "not a duration"),
     (True, "not a duration"), (None, "not a duration"), ("1h\n2", "not a duration")],
)  # fmt: skip
def test_durations_refused_in_one_line(value: object, why: str) -> None:
    with pytest.raises(ValueError, match=why) as info:
        parse_duration_s(value)
    assert "\n" not in str(info.value)


def test_duration_limits_name_the_bound() -> None:
    with pytest.raises(ValueError, match="at most 7d"):
        parse_duration_s("8d", 0, 7 * 86400)
    with pytest.raises(ValueError, match="at least 1s"):
        parse_duration_s("0", 1, 10)
    assert parse_duration_s(0, 0, 10) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(28800, "8h"), (5400, "1h30m"), (90061, "1d1h1m1s"), (0.25, "0.25s"), (0, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration_s(text) == seconds


# -- the planner: known answers -------------------------------------------------------------


def test_the_lowest_window_is_found_where_its_points_are() -> None:
    points = series(T0, 30 * M, [300, 300, 100, 100, 300, 300, 300, 300])
    w = best_window(points, T0, 3 * H, 1 * H)
    assert w is not None
    assert (w.start_s, w.mean_g_per_kwh, w.now_g_per_kwh) == (T0 + H, 100, 300)
    assert w.saving_pct == pytest.approx(100 * 200 / 300)
    assert not w.cut and w.latest_start_s == T0 + 3 * H


def test_the_best_start_can_fall_between_boundaries() -> None:
    # 100, 50, 500 for 30 min each, a 45-minute run: starting at 15 min takes 15 of 100 and
    # all 30 of 50 (66.7); on a boundary it would be 83.3 (0 min) or 200 (30 min).
    points = series(T0, 30 * M, [100, 50, 500, 500])
    w = best_window(points, T0, 60 * M, 45 * M)
    assert w is not None
    assert w.start_s == T0 + 15 * M
    assert w.mean_g_per_kwh == pytest.approx((15 * 100 + 30 * 50) / 45)


def test_now_mid_slot_and_time_weighting() -> None:
    points = series(T0, 30 * M, [200, 100, 400])
    now = T0 + 10 * M  # 20 min of 200 left
    w = best_window(points, now, 30 * M, 30 * M)
    assert w is not None
    assert w.now_g_per_kwh == pytest.approx((20 * 200 + 10 * 100) / 30)
    assert (w.start_s, w.mean_g_per_kwh) == (T0 + 30 * M, 100)


def test_ties_go_to_the_earliest_start() -> None:
    flat = series(T0, 30 * M, [150] * 10)
    w = best_window(flat, T0 + 7, 3 * H, 1 * H)
    assert w is not None and w.start_s == T0 + 7 and w.saving_pct == 0
    two_dips = series(T0, 30 * M, [300, 100, 300, 300, 100, 300, 300])
    w = best_window(two_dips, T0, 3 * H, 30 * M)
    assert w is not None and w.start_s == T0 + 30 * M


def test_the_horizon_is_an_upper_bound_on_the_start() -> None:
    points = series(T0, 30 * M, [300, 300, 250, 250, 50, 50])
    w = best_window(points, T0, 1 * H, 30 * M)  # the dip at 2 h is out of reach
    assert w is not None and w.start_s == T0 + H and w.mean_g_per_kwh == 250
    w = best_window(points, T0, 0, 30 * M)
    assert w is not None and w.start_s == T0


def test_a_short_forecast_cuts_the_latest_start() -> None:
    points = series(T0, 30 * M, [300, 200, 100])  # ends at T0 + 90 min
    w = best_window(points, T0, 8 * H, 1 * H)
    assert w is not None and w.cut
    assert w.latest_start_s == T0 + 30 * M and w.forecast_end_s == T0 + 90 * M
    assert (w.start_s, w.mean_g_per_kwh) == (T0 + 30 * M, 150)


def test_a_forecast_shorter_than_the_run_gives_no_window() -> None:
    assert best_window(series(T0, 30 * M, [100, 100]), T0, 8 * H, 2 * H) is None
    assert best_window([], T0, H, H) is None


def test_gaps_keep_the_value_before_them_and_overlaps_the_earlier_start() -> None:
    gap = [*series(T0, 30 * M, [100]), *series(T0 + H, 30 * M, [400])]  # nothing 30..60 min
    fn = steps(gap, T0)
    assert fn is not None and fn.mean(T0, T0 + H) == 100  # the gap holds 100
    assert fn.mean(T0 + 30 * M, T0 + 90 * M) == 250
    overlap = [*series(T0, H, [100]), *series(T0 + 30 * M, H, [400])]
    fn = steps(list(reversed(overlap)), T0)  # order does not matter
    assert fn is not None and fn.mean(T0, T0 + H) == 100 and fn.mean(T0 + H, T0 + 90 * M) == 400


def test_a_forecast_that_starts_later_holds_its_first_value_from_now() -> None:
    points = series(T0 + 40 * M, H, [200, 100])
    w = best_window(points, T0, 2 * H, H)
    assert w is not None and w.now_g_per_kwh == 200 and w.start_s == T0 + 100 * M


def test_bad_arguments_and_unusable_points() -> None:
    with pytest.raises(ValueError):
        best_window(series(T0, H, [1]), T0, H, 0)
    nan = [IntensityPoint(T0, T0 + H, math.nan, FORECAST, AVERAGE, "t")]
    empty = [IntensityPoint(T0, T0, 5, FORECAST, AVERAGE, "t")]
    assert best_window(nan, T0, H, H) is None and best_window(empty, T0, H, H) is None


def brute_force(points: list[IntensityPoint], now: int, within: int, duration: int) -> Any:
    """Minimum over every whole-second start of the per-second mean: independent of the
    planner's arithmetic (exact when all boundaries and `now` are whole seconds)."""
    end = int(max(p.end_s for p in points))
    first = int(min(p.start_s for p in points))
    per_s: list[float] = []
    for t in range(min(now, first), end):
        covering = [p for p in points if p.start_s <= t < p.end_s]
        if covering:
            value = min(covering, key=lambda p: p.start_s).intensity_g_per_kwh
        elif per_s:
            value = per_s[-1]
        else:
            value = min(points, key=lambda p: p.start_s).intensity_g_per_kwh
        per_s.append(value)
    offset = min(now, first)
    prefix = [0.0]
    for v in per_s:
        prefix.append(prefix[-1] + v)
    latest = min(now + within, end - duration)
    if latest < now:
        return None
    means = [
        ((prefix[t - offset + duration] - prefix[t - offset]) / duration, t)
        for t in range(now, latest + 1)
    ]
    best = min(m for m, _ in means)
    return best, min(t for m, t in means if m <= best + 1e-6)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.integers(0, 900), min_size=1, max_size=12),
    steps_s=st.lists(st.integers(1, 40), min_size=12, max_size=12),
    gaps_s=st.lists(st.integers(0, 6), min_size=12, max_size=12),
    now_offset=st.integers(0, 50),
    within=st.integers(0, 200),
    duration=st.integers(1, 90),
)
def test_the_planner_agrees_with_brute_force(
    values: list[int],
    steps_s: list[int],
    gaps_s: list[int],
    now_offset: int,
    within: int,
    duration: int,
) -> None:
    points, t = [], 1000
    for value, step, gap in zip(values, steps_s, gaps_s, strict=False):
        points.append(IntensityPoint(t, t + step, value, FORECAST, AVERAGE, "t"))
        t += step + gap
    now = 1000 + now_offset
    w = best_window(points, now, within, duration)
    expected = brute_force(points, now, within, duration)
    if expected is None:
        assert w is None
        return
    assert w is not None
    assert w.mean_g_per_kwh == pytest.approx(expected[0], abs=1e-6)
    assert w.start_s <= expected[1]  # the earliest best start (it may lie off the grid)
    assert w.now_g_per_kwh >= w.mean_g_per_kwh


# -- the planner on recorded responses -----------------------------------------------------


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _iso_s(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_recorded_gb_national_24h() -> None:
    points = parse_national(_fixture("ukci_intensity_fw24h_fixture.json"), "ukgrid:national")
    now = int(_iso_s("2017-10-01T11:40Z"))
    w = best_window(points, now, 8 * 3600, 2 * 3600)
    assert w is not None and not w.cut
    expected = brute_force(points, now, 8 * 3600, 2 * 3600)
    assert (w.start_s, w.mean_g_per_kwh) == (expected[1], pytest.approx(expected[0]))
    # Falling all evening: the latest start, 19:40 (20 min of 147, then 143, 130, 132, 121).
    assert w.start_s == _iso_s("2017-10-01T19:40Z")
    assert w.mean_g_per_kwh == pytest.approx((20 * 147 + 30 * (143 + 130 + 132) + 10 * 121) / 120)
    w = best_window(points, now, 12 * 3600, 2 * 3600)
    assert w is not None
    expected = brute_force(points, now, 12 * 3600, 2 * 3600)
    assert (w.start_s, w.mean_g_per_kwh) == (expected[1], pytest.approx(expected[0]))
    # Within 12 h the night is in reach: 23:00-01:00 (81, 73, 84, 89), read off the file.
    assert w.start_s == _iso_s("2017-10-01T23:00Z")
    assert w.mean_g_per_kwh == pytest.approx((81 + 73 + 84 + 89) / 4)
    assert w.now_g_per_kwh == pytest.approx((20 * 143 + 30 * (140 + 140 + 140) + 10 * 143) / 120)


def test_recorded_gb_regional_48h_postcode() -> None:
    doc = _fixture("ukci_regional_intensity_fw48h_postcode_fixture.json")
    points = parse_regional(doc, "ukgrid:BH1")
    now = int(_iso_s("2020-05-19T20:05Z"))
    w = best_window(points, now, 22 * 3600, 3 * 3600)
    assert w is not None
    expected = brute_force(points, now, 22 * 3600, 3 * 3600)
    assert (w.start_s, w.mean_g_per_kwh) == (expected[1], pytest.approx(expected[0]))
    assert w.cut  # the file ends 20:00 the next day: starts after 17:00 unknown
    assert w.latest_start_s == _iso_s("2020-05-20T17:00Z")


def test_recorded_dk_and_electricitymaps() -> None:
    doc = _fixture("energidataservice_co2emis.json")
    dk = parse_records(doc, "CO2Emis", "DK1", FORECAST, "energidataservice:DK1")
    now = _iso_s("2023-01-01T22:50:00Z")
    w = best_window(dk, now, 5 * 60, 5 * 60)
    assert w is not None and (w.start_s, w.mean_g_per_kwh, w.now_g_per_kwh) == (now, 67, 67)
    em = em_forecast(_fixture("electricitymaps_carbon_intensity_forecast.json"), "em:NL")
    now = _iso_s("2099-01-01T00:00:00Z")
    w = best_window(em, now, 30 * 60, 30 * 60)
    assert w is not None and (w.start_s, w.mean_g_per_kwh) == (now, 999)  # one hour, flat
    assert best_window(em, now, 8 * 3600, 2 * 3600) is None  # shorter than the run


# -- the record and its words ----------------------------------------------------------------


def test_a_later_start_is_announced_with_the_saving() -> None:
    points = series(T0, 30 * M, [212, 212, 212, 212, 98, 98, 98, 98, 300])
    record = decide(Forecast(points, "ukgrid:national"), 8 * H, 2 * H, T0 - 48 * M, "GB")
    assert record["chosen_start"] == "2027-01-15T10:00:00.000Z"
    assert record["saving_pct"] == pytest.approx(100 * (212 - 98) / 212, abs=1e-3)
    lines = announce(record)
    assert lines == [
        "carbonwrap: starting at 10:00 UTC (in 2 h 48 min): forecast 98 g/kWh over the "
        "2h run vs 212 g/kWh if started now (−54 %); GB Carbon Intensity API forecast "
        "(ukgrid:national)",
        "carbonwrap: waiting; Ctrl-C or SIGTERM cancels and the command does not run; the "
        "forecast ends 12:30 UTC, so no start after 10:30 UTC was considered",
    ]
    record["waited_s"] = 2 * H + 48 * M
    assert report_line(record) == (
        "waited 2 h 48 min for 10:00 UTC (within 8h): forecast 98 g/kWh over the 2h run "
        "vs 212 g/kWh at once (−54 %); GB Carbon Intensity API forecast (ukgrid:national)"
    )


def test_start_now_and_no_forecast_in_words() -> None:
    points = series(T0, H, [100, 200, 300, 400])
    record = decide(Forecast(points, "energidataservice:DK1"), H, H, T0, "DK")
    assert record["chosen_start"] == record["decided_at"] and record["saving_pct"] == 0
    [line] = announce(record)
    assert line.startswith("carbonwrap: starting now: no start within 1h has a lower forecast ")
    assert "100 g/kWh over the 1h run" in line and "(energidataservice:DK1)" in line
    assert report_line(record).startswith("at once, the lowest forecast within 1h")
    down = decide("ukgrid: cannot connect", 8 * H, 2 * H, T0, "GB")
    assert announce(down) == [
        "carbonwrap: no intensity forecast for region GB (ukgrid: cannot connect); starting now"
    ]
    assert "no intensity forecast for region GB" in report_line(down)
    short = decide(Forecast(series(T0, H, [1]), "electricitymaps:DE"), 8 * H, 2 * H, T0, "DE")
    assert short["reason"].startswith("electricitymaps:DE: the forecast ends 2027-01-15 09:00 UTC")
    assert "starting now" in announce(short)[0]


def test_other_days_and_seconds_are_shown() -> None:
    points = series(T0 + 4, 2, [300] * 3 + [100] * 2 + [300] * 3)
    record = decide(Forecast(points, "ukgrid:national"), 20, 4, T0 + 3.5, "GB")
    assert "starting at 08:00:10 UTC (in 6.5 s)" in announce(record)[0]
    late = series(T0 + 20 * H, H, [300, 100, 300])
    record = decide(Forecast(late, "ukgrid:national"), 2 * 86400, H, T0, "GB")
    assert "starting at 2027-01-16 05:00 UTC (in 21 h 00 min)" in announce(record)[0]


@pytest.mark.parametrize(
    "hostile",
    [{"waited_s": "x", "saving_pct": 10**400, "chosen_start": 5, "decided_at": None},
     {"expected_duration_s": -1, "cut": True, "forecast_until": "bad", "source": 7},
     {"reason": "", "region": ["GB"], "now_g_per_kwh": float("inf")}, {}],
)  # fmt: skip
def test_the_words_survive_any_record(hostile: dict[str, Any]) -> None:
    assert announce(hostile) and isinstance(report_line(hostile), str)


# -- waiting with an injected clock -----------------------------------------------------------


class FakeClock:
    def __init__(self, start_s: float, drift: float = 1.0) -> None:
        self.t = start_s
        self.drift = drift  # wall seconds that pass per second slept
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds * self.drift


def test_wait_until_sleeps_in_bounded_steps_to_the_target() -> None:
    clock = FakeClock(T0)
    wait_until(T0 + 150.5, clock.now, clock.sleep)
    assert clock.sleeps == [60, 60, 30.5] and clock.t == T0 + 150.5
    clock = FakeClock(T0)
    wait_until(T0 - 5, clock.now, clock.sleep)
    assert clock.sleeps == []


def test_wait_until_follows_the_wall_clock_when_it_is_set_back() -> None:
    clock = FakeClock(T0, drift=0.5)  # the wall clock advances half as fast as sleep asks
    wait_until(T0 + 100, clock.now, clock.sleep)
    assert clock.t >= T0 + 100 and len(clock.sleeps) > 2


def test_a_real_short_wait_ends_on_time() -> None:
    target = time.time() + 0.3
    wait_until(target)
    assert time.time() >= target


# -- fetching forecasts from a real local server ---------------------------------------------


def _stamp(epoch_s: float, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    return time.strftime(fmt, time.gmtime(epoch_s))


def test_fetch_gb_national_forecast() -> None:
    now = time.time()
    base = math.floor(now / 1800) * 1800
    doc = {"data": [{"from": _stamp(base + i * 1800, "%Y-%m-%dT%H:%MZ"),
                     "to": _stamp(base + (i + 1) * 1800, "%Y-%m-%dT%H:%MZ"),
                     "intensity": {"forecast": 200 - i, "actual": None, "index": "low"}}
                    for i in range(8)]}  # fmt: skip

    def setup(server: RecordedServer) -> None:
        server.route("/intensity/*", json_body=doc)

    forecast, requests = probe_while_serving(
        setup, lambda url: fetch_forecast(lambda: UkGrid(base=url))
    )
    assert forecast.source == "ukgrid:national" and len(forecast.points) == 8
    assert requests[0].path.endswith("/fw48h")


def test_fetch_dk_forecast() -> None:
    now = time.time()
    base = math.floor(now / 300) * 300
    records = [{"Minutes5UTC": _stamp(base + i * 300, "%Y-%m-%dT%H:%M:%S"), "PriceArea": "DK1",
                "CO2Emission": 100 + i} for i in range(24)]  # fmt: skip
    doc = {"total": 24, "dataset": "CO2EmisProg", "records": records}

    def setup(server: RecordedServer) -> None:
        server.route("/dataset/CO2EmisProg", json_body=doc)

    forecast, requests = probe_while_serving(
        setup, lambda url: fetch_forecast(lambda: EnergiDataService("DK1", base=url))
    )
    assert forecast.source == "energidataservice:DK1" and forecast.points[0].start_s == base
    assert requests[0].path == "/dataset/CO2EmisProg"


def test_fetch_electricitymaps_fills_the_current_hour_from_latest() -> None:
    now = time.time()
    hour = math.floor(now / 3600) * 3600
    forecast_doc = {"zone": "DE", "forecast": [
        {"datetime": _stamp(hour + (i + 1) * 3600), "carbonIntensity": 300 - 10 * i}
        for i in range(24)]}  # fmt: skip
    latest_doc = {"zone": "DE", "carbonIntensity": 420, "datetime": _stamp(hour)}

    def setup(server: RecordedServer) -> None:
        server.route("/carbon-intensity/forecast", json_body=forecast_doc)
        server.route("/carbon-intensity/latest", json_body=latest_doc)

    forecast, _ = probe_while_serving(
        setup,
        lambda url: fetch_forecast(
            lambda: ElectricityMaps("tok", zone="DE", base=url), now=lambda: now
        ),
    )
    head = forecast.points[0]
    assert (head.start_s, head.end_s, head.intensity_g_per_kwh) == (now, hour + 3600, 420)
    assert forecast.source == "electricitymaps:DE" and len(forecast.points) == 25


def test_fetch_failures_are_one_reason() -> None:
    def setup(server: RecordedServer) -> None:
        server.route("/carbon-intensity/forecast", status=403)
        server.route("/intensity/*", hang=True)

    def probe(url: str) -> list[str]:
        reasons = []
        for make in (lambda: ElectricityMaps("SECRET-42", zone="DE", base=url),
                     lambda: UkGrid(base=url)):  # fmt: skip
            started = time.monotonic()
            with pytest.raises(ProviderError) as info:
                fetch_forecast(make, budget_s=0.5)
            assert time.monotonic() - started < 5
            reasons.append(info.value.reason)
        with pytest.raises(ProviderError, match="postcode"):
            fetch_forecast(lambda: UkGrid(postcode="not one", base=url))
        return reasons

    (em, gb), _ = probe_while_serving(setup, probe)
    assert "not in the free plan" in em and "SECRET-42" not in em
    assert gb == "no forecast within 0.5 s"


def test_recorded_files_exist_here_as_in_shared_data() -> None:
    shared = REPO.parent / "shared" / "data" / "api_examples"
    if not shared.is_dir():
        pytest.skip("no shared/data beside this checkout")
    for name in ("ukci_intensity_fw24h_fixture.json", "energidataservice_co2emis.json",
                 "electricitymaps_carbon_intensity_forecast.json"):  # fmt: skip
        assert (FIXTURES / name).read_bytes() == (shared / name).read_bytes()
