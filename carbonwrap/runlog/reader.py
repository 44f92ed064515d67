"""Read carbonwrap logs back: tolerant line parsing, and the fast path `report` uses (energy
totals only grow, so most sample lines need not be parsed)."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from carbonwrap.runlog.records import SAMPLE_START, SAMPLE_TIME, Record, parse_utc
from carbonwrap.runlog.summary import elapsed_of

# Reading. Logs are input: never trust them. A file is a carbonwrap log when its first line is a
# start record of our schema; other lines that are not JSON objects with a `type` are counted.
LOG_SCHEMA_FAMILY = "carbonwrap.log/"
# No record carbonwrap writes is longer (a start record holds argv, which the kernel caps at a
# few MiB): a longer line is skipped and counted, never held whole (memory stays bounded).
_MAX_LINE = 4 << 20
TOO_LONG = b"\x00\n"  # what a line over _MAX_LINE reads as: not JSON, so a counted bad line
_BLOCK = 4 << 20
_SAMPLE = b"\n" + SAMPLE_START  # a sample line, after the newline that ends the line before
_NOT_SAMPLE = re.compile(rb"\n(?!" + re.escape(SAMPLE_START) + rb")")
_SAMPLE_MINUTE = re.compile(rb"\n" + SAMPLE_TIME)


_RAW_DECODE = json.JSONDecoder().raw_decode
_JSON_SPACE = " \t\n\r"


def parse_line(raw: bytes | bytearray) -> Record | None:
    """The record on one line; None when it is not a JSON object with a string `type`.
    Accepts what `json.loads` accepts (raw_decode first: it skips work a log line never needs)."""
    try:
        text = raw.decode("utf-8", "surrogatepass")
        try:
            record, end = _RAW_DECODE(text)
        except ValueError:  # not JSON, or JSON after leading white space
            record, end = json.loads(text), len(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if end != len(text) and text[end:].strip(_JSON_SPACE):
        return None  # more after the value: json.loads refuses that too
    if isinstance(record, dict) and isinstance(record.get("type"), str):
        return record
    return None


def is_log_start(record: Record | None) -> bool:
    schema = record.get("schema") if record is not None else None
    return (
        record is not None
        and record["type"] == "start"
        and isinstance(schema, str)
        and schema.startswith(LOG_SCHEMA_FAMILY)
    )


class RecordReader:
    """Every record of one log, streamed in order (memory does not grow with the log);
    `bad_lines` counts the lines skipped so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bad_lines = 0

    def __iter__(self) -> Iterator[Record]:
        with open(self.path, "rb") as f:
            for raw in bounded_lines(f):
                record = parse_line(raw)
                if record is None:
                    self.bad_lines += 1
                else:
                    yield record


def bounded_lines(f: BinaryIO) -> Iterator[bytes]:
    """The lines of `f`, each with its newline; a line longer than _MAX_LINE bytes is read past
    in pieces and comes out as TOO_LONG."""
    while line := f.readline(_MAX_LINE + 1):
        if len(line) > _MAX_LINE and not line.endswith(b"\n"):
            while (rest := f.readline(_BLOCK)) and not rest.endswith(b"\n"):
                pass
            line = TOO_LONG
        yield line


class Irregular(Exception):
    """The log is not laid out as carbonwrap writes it: fold every record instead."""


class NeedBuckets(Exception):
    """The log has measured intensity: read it again with `buckets=True`."""


@dataclass
class ScanCounts:
    bad_lines: int = 0
    sample_lines: int = 0  # all of them, including those not parsed


def essential_records(
    path: str | Path, bucket_s: float, counts: ScanCounts, *, buckets: bool = False
) -> Iterator[Record]:
    """The records of a log that a fold needs to reach the totals a fold of all of them
    reaches, in log order; nothing if `path` is not a carbonwrap log.

    Sample and end records hold totals since the start (`events.sample`), and the fold prices
    the difference between consecutive ones at the intensity in force, split in proportion to
    time where an intensity record's time falls between them, in `bucket_s` buckets
    (`ledger.CarbonLedger`). The differences telescope, so it is enough to fold every record
    that is not a sample, the last sample before each intensity record and, when the record's
    time is later than that sample's, the samples after it up to the first one at or after that
    time (the interval the fold splits), and the last sample of the log, plus, with `buckets`
    (for measured intensity, which re-prices buckets), the last sample of each bucket. Sample
    lines are recognised by their first bytes and parsed only when needed; memory does not grow
    with the log. Raises `NeedBuckets` at a measured
    intensity record without `buckets`, and `Irregular` where the log is not as `EventLog`
    writes it (a sample line that does not end in `}`, a sample record written differently, a
    sample time not in `utc_iso` form): fold every record of such a log instead.
    """
    if bucket_s % 60 or 3600 % bucket_s:
        raise ValueError("buckets must be whole minutes that divide an hour")
    minutes = int(bucket_s) // 60
    split = _Split()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        covered = 0  # file offset of the last sample or end record folded
        last_sample: tuple[int, bytes] | None = None  # the latest sample line passed
        head = True
        for base, buf, end in _pieces(fd, os.fstat(fd).st_size):
            # buf[0:end] holds whole lines, each after a newline; buf[k] is at file offset base + k.
            begin = 0
            if head:
                head = False
                begin = buf.find(b"\n", 1, end)
                start = parse_line(bytes(buf[1:begin]))
                if start is None or not is_log_start(start):
                    return
                yield start
            after = begin  # where the samples an intensity change still waits for are looked for
            count = buf.count(_SAMPLE, begin, end)
            counts.sample_lines += count
            # Every line should end in "}": count the samples that follow one, and look at the
            # line before each other record and at the last line.
            first = buf.startswith(_SAMPLE, begin, end)
            framed = buf.count(b"}" + _SAMPLE, begin, end) == count - first
            framed = framed and buf.endswith(b"}\n", begin, end)
            others = [m.start() for m in _NOT_SAMPLE.finditer(buf, begin, end - 1)]
            if buckets:
                ends = _bucket_ends(buf, begin, end, minutes)
                points = sorted([*((i, False) for i in others), *((k, True) for k in ends)])
            else:
                points = [(i, False) for i in others]
            for i, is_sample in points:
                while split.waiting and (k := buf.find(_SAMPLE, after, i + 1)) >= 0:
                    after = k + 1
                    if base + k + 1 > covered:
                        covered = base + k + 1
                        yield split.folded(_sample_at(buf, k, covered))
                after = i + 1
                if is_sample:
                    if base + i + 1 > covered:
                        covered = base + i + 1
                        yield split.folded(_sample_at(buf, i, covered))
                    continue
                framed = framed and (i == 0 or buf[i - 1] == 0x7D)  # "}"
                record = parse_line(_line_after(buf, i))
                if record is None:
                    counts.bad_lines += 1
                    continue
                kind = record["type"]
                if kind == "sample":
                    raise Irregular(f"{path}: a sample record not written as carbonwrap writes it")
                if kind == "start":  # logs joined end to end (cat a b): the fold decides
                    raise Irregular(f"{path}: a second start record")
                if kind == "intensity" and record.get("kind") == "measured" and not buckets:
                    raise NeedBuckets
                if kind == "intensity" or (kind == "end" and buckets):
                    # The last sample before it: where an intensity change splits an interval;
                    # with buckets, where the energy before an end record in a bucket of its
                    # own ends (measured windows price each bucket apart).
                    k = buf.rfind(_SAMPLE, begin, i)
                    if k >= 0 and base + k + 1 > covered:
                        covered = base + k + 1
                        yield split.folded(_sample_at(buf, k, covered))
                    elif k < 0 and last_sample is not None and last_sample[0] > covered:
                        covered = last_sample[0]
                        yield split.folded(_parse_sample(last_sample[1], covered))
                if kind == "intensity" and record.get("kind") != "measured":
                    split.change(record)
                elif kind == "end":
                    covered = base + i + 1
                    split.folded(record)
                yield record
            while split.waiting and (k := buf.find(_SAMPLE, after, end - 1)) >= 0:
                after = k + 1
                if base + k + 1 > covered:
                    covered = base + k + 1
                    yield split.folded(_sample_at(buf, k, covered))
            if not framed:
                _check_framing(bytes(buf[begin + 1 : end - 1]))
            k = buf.rfind(_SAMPLE, begin, end - 1)
            if k >= 0:
                last_sample = (base + k + 1, _line_after(buf, k))
                if buckets and last_sample[0] > covered:  # the next piece may start a bucket
                    covered = last_sample[0]
                    yield split.folded(_parse_sample(last_sample[1], covered))
        if last_sample is not None and last_sample[0] > covered:
            yield _parse_sample(last_sample[1], last_sample[0])
    finally:
        os.close(fd)


class _Split:
    """Whether the fold still has an intensity change to split a sample interval at, as
    `ledger.CarbonLedger` decides it: a change later than the samples folded so far waits for
    the first sample at or after it."""

    def __init__(self) -> None:
        self.folded_to_s = 0.0  # the elapsed time the samples folded so far reach
        self.change_at_s: float | None = None  # the latest change still waiting, elapsed s

    @property
    def waiting(self) -> bool:
        return self.change_at_s is not None

    def change(self, record: Record) -> None:
        at = elapsed_of(record)
        floor = self.folded_to_s if self.change_at_s is None else self.change_at_s
        if at is not None and at > floor:
            self.change_at_s = at

    def folded(self, record: Record) -> Record:
        """`record`, a sample or end record the fold is given; what it ends."""
        if parse_utc(record.get("time")) is None:
            return record  # the fold takes no energy from it (no time)
        elapsed = elapsed_of(record)
        if elapsed is None or (self.change_at_s is not None and self.change_at_s <= elapsed):
            self.change_at_s = None
        if elapsed is not None:
            self.folded_to_s = max(self.folded_to_s, elapsed)
        return record


def _pieces(fd: int, size: int) -> Iterator[tuple[int, bytearray, int]]:
    """The file as (base, buf, end): buf[0:end] is a run of whole lines that starts with the
    newline ending the line before (for the first line, one put there) and ends with a newline
    (added to an unterminated last line), so that every line follows a newline; buf[k] is at
    file offset base + k. One buffer is reused: copy what you keep. A first line longer than
    _MAX_LINE ends the file (no start record is that long: not a log); a later one is read past
    and comes out as TOO_LONG, as `bounded_lines` gives it (the buffer never grows beyond
    _MAX_LINE + 2 bytes, so a line that fills it is too long)."""
    buf = bytearray(min(_BLOCK, size) + 2)
    buf[0] = 0x0A  # "\n"
    base, held = -1, 1  # buf[0:held] is carried over: a newline and a partial line
    left = size  # bytes to read: the size when we began (a log still written may grow)
    skipping = False  # reading past the rest of a line that is too long
    while left > 0:
        if held == len(buf):  # a line longer than the buffer
            if len(buf) >= _MAX_LINE + 2:
                if base < 0:
                    return
                base += held - 2  # buf[2] is where the next byte read lands
                buf[1:2], held, skipping = TOO_LONG[:1], 2, True
            else:
                buf.extend(bytearray(min(max(len(buf), _BLOCK), _MAX_LINE + 2 - len(buf))))
        with memoryview(buf) as view:
            got = os.readv(fd, [view[held : held + left]])
        if not got:
            break
        left -= got
        filled = held + got
        if skipping:  # drop what was read up to the line's end; keep file offsets right
            end_of_line = buf.find(b"\n", held, filled)
            if end_of_line < 0:
                base += filled - held
                continue
            base += end_of_line - held
            buf[held : held + filled - end_of_line] = buf[end_of_line:filled]
            filled = held + filled - end_of_line
            skipping = False
        cut = buf.rfind(b"\n", held, filled)
        if cut < 0:
            held = filled
            continue
        yield base, buf, cut + 1
        base += cut
        buf[: filled - cut] = buf[cut:filled]
        held = filled - cut
    if skipping or held > _MAX_LINE + 1:  # the file ends inside a line that is too long
        buf[1:3], held = TOO_LONG, 3
        yield base, buf, held
    elif held > 1:
        buf[held : held + 1] = b"\n"
        yield base, buf, held + 1


def _line_after(buf: bytes | bytearray, newline: int) -> bytes:
    return bytes(buf[newline + 1 : buf.index(b"\n", newline + 1)])


def _sample_at(buf: bytearray, newline: int, offset: int) -> Record:
    return _parse_sample(_line_after(buf, newline), offset)


def _parse_sample(raw: bytes, offset: int) -> Record:
    record = parse_line(raw)
    if record is None or record["type"] != "sample":
        raise Irregular(f"a damaged sample line at byte {offset}")
    return record


def _check_framing(lines: bytes) -> None:
    """Some line does not end in `}`: fine for a damaged non-sample line (it is counted), not for
    a damaged sample line, which the fold would skip: fold the whole log instead."""
    for line in lines.split(b"\n"):
        if line.startswith(_SAMPLE[1:]) and not line.endswith(b"}"):
            raise Irregular("a damaged sample line")


def _bucket_ends(buf: bytearray, begin: int, end: int, minutes: int) -> list[int]:
    """Where the last sample line of each run of samples in one bucket of `minutes` starts (the
    newline before it), in log order, but for the piece's last run."""
    times = _SAMPLE_MINUTE.findall(buf, begin, end)
    if len(times) != buf.count(_SAMPLE, begin, end):
        raise Irregular("a sample time not in the form utc_iso writes")
    found: list[int] = []
    pos = begin
    current: tuple[bytes, int] | None = None
    for (hour, minute), _ in itertools.groupby(times):
        bucket = (hour, int(minute) // minutes)
        if current is not None and bucket != current:
            # The first sample of this run, and the sample line just before it.
            pos = buf.find(_SAMPLE + b'"time":"' + hour + minute, pos, end)
            found.append(buf.rfind(_SAMPLE, begin, pos))
        current = bucket
    return found


def iter_logs(paths: list[Path]) -> Iterator[str]:
    """The files named, and every *.jsonl file under the directories named (recursively, in
    name order, following links to directories but never into one already visited), each file
    once. Paths that do not exist, and files that are not regular files, are left out."""
    seen: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        if path.is_dir():
            yield from _walk(str(path), st, seen)
        elif path.is_file() and _first_time(seen, st.st_dev, st.st_ino):
            yield str(path)  # a regular file: a FIFO could block


def _first_time(seen: set[tuple[int, int]], st_dev: int, st_ino: int) -> bool:
    if (st_dev, st_ino) in seen:
        return False
    seen.add((st_dev, st_ino))
    return True


def _walk(top: str, st: os.stat_result, seen: set[tuple[int, int]]) -> Iterator[str]:
    """The *.jsonl files under `top`, depth first in name order. An explicit stack, one entry
    per level (the entries still to visit there): a tree thousands of levels deep costs no
    Python frames. Directories deeper than PATH_MAX cannot be opened by name and are passed by,
    as unreadable ones are (their logs could not be opened by name either)."""
    if not _first_time(seen, st.st_dev, st.st_ino):
        return
    stack = [(_entries(top), st.st_dev)]
    while stack:
        entries, device = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_dir():
                found = entry.stat()
                if _first_time(seen, found.st_dev, found.st_ino):
                    stack.append((_entries(entry.path), found.st_dev))
            elif entry.name.endswith(".jsonl") and entry.is_file():
                # A plain file is on its directory's device; a link may point anywhere.
                st_dev = entry.stat().st_dev if entry.is_symlink() else device
                st_ino = entry.stat().st_ino if entry.is_symlink() else entry.inode()
                if _first_time(seen, st_dev, st_ino):
                    yield entry.path
        except OSError:
            continue  # a dangling link, or a file removed while walking


def _entries(directory: str) -> Iterator[os.DirEntry[str]]:
    """A directory's entries in name order (read whole and closed: no descriptor stays open
    per level); none when it cannot be read (unreadable, gone, or its path too long)."""
    try:
        with os.scandir(directory) as it:
            return iter(sorted(it, key=lambda e: e.name))
    except OSError:
        return iter(())
