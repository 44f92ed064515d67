"""Log files → one `RunSummary` per run, each through `Fold` (never another derivation): most
sample lines are skipped unparsed (`runlog/reader.essential_records`), many logs are read by
forked helpers, a run logged twice is counted once."""

from __future__ import annotations

import gc
import itertools
import marshal
import os
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

from carbonwrap.report.model import ReadStats
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


def read_runs(
    paths: Iterable[Path], workers: int | None = None
) -> tuple[list[RunSummary], ReadStats]:
    """One summary per run found under `paths`; a run logged twice (copies) is counted once.
    `workers`: processes that read logs in parallel (default: one per usable CPU)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    # Hundreds of thousands of small objects, none in a cycle: the cycle collector would walk
    # them over and over (a third of the time for 10,000 logs) and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_runs(list(iter_logs(list(paths))), workers)
    finally:
        if collecting:
            gc.enable()


def _read_runs(files: list[str], workers: int) -> tuple[list[RunSummary], ReadStats]:
    stats = ReadStats()
    by_id: dict[str, RunSummary] = {}
    for path, found in _summaries_of(files, workers):
        if isinstance(found, str):
            stats.unreadable.append(f"{path}: {found}")
            continue
        if found is None:
            stats.not_logs += 1
            continue
        stats.logs += 1
        stats.bad_lines += found.bad_lines
        key = found.run_id or path
        kept = by_id.get(key)
        if kept is not None:
            stats.duplicates += 1
            if not _better_copy(found, kept):
                continue
        by_id[key] = found
    runs = sorted(by_id.values(), key=lambda s: (s.started_at, s.run_id))
    stats.incomplete = sum(not s.complete for s in runs)
    stats.unreadable.sort()
    return runs, stats


def _better_copy(new: RunSummary, old: RunSummary) -> bool:
    """The fuller copy of a run (whatever order files are read in); on a tie, the first path."""
    a = (new.complete, new.duration_s, -new.bad_lines)
    b = (old.complete, old.duration_s, -old.bad_lines)
    return a > b or (a == b and (new.log_path or "") < (old.log_path or ""))


# Below this many files, starting a helper process costs more than it saves.
PARALLEL_MIN_FILES = 64
_CHUNK = 16  # files per claim: small enough to balance big logs between processes


def _summaries_of(files: list[str], workers: int) -> Iterator[tuple[str, RunSummary | str | None]]:
    """(path, its summary | None if not a log | why it could not be read). With `workers` > 1
    and many files, forked helpers and this process take chunks of files from a shared
    counter (whoever is free takes the next); helpers send summaries back as plain data by
    marshal, which is several times faster than pickling dataclasses. Order is not kept."""
    if workers <= 1 or len(files) < PARALLEL_MIN_FILES:
        for path in files:
            yield path, _summary_or_reason(path)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    chunks = [files[i : i + _CHUNK] for i in range(0, len(files), _CHUNK)]
    counter = context.Value("l", 0)
    receive, send = context.Pipe(duplex=False)
    helpers = [
        context.Process(target=_helper, args=(chunks, counter, send), daemon=True)
        for _ in range(workers - 1)
    ]
    for helper in helpers:
        helper.start()
    send.close()
    running = len(helpers)
    try:
        while (claimed := _claim(counter, len(chunks))) is not None:
            for path in chunks[claimed]:
                yield path, _summary_or_reason(path)
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


def _helper(chunks: list[list[str]], counter: Any, send: Any) -> None:
    try:
        while (claimed := _claim(counter, len(chunks))) is not None:
            found = [(path, _summary_or_reason(path)) for path in chunks[claimed]]
            send.send_bytes(marshal.dumps([(p, _pack(s) if isinstance(s, RunSummary) else s)
                                           for p, s in found]))  # fmt: skip
    except BaseException:
        import traceback

        send.send_bytes(marshal.dumps(traceback.format_exc()))
    finally:
        send.send_bytes(b"")  # done
        send.close()


def _received(data: bytes) -> Generator[tuple[str, RunSummary | str | None], None, int]:
    """Yield what a helper sent; return 1 when it says it is done."""
    if not data:
        return 1
    found = marshal.loads(data)
    if isinstance(found, str):
        raise RuntimeError(f"a process reading logs failed:\n{found}")
    for path, s in found:
        yield path, _unpack(s) if isinstance(s, dict) else s
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
