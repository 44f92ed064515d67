"""Repricing logged runs: the pure planning with plain numbers (unpriced time, history reach,
requests, windows cut to the gaps, shares), then the command on real logs written by the real
writer, against a fake provider and against a real local server with Energinet's recorded
answer."""

from __future__ import annotations

import asyncio
import io
import json
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from intensity_server import RecordedServer, probe_while_serving

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.points import FORECAST, LATEST, MEASURED, IntensityPoint, ProviderError
from carbonwrap.intensity.reprice import (
    MIN_GAP_S,
    HistoryReach,
    LoggedRun,
    calls_for,
    history_reach,
    measured_share,
    new_windows,
    split_reach,
    unmeasured,
)
from carbonwrap.intensity.select import Choice
from carbonwrap.report.read import summarize_log
from carbonwrap.runlog import records as events
from carbonwrap.runlog.reader import RecordReader
from carbonwrap.runlog.writer import EventLog

DAY = 86400.0
# 2026-09-21T14:15:00.250Z: as a real run, a few ms after a 5-minute boundary, not on it (the
# ledger puts an interval that ends on a boundary into the next bucket, a single instant).
T0 = 1_790_000_100.25
NOW = T0 + 3 * 3600  # when the tests reprice: three hours after T0


# --- pure planning ---------------------------------------------------------------------------


def test_unmeasured_is_the_run_less_its_measured_windows() -> None:
    measured = [(150.0, 300.0), (100.0, 200.0), (500.0, 550.0), (900.0, 1000.0)]
    assert unmeasured(0.0, 600.0, measured) == [(0.0, 100.0), (300.0, 500.0), (550.0, 600.0)]
    assert unmeasured(0.0, 600.0, []) == [(0.0, 600.0)]
    assert unmeasured(0.0, 600.0, [(-10.0, 700.0)]) == []


def test_unpriced_time_shorter_than_a_second_is_rounding_not_a_gap() -> None:
    """The ledger takes windows to the whole second: a window cut at the run's millisecond
    start leaves a sliver that a second reprice must not fetch again."""
    assert unmeasured(0.123, 600.7, [(0.0, 300.0), (300.0, 600.0)]) == []
    assert unmeasured(0.0, 600.0, [(0.0, 300.0), (300.0 + MIN_GAP_S, 600.0)]) == [(300.0, 301.0)]


def test_reach_cuts_the_unpriced_time_at_the_oldest_history() -> None:
    gaps = [(0.0, 100.0), (200.0, 400.0), (500.0, 600.0)]
    within, beyond = split_reach(gaps, now_s=1300.0, back_s=1000.0)  # reaches back to 300
    assert within == [(300.0, 400.0), (500.0, 600.0)]
    assert beyond == [(0.0, 100.0), (200.0, 300.0)]
    assert split_reach(gaps, 1300.0, math.inf) == (gaps, [])
    assert split_reach(gaps, 1300.0, 0.0) == ([], gaps)


def test_requests_share_what_fits_and_split_what_does_not() -> None:
    # Three runs' gaps (two overlap), a 14-day API: one request.
    spans = [(0.0, 3600.0), (1800.0, 7200.0), (DAY, DAY + 60.0)]
    assert calls_for(spans, 14 * DAY) == [(0.0, DAY + 60.0)]
    # A 30-day run for a 14-day API: three requests, none longer than 14 days.
    calls = calls_for([(0.0, 30 * DAY)], 14 * DAY)
    assert calls == [(0.0, 14 * DAY), (14 * DAY, 28 * DAY), (28 * DAY, 30 * DAY)]
    # Gaps farther apart than a request holds: one each, nothing asked between them.
    assert calls_for([(0.0, 60.0), (3 * DAY, 3 * DAY + 60.0)], DAY) == [
        (0.0, 60.0),
        (3 * DAY, 3 * DAY + 60.0),
    ]
    assert calls_for([], DAY) == []


def _point(start: float, end: float, value: float, kind: str = MEASURED) -> IntensityPoint:
    return IntensityPoint(start, end, value, kind, "average", "fake:DK1")


def test_new_windows_are_measured_points_cut_to_the_gaps() -> None:
    points = [
        _point(0.0, 300.0, 100.0),
        _point(300.0, 600.0, 120.0),
        _point(600.0, 900.0, 130.0, kind=LATEST),  # provisional: not a measurement
        _point(900.0, 1200.0, 140.0, kind=FORECAST),
    ]
    windows = new_windows(points, [(100.0, 400.0), (650.0, 1000.0)])
    assert [(w.start_s, w.end_s, w.intensity_g_per_kwh) for w in windows] == [
        (100.0, 300.0, 100.0),
        (300.0, 400.0, 120.0),
    ]
    assert all(w.kind == MEASURED and w.source == "fake:DK1" for w in windows)
    # Overlapping answers (a revision, two providers): never two values for one second.
    overlapping = new_windows([_point(0, 300, 1.0), _point(200, 500, 2.0)], [(0.0, 500.0)])
    assert [(w.start_s, w.end_s) for w in overlapping] == [(0.0, 300.0), (300.0, 500.0)]


def test_the_measured_share_of_several_runs_is_weighted_by_energy() -> None:
    assert measured_share([(3.0, 1.0), (1.0, 0.0)]) == 0.75
    assert measured_share([]) is None
    assert measured_share([(0.0, 1.0)]) is None


def test_history_reach_is_the_catalogs_and_a_request_asks_what_the_api_answers_whole() -> None:
    from carbonwrap.intensity.select import history_days

    for name in ("electricitymaps", "ukgrid", "energidataservice", "eia", "energycharts"):
        reach = history_reach(name)
        assert reach.back_s == history_days(name) * DAY
        assert 0 < reach.call_s <= min(reach.back_s, 14 * DAY)
    assert history_reach("electricitymaps").call_s == DAY  # its free /history: 24 hours
    assert history_reach("ukgrid").call_s == min(14 * DAY, history_reach("ukgrid").back_s)


# --- logs as carbonwrap writes them ------------------------------------------------------------


def write_run(
    directory: Path,
    run_id: str,
    *,
    start_s: float = T0,
    seconds: int = 1800,
    region: str = "DK-DK1",
    source: str = "static table: Denmark 2024, Ember",
    signal: str = "average",
    end: bool = True,
    measured: tuple[tuple[float, float, float], ...] = (),
    logged: tuple[dict[str, Any], ...] = (),
) -> Path:
    """A run of `seconds` at 10 W of CPU, a sample every 10 s, through the real writer."""
    log = EventLog(directory, f"carbonwrap-{run_id}.jsonl")
    log.write(
        events.start(
            run_id=run_id, time_s=start_s, argv=["python", "train.py"], cwd="/home/u",
            host="node1", pid=1, versions={"carbonwrap": "0.1.0"}, cpu_accounting="cgroup2",
            components={"cpu": {"method": "rapl"}},
            region={"code": region, "kind": "zone", "source": "flag", "detail": ""},
            pue=1.0, interval_s=1.0, log_interval_s=10.0, job={}, tags={},
        )
    )  # fmt: skip
    log.write(
        events.intensity(
            time_s=start_s, elapsed_s=0.0, intensity_g_per_kwh=200.0, region=region,
            source=source, signal=signal,
        )
    )  # fmt: skip
    for record in logged:
        log.write(record)
    for start, stop, value in measured:
        log.write(
            events.intensity(
                time_s=start_s + stop, elapsed_s=stop, intensity_g_per_kwh=value,
                region=region, source="fake:DK1", kind="measured",
                valid_from_s=start_s + start, valid_to_s=start_s + stop,
            )
        )  # fmt: skip
    for t in range(10, seconds + 1, 10):
        kind = "end" if end and t == seconds else "sample"
        extra: dict[str, Any] = {}
        if kind == "end":
            extra = {"exit_code": 0, "signal": None, "leftover_pids": [], "signals_received": []}
        log.write(
            (events.end if kind == "end" else events.sample)(
                time_s=start_s + t, elapsed_s=float(t), cpu_s=t / 2,
                energy_j={"cpu": 10.0 * t}, device_energy_j={"cpu": 20.0 * t}, **extra,
            )
        )  # fmt: skip
    log.close()
    return Path(log.path)


def test_the_logged_run_knows_what_may_be_repriced(tmp_path: Path) -> None:
    def why(path: Path) -> str | None:
        run = LoggedRun()
        for record in RecordReader(path):
            run.add(record)
        return run.why_not()

    assert why(write_run(tmp_path, "ok")) is None
    assert "no end record" in str(why(write_run(tmp_path, "cut", end=False)))
    assert "--intensity" in str(why(write_run(tmp_path, "fixed", source="fixed by --intensity")))
    assert "marginal" in str(why(write_run(tmp_path, "moer", signal="marginal")))


# --- the command, against a fake provider ------------------------------------------------------


class FakeHistory:
    """A provider whose history is 5-minute windows of `value`, recording what was asked."""

    name = "fake"
    resolution_s = 300.0
    signal = "average"
    source = "fake:DK1"

    def __init__(self, value: float = 100.0, fail: str | None = None) -> None:
        self.value = value
        self.fail = fail
        self.asked: list[tuple[float, float]] = []

    async def latest(self, session: Any) -> IntensityPoint:
        raise ProviderError("not asked")

    async def history(self, session: Any, start_s: float, end_s: float) -> list[IntensityPoint]:
        self.asked.append((start_s, end_s))
        if self.fail:
            raise ProviderError(self.fail)
        first = math.floor(start_s / 300) * 300
        return [
            IntensityPoint(t, t + 300, self.value, MEASURED, "average", self.source)
            for t in range(int(first), int(end_s), 300)
        ]

    async def forecast(self, session: Any) -> list[IntensityPoint]:
        return []


def fake_choices(provider: FakeHistory, back_s: float = 30 * DAY) -> dict[str, Any]:
    def choices(location: Any, environ: Mapping[str, str], source: str) -> list[Choice]:
        if location.region == "WORLD":
            return [Choice(None, None, "no provider has history for WORLD")]
        return [Choice("fake", lambda: provider, None)]

    return {"choices": choices, "reach_of": lambda name: HistoryReach(back_s, DAY)}


ENV = {"XDG_CONFIG_HOME": "/nonexistent/carbonwrap-tests"}


def reprice(
    paths: list[Path], *, dry_run: bool = False, as_json: bool = False, **injected: Any
) -> tuple[int, str, str]:
    from carbonwrap.commands.reprice import RepriceOptions
    from carbonwrap.commands.reprice import reprice as command

    out, err = io.StringIO(), io.StringIO()
    options = RepriceOptions(paths=paths, dry_run=dry_run, as_json=as_json)
    status = command(options, ENV, out, err, now=lambda: NOW, **injected)
    return status, out.getvalue(), err.getvalue()


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reprice_appends_measured_windows_after_the_end_and_the_report_prices_them(
    tmp_path: Path,
) -> None:
    log = write_run(tmp_path, "r1")
    before = summarize_log(log)
    assert before is not None and before.intensity_measured_share == 0.0
    provider = FakeHistory(value=100.0)
    status, out, err = reprice([tmp_path], **fake_choices(provider))
    assert status == 0, err
    # One request for the run's half hour, from its start's second to its end's.
    assert provider.asked == [(T0 - 0.25, T0 + 1800.75)]
    records = lines(log)
    end = next(i for i, r in enumerate(records) if r["type"] == "end")
    added = records[end + 1 :]
    assert len(added) == 7 and all(r["type"] == "intensity" for r in added)
    assert all(r["kind"] == "measured" and r["repriced"] is True for r in added)
    assert [(r["valid_from"], r["valid_to"]) for r in added][::6] == [
        ("2026-09-21T14:15:00.000Z", "2026-09-21T14:20:00.000Z"),
        ("2026-09-21T14:45:00.000Z", "2026-09-21T14:45:01.000Z"),  # to the end's second
    ]
    assert added[0]["time"] == events.utc_iso(NOW) and added[0]["source"] == "fake:DK1"
    after = summarize_log(log)  # the report's own reading: the fast path
    assert after is not None
    assert after.intensity_measured_share == pytest.approx(1.0)
    assert after.co2e_g == pytest.approx(before.co2e_g / 2)  # 100 instead of 200 g/kWh
    assert "7 measured windows from fake:DK1 added; measured 0 % → 100 %" in out
    assert "1 of 1 run repriced; measured values now price 100 % of their" in out


def test_a_second_reprice_appends_nothing_and_fetches_nothing_already_measured(
    tmp_path: Path,
) -> None:
    log = write_run(tmp_path, "r1")
    provider = FakeHistory()
    assert reprice([tmp_path], **fake_choices(provider))[0] == 0
    content = log.read_bytes()
    status, out, _ = reprice([tmp_path], **fake_choices(provider))
    assert status == 0
    assert log.read_bytes() == content
    assert len(provider.asked) == 1  # nothing left to ask for
    assert "all of its time is priced by measured values; measured 100 %" in out


def test_only_the_time_not_yet_measured_is_fetched_and_what_was_measured_stays(
    tmp_path: Path,
) -> None:
    """The run's own poller measured its first 10 minutes at 150: never rewritten."""
    log = write_run(tmp_path, "r1", measured=((0, 600, 150.0),))
    provider = FakeHistory(value=100.0)
    assert reprice([tmp_path], **fake_choices(provider))[0] == 0
    assert provider.asked == [(T0 + 600, T0 + 1800.75)]
    added = [r for r in lines(log) if r.get("repriced")]
    assert added[0]["valid_from"] == events.utc_iso(T0 + 600)  # where the poller's ended
    after = summarize_log(log)
    assert after is not None and after.intensity_measured_share == pytest.approx(1.0)
    # A third at 150, two thirds at 100, energy even over the run.
    assert after.intensity_mean_g_per_kwh == pytest.approx((150 + 2 * 100) / 3, rel=0.02)


def test_dry_run_says_what_would_be_fetched_and_fetches_and_writes_nothing(
    tmp_path: Path,
) -> None:
    log = write_run(tmp_path, "r1")
    content = log.read_bytes()
    provider = FakeHistory()
    status, out, _ = reprice([tmp_path], dry_run=True, **fake_choices(provider))
    assert status == 0 and provider.asked == [] and log.read_bytes() == content
    assert "would fetch 30 min 01 s between 2026-09-21 14:15 and 2026-09-21 14:45 UTC" in out
    assert "would make 1 request (1 to fake); nothing fetched or written (--dry-run)" in out


def test_runs_that_are_never_repriced_are_said_and_left_alone(tmp_path: Path) -> None:
    logs = [
        write_run(tmp_path, "cut", end=False),
        write_run(tmp_path, "fixed", source="fixed by --intensity"),
        write_run(tmp_path, "moer", signal="marginal"),
        write_run(tmp_path, "world", region="WORLD"),
        write_run(tmp_path, "old", start_s=T0 - 40 * DAY),
    ]
    contents = [log.read_bytes() for log in logs]
    provider = FakeHistory()
    status, out, err = reprice([tmp_path], **fake_choices(provider))
    assert status == 0, err  # nothing failed: each was decided
    assert [log.read_bytes() for log in logs] == contents
    assert provider.asked == []
    said = {line.split(":", 1)[0].split("carbonwrap-")[-1]: line for line in out.splitlines()}
    assert "no end record" in said["cut.jsonl (run cut)"]
    assert "fixed by --intensity" in said["fixed.jsonl (run fixed)"]
    assert "marginal signal" in said["moer.jsonl (run moer)"]
    world = said["world.jsonl (run world)"]
    assert "no history source for WORLD (no provider has history for WORLD)" in world
    assert "the value it was priced at stays" in world
    assert "older than fake's history reaches (30 d 00 h back)" in said["old.jsonl (run old)"]
    assert "0 of 5 runs repriced" in out


def test_a_failing_provider_is_said_per_run_with_why_and_the_exit_status_is_1(
    tmp_path: Path,
) -> None:
    log = write_run(tmp_path, "r1")
    content = log.read_bytes()
    write_run(tmp_path, "r2", start_s=T0 + 600)  # same provider: asked once, not twice
    provider = FakeHistory(fail="HTTP 500 from api.example/history")
    status, out, err = reprice([tmp_path], **fake_choices(provider))
    assert status == 1
    assert log.read_bytes() == content
    assert len(provider.asked) == 1  # both runs' time in one request
    said = err.splitlines()
    assert len(said) == 2 and all("HTTP 500 from api.example/history" in s for s in said)
    assert said[0].startswith("carbonwrap: could not reprice ") and "(run r1)" in said[0]
    assert "0 of 2 runs repriced, 2 could not be" in out


def test_two_reprices_at_once_add_each_window_once(tmp_path: Path) -> None:
    """Both read the log and fetch before either writes: the lock orders their writes, and
    the second sees the first's windows and adds none of them."""
    log = write_run(tmp_path, "r1")
    both_fetching = threading.Barrier(2, timeout=10)

    class Meeting(FakeHistory):
        async def history(self, session: Any, start_s: float, end_s: float) -> Any:
            both_fetching.wait()  # each command runs its own event loop, on its own thread
            return await super().history(session, start_s, end_s)

    results: list[tuple[int, str, str]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(reprice([tmp_path], **fake_choices(Meeting())))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(status for status, _, _ in results) == [0, 0]
    assert sum(1 for r in lines(log) if r.get("repriced")) == 7
    said = " ".join(out for _, out, _ in results)
    assert "7 measured windows from fake:DK1 added" in said
    assert "another carbonwrap reprice added the same windows meanwhile" in said


def test_json_is_one_document_for_scripts(tmp_path: Path) -> None:
    write_run(tmp_path, "r1")
    write_run(tmp_path, "cut", end=False)
    status, out, _ = reprice([tmp_path], as_json=True, **fake_choices(FakeHistory()))
    assert status == 0
    doc = json.loads(out)
    assert doc["schema"] == "carbonwrap.reprice/1" and doc["dry_run"] is False
    runs = {r["run_id"]: r for r in doc["runs"]}
    assert runs["r1"]["status"] == "repriced" and runs["r1"]["appended"] == 7
    assert runs["r1"]["measured_share_before"] == 0 and runs["r1"]["measured_share"] == 1
    assert runs["r1"]["co2e_kg"] == pytest.approx(runs["r1"]["co2e_kg_before"] / 2)
    assert runs["cut"]["status"] == "skipped" and "no end record" in runs["cut"]["reason"]
    assert doc["requests"] == [
        {
            "provider": "fake",
            "region": "DK-DK1",
            "windows": [{"from": "2026-09-21T14:15:00.000Z", "to": "2026-09-21T14:45:01.000Z"}],
        }
    ]
    assert doc["totals"]["repriced"] == 1 and doc["totals"]["skipped"] == 1


def test_a_path_that_does_not_exist_and_a_source_without_history_are_usage_errors(
    tmp_path: Path,
) -> None:
    from carbonwrap.commands.reprice import RepriceOptions
    from carbonwrap.commands.reprice import reprice as command

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CarbonwrapError, match="no such file or directory"):
        command(RepriceOptions(paths=[tmp_path / "nope"]), ENV, out, err)
    for source in ("static", "watttime"):
        options = RepriceOptions(paths=[tmp_path], intensity_source=source)
        with pytest.raises(CarbonwrapError, match=f"--intensity-source {source}"):
            command(options, ENV, out, err)


# --- the command, against a real local server with Energinet's recorded answer ------------------

T_2250 = 1672613400.0  # 2023-01-01T22:50Z: the fixture holds DK1 at 22:50 (67) and 22:55 (68)


def test_energinet_history_from_a_real_server_prices_a_run_logged_offline(
    tmp_path: Path,
) -> None:
    log = write_run(tmp_path, "dk", start_s=T_2250 + 0.25, seconds=590, region="DK-DK1")

    def setup(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", json_file="energidataservice_co2emis.json")

    def probe(url: str) -> tuple[int, str, str]:
        from carbonwrap.commands.reprice import RepriceOptions
        from carbonwrap.commands.reprice import reprice as command

        out, err = io.StringIO(), io.StringIO()
        env = {**ENV, "CARBONWRAP_ENERGIDATASERVICE_URL": url}
        options = RepriceOptions(paths=[tmp_path], intensity_source="energidataservice")
        status = command(options, env, out, err, now=lambda: T_2250 + DAY)
        return status, out.getvalue(), err.getvalue()

    (status, out, err), requests = probe_while_serving(setup, probe)
    assert status == 0, err
    assert len(requests) == 1 and requests[0].path == "/dataset/CO2Emis"
    assert requests[0].query["start"] == "2023-01-01T22:50"
    added = [r for r in lines(log) if r.get("repriced")]
    assert [(r["valid_from"], r["intensity_g_per_kwh"]) for r in added] == [
        ("2023-01-01T22:50:00.000Z", 67.0),
        ("2023-01-01T22:55:00.000Z", 68.0),
    ]
    assert {r["source"] for r in added} == {"energidataservice:DK1"}
    after = summarize_log(log)
    assert after is not None and after.intensity_measured_share == pytest.approx(1.0)
    assert "from energidataservice:DK1 added; measured 0 % → 100 %" in out


def test_appended_records_fold_as_the_pollers_would_have(tmp_path: Path) -> None:
    """Windows appended after the end record price the run's buckets exactly as the same
    windows logged by the poller before the end (fast reading and a fold of every record)."""
    repriced = write_run(tmp_path, "after")
    assert reprice([repriced], **fake_choices(FakeHistory(value=100.0)))[0] == 0
    windows = tuple(r for r in lines(repriced) if r.get("repriced"))
    logged = write_run(tmp_path, "before", logged=windows)
    a, b = summarize_log(repriced), summarize_log(logged)
    assert a is not None and b is not None
    assert a.co2e_g == pytest.approx(b.co2e_g, rel=1e-12)
    assert a.intensity_measured_share == pytest.approx(b.intensity_measured_share)


def test_the_fake_provider_is_a_provider() -> None:
    """What the command calls is what the poller calls: the Provider protocol."""
    from carbonwrap.intensity.providers import Provider

    provider: Provider = FakeHistory()
    points = asyncio.run(provider.history(None, T0, T0 + 600))  # type: ignore[arg-type]
    assert [p.start_s for p in points] == [T0 - 0.25, T0 + 299.75]


def test_auto_offers_a_provider_with_history_for_the_place_and_says_why_not_where_none() -> None:
    from carbonwrap.commands.reprice import history_choices
    from carbonwrap.intensity.location import resolve_location

    denmark = resolve_location("DK-DK1", None, None, ENV)
    found = history_choices(denmark, ENV, "auto")  # no Electricity Maps token here
    assert found and found[0].name is not None and found[0].make is not None
    assert history_reach(found[0].name).back_s > DAY
    world = history_choices(resolve_location("WORLD", None, None, ENV), ENV, "auto")
    assert [c.name for c in world] == [None] and world[0].note
    with pytest.raises(CarbonwrapError, match="ukgrid"):
        history_choices(denmark, ENV, "ukgrid")
