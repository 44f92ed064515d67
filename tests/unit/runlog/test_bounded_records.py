"""Every record carbonwrap writes is readable by its own reader: whatever can grow (the command
line, tags, texts, lists of signals and PIDs) is bounded at the writer, and what was left out is
said (`argv_cut`, `tags_cut`, `<list>_cut`, texts ending in …)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_records import T0, assert_same, fold_all, sample_record

from carbonwrap.report.read import summarize_log
from carbonwrap.runlog import reader, records
from carbonwrap.runlog.records import encode
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog

# The characters that take the most JSON: 12 bytes for one character beyond the BMP (a
# surrogate pair of escapes), 6 for a control character or an undecodable byte.
WIDE = "\U0001f600"
NARROW = "\x01"
UNDECODABLE = os.fsdecode(b"\xff")  # "\udcff", as Python decodes a byte no UTF-8 holds
MIB = 1 << 20


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # as `encode` writes it


def _start(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "run_id": "r",
        "time_s": T0,
        "argv": ["python", "train.py"],
        "cwd": "/home/u",
        "host": "node1",
        "pid": 1,
        "versions": {"carbonwrap": "0.1.0"},
        "cpu_accounting": "cgroup2",
        "components": {"cpu": {"method": "rapl"}},
        "region": {"code": "DK"},
        "pue": 1.25,
        "interval_s": 1.0,
        "log_interval_s": 10.0,
        "job": {},
        "tags": {},
    }
    fields.update(overrides)
    return records.start(**fields)


def _end(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "time_s": T0 + 20,
        "elapsed_s": 20.0,
        "exit_code": 0,
        "signal": None,
        "cpu_s": 10.0,
        "energy_j": {"cpu": 200.0},
        "device_energy_j": {"cpu": 400.0},
        "leftover_pids": [],
        "signals_received": [],
    }
    fields.update(overrides)
    return records.end(**fields)


def _largest_records() -> list[dict[str, Any]]:
    """Each kind of record with every field that comes from outside beyond its bound (so what
    is kept is the most it can be), each alone more than the reader takes, yet small enough
    that a writer without bounds fails this test rather than the machine (about 50 MB)."""
    huge = WIDE * 400_000  # 4.8 MB of JSON
    big = WIDE * 100_000  # 1.2 MB, for the fields there are many of
    # A command line of 2 MB of control characters (12 MB of JSON); one whose first argument
    # alone is too long; one of bytes no UTF-8 holds.
    argvs = [[NARROW * 20] * 100_000, [huge, "x"], [UNDECODABLE * 200] * 10_000]
    starts = [
        _start(
            argv=argv,
            cwd=huge,
            host=huge,
            versions={"kernel": big},
            region={big: big, "code": big, "detail": big},
            job={name: big for name in records.JOB_VARIABLES},
            tags={f"{n}{WIDE * 1000}": WIDE * 1000 for n in range(300)},
            schedule={"reason": big, "provider": big},
        )
        for argv in argvs
    ]
    pids = list(range(1, 1_000_001))
    return [
        *starts,
        records.warning(time_s=T0, elapsed_s=1, message=huge),
        records.intensity(
            time_s=T0,
            elapsed_s=1,
            intensity_g_per_kwh=1.0,
            region=big,
            source=big,
            signal=big,
            kind="latest",
            reason=huge,
        ),
        records.budget(time_s=T0, elapsed_s=1, event="kill", pids=pids, message=huge),
        records.budget(time_s=T0, elapsed_s=1, event="exceeded", basis=big, message=huge),
        records.progress(time_s=T0, elapsed_s=1, done=1, total=2, unit=huge, source="channel"),
        _end(leftover_pids=pids, signals_received=["SIGTERM"] * 1_000_000, stopped=huge),
    ]


def test_the_largest_records_fit_the_reader_and_are_read_back(tmp_path: Path) -> None:
    largest = _largest_records()
    sizes = [len(encode(record)) for record in largest]
    assert max(sizes) <= 2 * MIB < reader._MAX_LINE, sizes  # half the reader's limit, at most
    for n, start in enumerate(largest[:3]):
        log = EventLog(str(tmp_path), f"r{n}.jsonl")  # the real writer
        for record in [start, *largest[3:]]:
            log.write(record)
        log.close()
        assert log.failed is None
        path = Path(log.path)
        full = fold_all(path)
        assert full.bad_lines == 0 and full.complete and full.command is not None
        assert full.command_cut is not None
        assert_same(summarize_log(path), full)  # the fast reading too
        read = [json.loads(line) for line in path.read_bytes().splitlines()]
        assert [r["type"] for r in read] == [r["type"] for r in [start, *largest[3:]]]


def test_a_usual_record_is_unchanged_and_has_no_cut_fields() -> None:
    """Old readers read new logs: nothing new unless something was cut."""
    start = _start(argv=["python", "train.py", "--lr", "0.1"], tags={"team": "nlp"})
    assert start["argv"] == ["python", "train.py", "--lr", "0.1"]
    assert start["tags"] == {"team": "nlp"}
    assert not [key for key in start if key.endswith("_cut")]
    end = _end(leftover_pids=[7], signals_received=["SIGTERM"])
    assert end["leftover_pids"] == [7] and end["signals_received"] == ["SIGTERM"]
    assert not [key for key in end if key.endswith("_cut")]


def test_a_long_command_line_keeps_whole_first_arguments_and_counts_the_rest() -> None:
    argv = ["/bin/true", *(f"{NARROW * 20}{n}" for n in range(100_000))]
    start = _start(argv=argv)
    kept, cut = start["argv"], start["argv_cut"]
    assert kept == argv[: len(kept)]  # a prefix, each argument whole
    assert len(_json(kept)) <= records.ARGV_BYTES < len(_json(argv[: len(kept) + 1]))
    assert cut == {
        "arguments": len(argv) - len(kept),
        "bytes": sum(len(a.encode()) for a in argv[len(kept) :]),
    }
    summary = _folded(start)
    assert summary.command == kept and summary.command_cut == cut
    n = cut["arguments"]
    assert summary.command_cut_text == f" … (+{n:,} more arguments)"
    assert summary.notes == [
        f"the command line was too long to log whole: {n:,} more arguments "
        f"({cut['bytes']:,} bytes) left out"
    ]


def test_a_first_argument_too_long_alone_is_cut_and_marked() -> None:
    argv = [UNDECODABLE * 200_000, "a", "b"]  # 200,000 bytes no UTF-8 holds
    start = _start(argv=argv)
    (first,) = start["argv"]
    assert first.endswith(records.CUT_MARK) and argv[0].startswith(first[:-1])
    assert len(_json(start["argv"])) <= records.ARGV_BYTES
    assert start["argv_cut"] == {"arguments": 2, "bytes": 200_000 - (len(first) - 1) + 2}
    summary = _folded(start)
    assert summary.command_cut_text == " … (+2 more arguments)"
    alone = _folded(_start(argv=[WIDE * 100_000]))
    assert alone.command_cut_text.startswith(" … (+") and "more bytes" in alone.command_cut_text
    assert "of its first argument left out" in alone.notes[0]


def test_tags_beyond_their_share_are_left_out_and_counted() -> None:
    tags = {f"k{n}": "v" * 1000 for n in range(200)}
    start = _start(tags=tags)
    kept = start["tags"]
    assert list(kept) == list(tags)[: len(kept)] and 0 < len(kept) < 200
    left = list(tags)[len(kept) :]
    assert start["tags_cut"] == {"tags": len(left), "bytes": sum(len(k) + 1000 for k in left)}
    long_value = _start(tags={"team": "x" * 100_000})["tags"]["team"]
    assert len(long_value) == records.TEXT_CHARS // 4 and long_value.endswith(records.CUT_MARK)


def test_lists_keep_their_first_items_and_count_the_rest() -> None:
    end = _end(leftover_pids=list(range(3000)), signals_received=["SIGHUP"] * 2500)
    assert (
        end["leftover_pids"] == list(range(records.LIST_ITEMS)) and end["leftover_pids_cut"] == 2000
    )
    assert (
        len(end["signals_received"]) == records.LIST_ITEMS and end["signals_received_cut"] == 1500
    )
    kill = records.budget(time_s=T0, elapsed_s=1, event="kill", pids=list(range(1001)), message="")
    assert len(kill["pids"]) == records.LIST_ITEMS and kill["pids_cut"] == 1
    message = records.warning(time_s=T0, elapsed_s=1, message="m" * 10_000)["message"]
    assert len(message) == records.TEXT_CHARS and message.endswith(records.CUT_MARK)


def test_hostile_cut_fields_are_ignored_by_the_fold() -> None:
    hostile: list[Any] = [
        "x",
        [1, 2],
        {"arguments": -1, "bytes": 3},
        {"arguments": True, "bytes": 1},
        {"arguments": 10**400, "bytes": 1},
        {"arguments": 1.5, "bytes": 1},
        {"bytes": 1},
    ]
    for cut in hostile:
        fold = Fold()
        fold.add({"type": "start", "argv": ["a"], "argv_cut": cut})
        assert fold.summary().command_cut is None and fold.summary().notes == []
    fold = Fold()
    fold.add({"type": "start", "argv": None, "argv_cut": {"arguments": 1, "bytes": 1}})
    assert fold.summary().command_cut is None  # no command logged: nothing was cut


def _folded(start: dict[str, Any]) -> Any:
    fold = Fold()
    for record in (start, sample_record(10, 100.0, 10.0), sample_record(20, 200.0, 20.0, "end")):
        fold.add(json.loads(encode(record)))
    return fold.summary()


_argument = st.text(st.characters(blacklist_categories=()), max_size=40).map(
    lambda t: t.replace("\x00", "")  # surrogates, controls, anything a command line can hold
)


def _os_bytes(text: str) -> int:
    """Bytes on the command line: an undecodable byte is one surrogate (os.fsdecode)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # not from a command line: count it as it would be written
        return len(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(
    argv=st.lists(_argument, min_size=1, max_size=60),
    repeat=st.integers(1, 50),
    budget=st.integers(64, 4000),
)
def test_any_command_line_is_a_bounded_prefix_and_an_honest_count(
    argv: list[str], repeat: int, budget: int
) -> None:
    argv = [a * repeat for a in argv]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records, "ARGV_BYTES", budget)
        start = _start(argv=argv)
    kept, cut = start["argv"], start.get("argv_cut")
    encode(start)  # JSON whatever the characters
    assert len(_json(kept)) <= budget
    if cut is None:
        assert kept == argv
        return
    assert len(kept) + cut["arguments"] == len(argv)
    if kept[0] != argv[0]:  # the first argument alone did not fit: its beginning, marked
        assert len(kept) == 1 and kept[0].endswith(records.CUT_MARK)
        assert argv[0].startswith(kept[0][:-1])
        logged = _os_bytes(kept[0][:-1])
    else:
        assert kept == argv[: len(kept)]
        logged = sum(_os_bytes(a) for a in kept)
    assert logged + cut["bytes"] == sum(_os_bytes(a) for a in argv)


def test_a_signal_storm_keeps_the_first_names_and_counts_the_rest() -> None:
    """The child keeps the names of the first LIST_ITEMS signals it forwards and counts the rest
    (memory stays flat under a storm); the end record adds both counts."""
    from carbonwrap.run.child import Child

    child = Child(["sleep", "30"], dict(os.environ))
    try:
        for _ in range(records.LIST_ITEMS + 250):
            child._forward(signal.SIGUSR1, None)
    finally:
        child.send(signal.SIGKILL)
        child.wait()
        child.restore_signals()
    assert len(child.received) == records.LIST_ITEMS and child.received_not_kept == 250
    record = records.end(
        time_s=0.0, elapsed_s=1.0, exit_code=0, signal=None, cpu_s=0.0, energy_j={},
        device_energy_j={}, leftover_pids=[], signals_received=child.received,
        signals_not_kept=child.received_not_kept,
    )  # fmt: skip
    assert record["signals_received"] == ["SIGUSR1"] * records.LIST_ITEMS
    assert record["signals_received_cut"] == 250
