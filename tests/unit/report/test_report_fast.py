"""Reading a log without parsing most samples gives what a fold of every record gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_records import (
    T0,
    assert_same,
    fold_all,
    intensity_record,
    sample_record,
    start_record,
    write,
)

from carbonwrap.report.read import _pack, _unpack, fold_every_record, read_runs, summarize_log
from carbonwrap.runlog import reader as logread
from carbonwrap.runlog import records as events
from carbonwrap.runlog.ledger import BUCKET_S
from carbonwrap.runlog.reader import ScanCounts, essential_records
from carbonwrap.runlog.summary import ComponentSummary, GpuSummary, RunSummary


def records_in(path: Path, buckets: bool = False) -> list[dict[str, Any]]:
    return list(essential_records(path, BUCKET_S, ScanCounts(), buckets=buckets))


def test_a_static_log_is_read_without_parsing_a_single_sample(tmp_path: Path) -> None:
    lines = [start_record(), intensity_record(0, 150.0, "static")]
    lines += [sample_record(10 * i, 100.0 * i, 10.0 * i) for i in range(1, 500)]
    lines.append(sample_record(4995, 50_000.0, 5_000.0, "end"))
    path = write(tmp_path / "a.jsonl", lines)
    assert [r["type"] for r in records_in(path)] == ["start", "intensity", "end"]
    assert_same(summarize_log(path), fold_all(path))


def test_intensity_changes_split_the_samples_where_they_happen(tmp_path: Path) -> None:
    lines: list[Any] = [start_record()]
    lines += [sample_record(10, 10.0, 1.0)]  # before any intensity: priced at nothing
    lines += [intensity_record(10, 100.0), sample_record(20, 20.0, 2.0)]
    lines += [sample_record(30, 35.0, 2.5), intensity_record(31, 300.0)]
    lines += [events.warning(time_s=T0 + 32, elapsed_s=32, message="x")]
    lines += [sample_record(40, 50.0, 3.0), intensity_record(41, 300.0)]  # same value again
    lines += [sample_record(50, 80.0, 4.0), sample_record(55, 90.0, 4.5, "end")]
    path = write(tmp_path / "b.jsonl", lines)
    kept = [r["elapsed_s"] for r in records_in(path) if r["type"] == "sample"]
    # Before each change, the last sample; after a change later than it (31 s, 41 s), the first
    # sample: the interval the fold splits. The change at 10 s falls on a sample: no split.
    assert kept == [10, 30, 40, 50]
    assert records_in(path)[-1]["type"] == "end"
    fast, full = summarize_log(path), fold_all(path)
    assert_same(fast, full)
    assert full.intensity_min_g_per_kwh == 100.0 and full.intensity_max_g_per_kwh == 300.0


def test_measured_history_folds_the_last_sample_of_each_bucket(tmp_path: Path) -> None:
    lines: list[Any] = [start_record(), intensity_record(0, 100.0)]
    energy = 0.0
    for i in range(1, 400):  # 10 s apart: 30 per 5-minute bucket
        energy += 50.0 + (i % 7)
        lines.append(sample_record(10 * i, energy, energy / 10))
        if i % 180 == 0:
            lines.append(intensity_record(10 * i, 90.0 + i / 10))
            lines.append(intensity_record(10 * i, 70.0 + i / 100, "measured", 1800))
    lines.append(sample_record(4000, energy + 1, energy / 10, "end"))
    path = write(tmp_path / "c.jsonl", lines)
    with pytest.raises(logread.NeedBuckets):
        records_in(path)
    kept = records_in(path, buckets=True)
    assert 13 <= sum(r["type"] == "sample" for r in kept) < 60  # bucket ends, not 399 samples
    fast, full = summarize_log(path), fold_all(path)
    assert_same(fast, full)
    assert 0 < full.intensity_measured_share < 1


def test_incomplete_logs_count_up_to_their_last_sample(tmp_path: Path) -> None:
    base: list[Any] = [start_record(), intensity_record(0, 120.0, "static")]
    base += [sample_record(10 * i, 100.0 * i, 5.0 * i) for i in range(1, 30)]
    endings: dict[str, list[Any] | None] = {
        "sample": [],
        "warning": [events.warning(time_s=T0 + 300, elapsed_s=300, message="late")],
        "cut": [b'{"type":"sample","time":"2026-09-21T14:'],  # killed in the middle of a write
        "nul": [b"\x00" * 300],  # a file system's zero-filled tail after a crash
        "start only": None,
    }
    for name, tail in endings.items():
        lines = base[:1] if tail is None else base + tail
        path = write(tmp_path / f"{name}.jsonl", lines)
        fast, full = summarize_log(path), fold_all(path)
        assert_same(fast, full)
        assert full.status == "incomplete"
        assert full.bad_lines == (1 if name in ("cut", "nul") else 0)


def test_corrupt_lines_are_counted_as_a_fold_counts_them(tmp_path: Path) -> None:
    lines: list[Any] = [start_record(), intensity_record(0, 150.0, "static")]
    lines += [sample_record(10, 100.0, 1.0), b"not json at all\n", b"\n", b"[1, 2]\n"]
    lines += [sample_record(20, 200.0, 2.0), b'{"type": 7}\n', b"\xff\xfe\x00binary\n"]
    lines += [sample_record(30, 300.0, 3.0), sample_record(31, 310.0, 3.1, "end")]
    lines += [b"trailing garbage\n"]
    path = write(tmp_path / "d.jsonl", lines)
    fast, full = summarize_log(path), fold_all(path)
    assert full.bad_lines == 6
    assert_same(fast, full)


@pytest.mark.parametrize(
    "damage",
    [
        b'{"type":"sample","time":"2026-09-21T14:15:00.000Z","elapsed_s":10,"cpu\n',  # cut
        b'{"time":"2026-09-21T14:15:00.000Z","type":"sample","elapsed_s":15,"cpu_s":1,'
        b'"energy_j":{"cpu":150.0},"device_energy_j":{}}\n',  # another writer's key order
        b'{"type":"sample","time":"2026-09-21T14:15:00+00:00","elapsed_s":15,"cpu_s":1,'
        b'"energy_j":{"cpu":150.0},"device_energy_j":{}}\n',  # another time format
    ],
)
def test_a_log_not_written_as_carbonwrap_writes_it_is_folded_whole(
    tmp_path: Path, damage: bytes
) -> None:
    lines: list[Any] = [start_record(), intensity_record(0, 150.0)]
    lines += [sample_record(10, 100.0, 1.0), damage, sample_record(20, 200.0, 2.0)]
    lines += [intensity_record(21, 50.0, "measured", 600), sample_record(30, 300.0, 3.0)]
    path = write(tmp_path / "e.jsonl", lines)
    with pytest.raises(logread.Irregular):
        records_in(path, buckets=True)
    assert_same(summarize_log(path), fold_all(path))


def test_files_that_are_not_logs(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "text.jsonl").write_text("hello\nworld\n")
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)) * 100)
    (tmp_path / "other.jsonl").write_text('{"type": "start", "schema": "wandb/1"}\n')
    (tmp_path / "sample-first.jsonl").write_text(json.dumps(sample_record(1, 1, 1)) + "\n")
    huge = b'{"type":"start","schema":"carbonwrap.log/1","x":"' + b"a" * (5 << 20)
    (tmp_path / "endless.jsonl").write_bytes(huge)  # no newline in 5 MiB: not a start record
    for path in sorted(tmp_path.iterdir()):
        assert summarize_log(path) is None, path.name
        assert fold_every_record(path) is None, path.name


@pytest.mark.parametrize("block", [64, 97, 256, 1000, 4096])
def test_any_block_size_gives_the_same_result(
    tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines that straddle reads, and lines longer than a read."""
    lines: list[Any] = [start_record(tags={"note": "x" * 300}), intensity_record(0, 100.0)]
    energy = 0.0
    for i in range(1, 200):
        energy += 10.0 + i % 3
        lines.append(sample_record(10 * i, energy, 1.0))
        if i % 37 == 0:
            lines.append(intensity_record(10 * i, 100.0 + i))
        if i % 61 == 0:
            lines.append(intensity_record(10 * i, 80.0, "measured", 900))
        if i % 50 == 0:
            lines.append(b"garbage line\n")
    path = write(tmp_path / "f.jsonl", lines)
    monkeypatch.setattr(logread, "_BLOCK", block)
    assert_same(summarize_log(path), fold_all(path))


# Hypothesis: any mix of records, damage and endings. An intensity record's time is drawn
# around the last sample's: after it (the next interval is split there), before it (logged
# late: no split), or even after the next sample (logged early, as threads may).
_step = st.one_of(
    st.tuples(st.just("sample"), st.floats(0, 5000), st.floats(1, 400)),  # J, seconds later
    st.tuples(st.just("latest"), st.floats(0, 900), st.floats(-5, 30)),  # value, time offset
    st.tuples(st.just("static"), st.floats(0, 900), st.floats(-5, 30)),
    st.tuples(st.just("measured"), st.floats(0, 900), st.sampled_from([60.0, 300.0, 3600.0])),
    st.tuples(st.just("warning"), st.just(0.0), st.just(0.0)),
    st.tuples(st.just("garbage"), st.just(0.0), st.just(0.0)),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, max_size=60), ending=st.sampled_from(["end", "none", "zeros"]))
def test_random_logs_read_fast_equal_a_full_fold(
    tmp_path: Path, steps: list[tuple[str, float, float]], ending: str
) -> None:
    lines: list[Any] = [start_record()]
    t = energy = 0.0
    for kind, value, extra in steps:
        if kind == "sample":
            t += extra
            energy += value
            lines.append(sample_record(t, energy, energy / 3))
        elif kind == "warning":
            lines.append(events.warning(time_s=T0 + t, elapsed_s=t, message="w"))
        elif kind == "garbage":
            lines.append(b"{oops\n")
        elif kind == "measured":
            lines.append(intensity_record(t, round(value, 3), kind, extra))
        else:
            lines.append(intensity_record(max(0.0, t + extra), round(value, 3), kind))
    if ending == "end":
        lines.append(sample_record(t + 1, energy + 1, energy / 3, "end"))
    elif ending == "zeros":
        lines.append(b"\x00" * 40)
    path = tmp_path / "random.jsonl"
    path.unlink(missing_ok=True)
    write(path, lines)
    records_in(path, buckets=True)  # the fast way applies: no Irregular
    assert_same(summarize_log(path), fold_all(path))


def test_summaries_cross_processes_unchanged() -> None:
    s = RunSummary(
        run_id="r1",
        command=["a", "b"],
        host="h",
        started_at="2026-11-27T00:00:00.000Z",
        ended_at="2026-11-27T00:00:10.000Z",
        duration_s=10.0,
        cpu_s=5.0,
        exit_code=0,
        complete=True,
        components={"cpu": ComponentSummary("rapl", "b", 1.0, 2.0), "gpu": ComponentSummary("x")},
        gpus={0: GpuSummary(0, "A100", "GPU-1", "nvml-counter", True, 1.0, 2.0, {"sole": 3})},
        region={"code": "DK"},
        intensity_mean_g_per_kwh=1.5,
        intensity_sources=["s"],
        co2e_g=3.0,
        notes=["n"],
        leftover_pids=[7],
        tags={"k": "v"},
        job={"SLURM_JOB_ID": "1"},
        log_path="/x",
        bad_lines=2,
    )
    import marshal

    assert _unpack(marshal.loads(marshal.dumps(_pack(s)))) == s


def test_many_logs_read_by_workers_equal_one_process(tmp_path: Path) -> None:
    for k in range(70):
        lines: list[Any] = [start_record(run_id=f"run{k:03d}"), intensity_record(0, 100.0 + k)]
        lines += [sample_record(10 * i, 10.0 * i * (k + 1), 1.0 * i) for i in range(1, 4 + k % 5)]
        if k % 9:
            lines.append(sample_record(100, 100.0 * (k + 1), 10.0, "end"))
        write(tmp_path / f"d{k % 3}" / f"log{k:03d}.jsonl", lines)
    (tmp_path / "d0" / "junk.jsonl").write_text("junk\n")
    one, stats_one = read_runs([tmp_path], workers=1)
    two, stats_two = read_runs([tmp_path], workers=2)
    assert len(one) == 70 and one == two and stats_one == stats_two
    assert stats_one.not_logs == 1 and stats_one.incomplete == 8
