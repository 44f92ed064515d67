"""Log files → one `RunSummary` per run, each through `Fold` (never another derivation): most
sample lines are skipped unparsed (`runlog/reader.essential_records`), many logs are read by
forked helpers, a run logged twice is counted once; the runs are streamed to a sink as they
are read (`read_into`), so memory does not grow with their summaries."""

from __future__ import annotations

import gc
import itertools
import marshal
import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from carbonwrap.report.model import ReadStats, run_key
from carbonwrap.runlog.ledger import BUCKET_S
from carbonwrap.runlog.reader import (
    Irregular,
    NeedBuckets,
    RecordReader,
    ScanCounts,
    essential_records,
    is_log_start,
    iter_logs,
)
from carbonwrap.runlog.records import Record
from carbonwrap.runlog.summary import ComponentSummary, Fold, GpuSummary, RunSummary


def summarize_log(path: str | Path) -> RunSummary | None:
    """The run in one log, as `Fold` over all its records gives it (`essential_records`: most
    sample lines need no parsing; memory stays flat); None if `path` is not a carbonwrap log."""
    for buckets in (False, True):
        counts = ScanCounts()
        records = essential_records(path, BUCKET_S, counts, buckets=buckets)
        try:
            first = next(records, None)
            if first is None:
                return None
            summary = fold_records(path, itertools.chain([first], records), 0)
        except NeedBuckets:
            continue  # measured intensity re-prices buckets: read again, keeping their ends
        except Irregular:
            return fold_every_record(path)
        summary.bad_lines = counts.bad_lines
        return summary
    raise AssertionError("unreachable: NeedBuckets comes only without buckets")


def fold_records(path: str | Path, records: Iterable[Record], bad_lines: int) -> RunSummary:
    fold = Fold()
    for record in records:
        fold.add(record)
    summary = fold.summary()
    summary.log_path = str(path)
    summary.bad_lines = bad_lines
    return summary


def fold_every_record(path: str | Path) -> RunSummary | None:
    """The slow, sure way: every record parsed and folded (streamed: memory stays flat)."""
    reader = RecordReader(Path(path))
    records = iter(reader)
    first = next(records, None)
    if first is None or reader.bad_lines or not is_log_start(first):
        return None  # a log's first line is its start record (as the fast reading has it)
    summary = fold_records(path, itertools.chain([first], records), 0)
    summary.bad_lines = reader.bad_lines  # counted while folding
    return summary


class RunSink(Protocol):
    """Where `read_into` streams the runs: each added once; a run whose fuller copy turns up
    later is removed (the copy read again: `summarize_log`) before the fuller one is added."""

    def add(self, s: RunSummary) -> None: ...

    def remove(self, s: RunSummary) -> None: ...


def read_runs(
    paths: Iterable[Path], workers: int | None = None
) -> tuple[list[RunSummary], ReadStats]:
    """One summary per run found under `paths`, sorted by start time; a run logged twice
    (copies) is counted once. `workers`: processes that read logs in parallel (default: one per
    usable CPU). Holds every summary: `read_into` streams them instead."""
    kept = _Kept()
    stats = read_into(paths, kept, workers)
    runs = sorted(kept.runs.values(), key=lambda s: (s.started_at, s.run_id))
    return runs, stats


class _Kept:
    def __init__(self) -> None:
        self.runs: dict[str, RunSummary] = {}

    def add(self, s: RunSummary) -> None:
        self.runs[run_key(s)] = s

    def remove(self, s: RunSummary) -> None:
        self.runs.pop(run_key(s), None)


def read_into(
    paths: Iterable[Path],
    sink: RunSink,
    workers: int | None = None,
    stats: ReadStats | None = None,
) -> ReadStats:
    """Every run found under `paths` into `sink`, as each log is read (memory does not grow
    with the summaries: the sink keeps what it needs), and what reading found into `stats`.
    What is kept per log: its path (in the list of files) and, per run, its id with what
    decides between two copies of it."""
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    # Hundreds of thousands of small objects, none in a cycle: the cycle collector would walk
    # them over and over (a third of the time for 10,000 logs) and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        found = ReadStats() if stats is None else stats
        _read_into(list(iter_logs(list(paths))), sink, workers, found)
        return found
    finally:
        if collecting:
            gc.enable()


# Per run read: (complete, duration_s, -bad_lines, its file's index in the list), what
# `_better_copy` compares; a run's other copies are read again only when one is fuller.
_Copy = tuple[bool, float, int, int]


def _read_into(files: list[str], sink: RunSink, workers: int, stats: ReadStats) -> None:
    seen: dict[str, _Copy] = {}
    for n, found in _summaries_of(files, workers):
        path = files[n]
        if isinstance(found, str):
            stats.unreadable.append(f"{path}: {found}")
            continue
        if found is None:
            stats.not_logs += 1
            continue
        stats.logs += 1
        stats.bad_lines += found.bad_lines
        key = run_key(found)
        copy = (found.complete, found.duration_s, -found.bad_lines, n)
        kept = seen.get(key)
        if kept is not None:
            stats.duplicates += 1
            if not _better_copy(copy, files[copy[3]], kept, files[kept[3]]):
                continue
            old = _summary_or_reason(files[kept[3]])
            if isinstance(old, RunSummary) and run_key(old) == key:
                stats.incomplete -= not old.complete
                sink.remove(old)
        seen[key] = copy
        stats.incomplete += not found.complete
        sink.add(found)
    stats.unreadable.sort()


def _better_copy(new: _Copy, new_path: str, old: _Copy, old_path: str) -> bool:
    """The fuller copy of a run (whatever order files are read in); on a tie, the first path."""
    a, b = new[:3], old[:3]
    return a > b or (a == b and new_path < old_path)


# Below this many files, starting a helper process costs more than it saves.
PARALLEL_MIN_FILES = 64
_CHUNK = 16  # files per claim: small enough to balance big logs between processes


def _summaries_of(files: list[str], workers: int) -> Iterator[tuple[int, RunSummary | str | None]]:
    """(index in `files`, its summary | None if not a log | why it could not be read), as each
    is read: none is held (helpers send each chunk as it is done). With `workers` > 1
    and many files, forked helpers and this process take chunks of files from a shared
    counter (whoever is free takes the next); helpers send summaries back as plain data by
    marshal, which is several times faster than pickling dataclasses. Order is not kept."""
    if workers <= 1 or len(files) < PARALLEL_MIN_FILES:
        for n, path in enumerate(files):
            yield n, _summary_or_reason(path)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    chunks = len(files) // _CHUNK + 1
    counter = context.Value("l", 0)
    receive, send = context.Pipe(duplex=False)
    helpers = [
        context.Process(target=_helper, args=(files, chunks, counter, send), daemon=True)
        for _ in range(workers - 1)
    ]
    for helper in helpers:
        helper.start()
    send.close()
    running = len(helpers)
    try:
        while (claimed := _claim(counter, chunks)) is not None:
            for n in _chunk(claimed, len(files)):
                yield n, _summary_or_reason(files[n])
            while running and receive.poll():
                running -= yield from _received(receive.recv_bytes())
        while running:
            try:
                data = receive.recv_bytes()
            except EOFError:
                raise RuntimeError("a process reading logs died") from None
            running -= yield from _received(data)
    finally:
        for helper in helpers:
            helper.join(timeout=1)
            if helper.is_alive():
                helper.terminate()
        receive.close()


def _claim(counter: Any, chunks: int) -> int | None:
    with counter.get_lock():
        claimed: int = counter.value
        if claimed >= chunks:
            return None
        counter.value = claimed + 1
    return claimed


def _chunk(claimed: int, files: int) -> range:
    return range(claimed * _CHUNK, min(files, (claimed + 1) * _CHUNK))


def _helper(files: list[str], chunks: int, counter: Any, send: Any) -> None:
    try:
        while (claimed := _claim(counter, chunks)) is not None:
            found = [(n, _summary_or_reason(files[n])) for n in _chunk(claimed, len(files))]
            send.send_bytes(marshal.dumps([(n, _pack(s) if isinstance(s, RunSummary) else s)
                                           for n, s in found]))  # fmt: skip
    except BaseException:
        import traceback

        send.send_bytes(marshal.dumps(traceback.format_exc()))
    finally:
        send.send_bytes(b"")  # done
        send.close()


def _received(data: bytes) -> Generator[tuple[int, RunSummary | str | None], None, int]:
    """Yield what a helper sent; return 1 when it says it is done."""
    if not data:
        return 1
    found = marshal.loads(data)
    if isinstance(found, str):
        raise RuntimeError(f"a process reading logs failed:\n{found}")
    for n, s in found:
        yield n, _unpack(s) if isinstance(s, dict) else s
    return 0


def _summary_or_reason(path: str) -> RunSummary | str | None:
    try:
        return summarize_log(path)
    except OSError as exc:
        return exc.strerror or str(exc)


def _pack(s: RunSummary) -> dict[str, Any]:
    packed = dict(vars(s))
    packed["components"] = {name: dict(vars(c)) for name, c in s.components.items()}
    packed["gpus"] = {index: dict(vars(g)) for index, g in s.gpus.items()}
    return packed


def _unpack(packed: dict[str, Any]) -> RunSummary:
    packed["components"] = {n: ComponentSummary(**c) for n, c in packed["components"].items()}
    packed["gpus"] = {i: GpuSummary(**g) for i, g in packed["gpus"].items()}
    return RunSummary(**packed)
