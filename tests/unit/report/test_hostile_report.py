"""`report` over hostile logs: never a traceback, never unbounded memory, bad lines counted.

Logs are input that anything may have written or damaged: a crash, a full disk, another program,
someone's editor. Hypothesis writes logs of valid, mistyped and broken records and raw bytes,
and every output format must come out whole (strict JSON: no NaN, no Infinity)."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from log_records import assert_same, fold_all, sample_record, start_record

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.report.read import fold_every_record, summarize_log
from carbonwrap.runlog import reader as logread
from carbonwrap.runlog.summary import Fold

RENDERINGS = [
    {"output_format": "table"},
    {"output_format": "json"},
    {"output_format": "csv"},
    {"output_format": "codecarbon"},
    {"output_format": "csv", "group_by": "command"},
    {"output_format": "json", "group_by": "job"},
    {"output_format": "table", "group_by": "tag:team"},
    {"html": "-"},
]


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def report_everything(paths: list[Path]) -> dict[str, str]:
    """Every rendering of the report over `paths`, in process; each must succeed."""
    out: dict[str, str] = {}
    for kwargs in RENDERINGS:
        stdout, stderr = io.StringIO(), io.StringIO()
        code = report(ReportOptions(paths=paths, **kwargs), {}, stdout, stderr)
        assert code == 0, stderr.getvalue()
        assert "Traceback" not in stderr.getvalue()
        out[json.dumps(kwargs)] = stdout.getvalue()
    _strict(out[json.dumps({"output_format": "json"})])
    return out


# Values a log may hold where a number, string or table is expected.
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),  # json reads these as int
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "0", "1e999", "NaN", "2026-13-45T99:99:99Z", "\u202e", "\x00"]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = {
    "start": ["run_id", "time", "argv", "host", "pue", "region", "tags", "job", "components"],
    "sample": ["time", "elapsed_s", "cpu_s", "energy_j", "device_energy_j", "gpus"],
    "end": ["time", "elapsed_s", "exit_code", "signal", "energy_j", "leftover_pids", "gpus"],
    "intensity": ["intensity_g_per_kwh", "kind", "valid_from", "valid_to", "region", "source"],
    "warning": ["message"],
}


@st.composite
def _mistyped(draw: st.DrawFn) -> bytes:
    """A well-formed record whose fields hold anything at all (NaN and 400-digit numbers too)."""
    kind = draw(st.sampled_from(sorted(_FIELDS)))
    base = start_record() if kind == "start" else sample_record(draw(st.floats(0, 1e6)), 1.0, 1.0)
    base["type"] = kind
    for name in draw(st.lists(st.sampled_from(_FIELDS[kind]), max_size=4)):
        base[name] = draw(_value)
    return (json.dumps(base, allow_nan=True) + "\n").encode()


@st.composite
def _valid(draw: st.DrawFn) -> bytes:
    t = draw(st.floats(0, 1e7))
    energy = draw(st.one_of(st.floats(0, 1e6), st.sampled_from([1e308, 1.7e308, 5e-324])))
    kind = draw(st.sampled_from(["sample", "end"]))
    return (json.dumps(sample_record(t, energy, energy, kind)) + "\n").encode()


_line = st.one_of(
    _valid(),
    _mistyped(),
    st.binary(max_size=60).map(lambda b: b + b"\n"),  # anything, invalid UTF-8 included
    _valid().flatmap(lambda line: st.integers(1, len(line) - 1).map(lambda n: line[:n])),
    st.sampled_from(
        [
            b'{"type":"sample","elapsed_s":NaN,"energy_j":{"cpu":Infinity}}\n',
            b'{"type":"sample","elapsed_s":-Infinity,"cpu_s":1e999}\n',
            b'{"type":"end","exit_code":' + b"9" * 4000 + b"}\n",
            b'{"type":"sample","energy_j":{"cpu":' + b"9" * 5000 + b"}}\n",  # over int's limit
            b'{"type":"sample","gpus":{"\xc2\xb2":{"energy_j":1},"' + b"1" * 50 + b'":{}}}\n',
            b"[" * 100_000 + b"\n",  # deeper than the parser's recursion
            b'{"type":"warning","message":"\xed\xa0\x80"}\n',  # a lone surrogate
            b"\xef\xbb\xbf" + json.dumps(start_record()).encode() + b"\n",  # a BOM
            b"\r\n",
            b"\n",
        ]
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(_line, max_size=25),
    first=st.sampled_from(["start", "mistyped", "none"]),
)
def test_fuzzed_logs_never_break_the_report(tmp_path: Path, lines: list[bytes], first: str) -> None:
    head = {
        "start": [(json.dumps(start_record()) + "\n").encode()],
        "mistyped": [],
        "none": [],
    }[first]
    path = tmp_path / "fuzzed.jsonl"
    path.write_bytes(b"".join(head + lines))
    fast, full = summarize_log(path), fold_every_record(path)
    if full is None:
        assert fast is None
    else:
        # Sample lines the fast path need not parse are not checked, so it may count fewer
        # bad lines (a known limit, docs/RELIABILITY.md); every total is the same.
        reference = fold_all(path)
        assert fast is not None and fast.bad_lines <= reference.bad_lines
        fast.bad_lines = reference.bad_lines
        assert_same(fast, reference)
        for name in ("duration_s", "cpu_s", "co2e_g", "energy_j", "device_energy_j", "pue"):
            assert math.isfinite(getattr(full, name)), name
    report_everything([path])


def _log(tmp_path: Path, name: str, middle: list[bytes]) -> Path:
    lines = [(json.dumps(start_record(run_id=name)) + "\n").encode()]
    lines += [(json.dumps(sample_record(10, 100.0, 10.0)) + "\n").encode(), *middle]
    lines += [(json.dumps(sample_record(20, 200.0, 20.0, "end")) + "\n").encode()]
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize(
    "damage",
    [
        b'{"type":"sample","elapsed_s":1' + b"0" * 400 + b"}\n",  # OverflowError before the fix
        b'{"type":"start","schema":"carbonwrap.log/1","pue":' + b"7" * 400 + b"}\n",
        b'{"type":"sample","gpus":{"\xc2\xb2":{"energy_j":1}}}\n',  # "²".isdigit()
        b'{"type":"sample","elapsed_s":NaN,"cpu_s":Infinity,"energy_j":{"cpu":-Infinity}}\n',
    ],
)
def test_numbers_no_float_can_hold_are_ignored(tmp_path: Path, damage: bytes) -> None:
    path = _log(tmp_path, "huge", [damage])
    summary = summarize_log(path)
    assert summary is not None and summary.complete
    assert summary.duration_s == 20.0 and summary.energy_j == 220.0
    report_everything([path])


def test_energies_that_add_up_beyond_a_float_still_give_strict_json(tmp_path: Path) -> None:
    paths = []
    for n in range(3):
        record = sample_record(10, 1.7e308, 1.7e308, "end")
        lines = [json.dumps(start_record(run_id=f"r{n}")), json.dumps(record)]
        paths.append(tmp_path / f"r{n}.jsonl")
        paths[-1].write_text("\n".join(lines) + "\n")
    report_everything(paths)


def test_the_line_cap_holds_at_any_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logread, "_MAX_LINE", 1000)
    path = _log(tmp_path, "c", [b'{"type":"warning","message":"' + b"b" * 1500 + b'"}\n'])
    reference = fold_all(path)
    assert reference.bad_lines == 1 and reference.energy_j == 220.0
    for block in (16, 64, 999, 1001, 1002, 4000):
        monkeypatch.setattr(logread, "_BLOCK", block)
        assert_same(summarize_log(path), reference)


def test_symlink_loops_fifos_directories_and_dangling_links(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    good = _log(logs, "good", [])
    (logs / "loop").symlink_to(logs)  # a directory that contains itself
    (logs / "self.jsonl").symlink_to(logs / "self.jsonl")  # ELOOP
    (logs / "a.jsonl").symlink_to(logs / "b.jsonl")
    (logs / "b.jsonl").symlink_to(logs / "a.jsonl")
    (logs / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    (logs / "copy.jsonl").symlink_to(good)  # the same file twice: read once
    os.mkfifo(logs / "fifo.jsonl")  # reading would block forever
    (logs / "dir.jsonl").mkdir()
    (logs / "empty.jsonl").write_bytes(b"")
    out = report_everything([logs, good])
    document = _strict(out[json.dumps({"output_format": "json"})])
    assert document["totals"]["runs"] == 1 and document["logs"]["read"] == 1


def _deep_tree(top: Path, depth: int, logs_at: dict[int, bytes]) -> None:
    """top/d/d/…/d, `depth` levels, made relative to a descriptor (the path soon exceeds
    PATH_MAX); logs_at: level -> a log's bytes, written there as x.jsonl; at level 1000 a link
    back to the top (a loop)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
            if level in logs_at:
                log = os.open("x.jsonl", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
                os.write(log, logs_at[level])
                os.close(log)
            if level == 1000:
                os.symlink(top, "loop", dir_fd=fd)
    finally:
        os.close(fd)


def _remove_deep_tree(top: Path) -> None:
    """What shutil.rmtree cannot (it recurses per level): down to the bottom, then up through
    "..", each directory emptied and removed from its parent's descriptor."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    while "d" in os.listdir(fd):
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    while not os.path.samestat(os.fstat(fd), os.stat(top)):
        for name in os.listdir(fd):
            if name != "d":
                os.unlink(name, dir_fd=fd)
        parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        os.rmdir("d", dir_fd=parent)
        fd = parent
    os.close(fd)
    os.rmdir(top)


def test_a_tree_5000_levels_deep_is_walked_without_recursion(tmp_path: Path) -> None:
    """Before: RecursionError (a generator per level). Logs within PATH_MAX are found; deeper
    directories cannot be opened by name and are passed by, as unreadable ones are."""
    top = tmp_path / "deep"
    top.mkdir()
    log = _log(tmp_path, "template", []).read_bytes()
    try:
        _deep_tree(top, 5000, {1: log, 1000: log.replace(b"template", b"level1000"), 4999: log})
        found = list(logread.iter_logs([top]))
        depths = [len(Path(p).relative_to(top).parts) for p in found]
        assert depths == [1001, 2]  # in name order: d/ before x.jsonl
        stdout, stderr = io.StringIO(), io.StringIO()
        code = report(ReportOptions(paths=[top], output_format="json"), {}, stdout, stderr)
        assert code == 0 and stderr.getvalue() == ""
        assert _strict(stdout.getvalue())["totals"]["runs"] == 2
    finally:
        _remove_deep_tree(top)


def _report_as_nobody(paths: list[Path]) -> tuple[int, str, str]:
    """`report --json PATHS` in a forked child that dropped to uid nobody (root reads every
    file, so only another user meets a real EACCES): exit status, stdout, stderr."""
    import carbonwrap.render.exports  # noqa: F401  (now: nobody may not read the source tree)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # never return into pytest
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            stdout, stderr = io.StringIO(), io.StringIO()
            try:
                code = report(ReportOptions(paths=paths, output_format="json"), {}, stdout, stderr)
            except BaseException as exc:  # reported to the test, which fails on it
                code, stderr = 99, io.StringIO(f"Traceback: {exc!r}")
            os.write(write_end, json.dumps([code, stdout.getvalue(), stderr.getvalue()]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    code, out, err = json.loads(data)
    return code, out, err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_unreadable_files_and_directories_are_named_not_fatal() -> None:
    with tempfile.TemporaryDirectory() as name:  # pytest's own is private to root
        _unreadable_files_and_directories(Path(name))


def _unreadable_files_and_directories(top: Path) -> None:
    top.chmod(0o755)
    _log(top, "readable", []).chmod(0o644)
    _log(top, "secret", []).chmod(0o600)  # owned by root: nobody cannot read it
    closed = top / "closed"
    closed.mkdir(mode=0o700)
    _log(closed, "inside", [])
    code, out, err = _report_as_nobody([top])
    assert code == 0, err
    assert "Traceback" not in err
    assert "could not read" in err and "secret.jsonl" in err
    document = _strict(out)
    assert document["totals"]["runs"] == 1
    assert len(document["logs"]["unreadable"]) == 1


def test_bad_lines_are_counted_and_said(tmp_path: Path) -> None:
    path = _log(tmp_path, "bad", [b"\xff\xfe\n", b"{cut\n", b'{"type": 7}\n'])
    out = report_everything([path])
    assert "3 corrupt lines skipped" in out[json.dumps({"output_format": "table"})]
    document = _strict(out[json.dumps({"output_format": "json"})])
    assert document["logs"]["corrupt_lines"] == 3


def test_the_fold_of_a_hostile_start_record_keeps_its_defaults() -> None:
    fold = Fold()
    fold.add({"type": "start", "pue": 10**400, "argv": "not a list", "components": [1]})
    summary = fold.summary()
    assert summary.pue == 1.0 and summary.command is None
