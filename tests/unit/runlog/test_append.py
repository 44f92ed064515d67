"""Adding records to a finished log (`runlog/append.py`): one write a batch, a lock against
another reprice, never another user's file or symlink, nothing left of a failed write; and
records after the end record folded as if the poller had logged them."""

from __future__ import annotations

import fcntl
import json
import os
import resource
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import NOBODY, call_as_nobody, is_root
from log_records import T0, assert_same, fold_all, intensity_record, sample_record, start_record
from log_records import write as write_log

from carbonwrap.report.read import summarize_log
from carbonwrap.runlog import records as events
from carbonwrap.runlog.append import FinishedLog, LogRefused, append_after

needs_root = pytest.mark.skipif(not is_root(), reason="needs root to give files to nobody")
ALIGNED = 300 - T0 % 300  # seconds after T0 to the next 5-minute boundary


def finished_log(path: Path) -> Path:
    lines: list[Any] = [start_record(), intensity_record(0, 200.0, "static")]
    lines += [sample_record(t, 5.0 * t, 1.0 * t) for t in range(10, 600, 10)]
    lines.append(sample_record(600, 3000.0, 600.0, kind="end"))
    return write_log(path, lines)


def measured(t: float, value: float = 100.0) -> dict[str, Any]:
    record: dict[str, Any] = intensity_record(t, value, "measured", window_s=300)
    record["repriced"] = True
    return record


def read(path: Path) -> tuple[list[dict[str, Any]], tuple[int, int], int]:
    with FinishedLog.open(str(path), write=False) as log:
        found = list(log.records())
        return found, log.identity, log.read_to


# --- the fold ------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset_s", [0.0, 3.3])
def test_measured_windows_after_the_end_record_fold_as_those_before_it(
    tmp_path: Path, offset_s: float
) -> None:
    """The end record in another bucket than the last sample (a run's last log interval
    crosses a 5-minute boundary: about one run in thirty). The fast reading kept the last
    sample before a record only for intensity records, so the energy of the run's last bucket
    was priced in the end's bucket, at its window's value (before the fix: CO2e 0.792 g
    against the full fold's 0.773 g)."""
    at = ALIGNED + offset_s
    lines: list[Any] = [start_record(time=events.utc_iso(T0 + at))]
    lines.append(intensity_record(at, 200.0, "static"))
    samples = [sample_record(at + t, 5.0 * t, 1.0 * t) for t in range(10, 1800, 10)]
    end = sample_record(at + 1801.2, 9006.0, 1801.2, kind="end")
    windows = [measured(at - offset_s + t, 100.0 + t / 10) for t in range(300, 2400, 300)]
    after = write_log(tmp_path / "after.jsonl", [*lines, *samples, end, *windows])
    before = write_log(tmp_path / "before.jsonl", [*lines, *windows, *samples, end])
    full = fold_all(after)
    assert full.intensity_measured_share > 0.99
    assert_same(summarize_log(after), full)
    assert_same(summarize_log(before), fold_all(before))
    assert full.co2e_g == pytest.approx(fold_all(before).co2e_g)


# --- appending ----------------------------------------------------------------------------------


def test_append_after_writes_the_batch_once_after_what_was_read(tmp_path: Path) -> None:
    path = finished_log(tmp_path / "run.jsonl")
    found, identity, read_to = read(path)
    assert [r["type"] for r in found][-1] == "end" and read_to == path.stat().st_size
    handed: list[list[dict[str, Any]]] = []

    def decide(added: list[dict[str, Any]]) -> list[dict[str, Any]]:
        handed.append(added)
        return [measured(300), measured(600)]

    batch = append_after(str(path), identity, read_to, decide)
    assert handed == [[]] and len(batch) == 2
    tail = path.read_bytes()[read_to:]
    assert tail == b"".join(events.encode(r) for r in batch)
    assert path.stat().st_mode & 0o777 == 0o600  # the writer's mode, kept


def test_records_added_since_the_read_are_handed_to_decide(tmp_path: Path) -> None:
    """Another reprice wrote between this one's reading and its writing: this one sees its
    records under the lock and can leave those windows out."""
    path = finished_log(tmp_path / "run.jsonl")
    _, identity, read_to = read(path)
    append_after(str(path), identity, read_to, lambda added: [measured(300)])
    seen: list[list[dict[str, Any]]] = []
    batch = append_after(str(path), identity, read_to, lambda added: seen.append(added) or [])
    assert batch == [] and len(seen[0]) == 1 and seen[0][0]["valid_to"] == events.utc_iso(T0 + 300)
    assert path.read_bytes().count(b'"repriced":true') == 1


def test_a_held_lock_is_waited_for_then_refused(tmp_path: Path) -> None:
    path = finished_log(tmp_path / "run.jsonl")
    _, identity, read_to = read(path)
    holder = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(LogRefused, match="another carbonwrap reprice has held its lock"):
            append_after(str(path), identity, read_to, lambda added: [measured(300)], wait_s=0.2)
        assert path.stat().st_size == read_to
    finally:
        os.close(holder)  # releases the lock
    assert append_after(str(path), identity, read_to, lambda added: [measured(300)])


def test_a_log_replaced_or_cut_since_it_was_read_is_not_touched(tmp_path: Path) -> None:
    path = finished_log(tmp_path / "run.jsonl")
    _, identity, read_to = read(path)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    copy.chmod(0o600)
    copy.replace(path)  # the same bytes, another file
    with pytest.raises(LogRefused, match="replaced since it was read"):
        append_after(str(path), identity, read_to, lambda added: [measured(300)])
    _, identity, read_to = read(path)
    os.truncate(path, read_to - 10)
    with pytest.raises(LogRefused, match="shorter than when it was read"):
        append_after(str(path), identity, read_to, lambda added: [measured(300)])


def test_a_line_cut_off_by_a_crash_is_ended_before_the_batch(tmp_path: Path) -> None:
    path = finished_log(tmp_path / "run.jsonl")
    with path.open("ab") as f:
        f.write(b'{"type":"warning","mess')  # a write cut short
    found, identity, read_to = read(path)
    assert read_to == path.stat().st_size - len(b'{"type":"warning","mess')  # whole lines only
    assert found[-1]["type"] == "end"
    append_after(str(path), identity, read_to, lambda added: [measured(300)])
    last = path.read_bytes().splitlines()[-1]
    assert json.loads(last)["repriced"] is True  # whole, on its own line


def test_a_write_that_fails_leaves_nothing_of_the_batch(tmp_path: Path) -> None:
    """A full disk, for real: RLIMIT_FSIZE lets the batch's first bytes in, then EFBIG."""
    path = finished_log(tmp_path / "run.jsonl")
    _, identity, read_to = read(path)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (read_to + 40, read_to + 40))
            big = [measured(300 * k) for k in range(1, 20)]
            try:
                append_after(str(path), identity, read_to, lambda added: big)
                os.write(write_fd, b"written")
            except LogRefused as exc:
                os.write(write_fd, exc.reason.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    assert said.startswith("writing it failed: File too large; nothing was added")
    assert path.stat().st_size == read_to


def test_a_fifo_or_a_directory_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(LogRefused, match="not a regular file"):
        FinishedLog.open(str(tmp_path / "fifo.jsonl"), write=True)
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(LogRefused, match="not a regular file"):
        FinishedLog.open(str(tmp_path / "dir.jsonl"), write=False)


def test_a_directory_anyone_may_write_without_the_sticky_bit_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = finished_log(shared / "run.jsonl")
    shared.chmod(0o777)
    with pytest.raises(LogRefused, match="writable by everyone without the sticky bit"):
        FinishedLog.open(str(path), write=True)


def test_own_symlinks_are_followed(tmp_path: Path) -> None:
    path = finished_log(tmp_path / "run.jsonl")
    (tmp_path / "link.jsonl").symlink_to("run.jsonl")
    _, identity, read_to = read(tmp_path / "link.jsonl")
    append_after(str(tmp_path / "link.jsonl"), identity, read_to, lambda a: [measured(300)])
    assert path.read_bytes().count(b'"repriced":true') == 1


@needs_root
def test_another_users_symlink_is_not_followed(tmp_path: Path) -> None:
    finished_log(tmp_path / "run.jsonl")
    link = tmp_path / "link.jsonl"
    link.symlink_to("run.jsonl")
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(LogRefused, match="symlink owned by uid 65534, neither yours nor root"):
        FinishedLog.open(str(link), write=False)


@needs_root
def test_only_the_owner_or_root_adds_to_a_log() -> None:
    with tempfile.TemporaryDirectory() as name:  # pytest's own is private to root
        top = Path(name)
        top.chmod(0o755)
        path = finished_log(top / "run.jsonl")
        path.chmod(0o666)  # writable by anyone: still not theirs to add to
        _, identity, read_to = read(path)

        def as_nobody() -> str:
            try:
                append_after(str(path), identity, read_to, lambda added: [measured(300)])
            except LogRefused as exc:
                return exc.reason
            return "added"

        said = call_as_nobody(as_nobody)
        assert said == "it is owned by uid 0, not by you: only its owner (or root) may add to it"
        assert path.stat().st_size == read_to
        os.chown(path, NOBODY, NOBODY)  # a user's log, repriced by root: allowed, owner kept
        append_after(str(path), identity, read_to, lambda added: [measured(300)])
        assert path.stat().st_uid == NOBODY and path.stat().st_size > read_to
