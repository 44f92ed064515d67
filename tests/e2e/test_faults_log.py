"""The log's storage fails during a run: the disk fills up (a 64 KiB tmpfs), the directory is
deleted, it is made read-only. The child is never affected, carbonwrap exits with its status,
the log keeps everything up to the fault (whole lines only) and says what happened."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, is_root, records

from carbonwrap.runlog.reader import RecordReader

BURN = """
import os, sys, time
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
sys.exit(5)
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if not is_root():
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def start(workdir: Path, log_dir: Path) -> subprocess.Popen[str]:
    ready, go = workdir / "ready", workdir / "go"
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--interval", "0.05", "--log-interval", "0.05",
                "--log-dir", str(log_dir), "--json", str(workdir / "r.json"),
                "--", sys.executable, "-c", BURN, str(ready), str(go)),
        cwd=workdir, env=cw_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    time.sleep(0.3)  # a few samples logged before the fault
    return proc


def finish(proc: subprocess.Popen[str], workdir: Path) -> tuple[str, dict[str, object]]:
    (workdir / "go").write_text("")
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 5, stderr  # the child's status, whatever happened to the log
    report = json.loads((workdir / "r.json").read_text())
    assert report["exit_code"] == 5 and report["cpu_seconds"] >= 0.25  # all of it measured
    return stderr, report


def fill(directory: Path) -> Path:
    """Write until the file system is full."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), open(filler, "wb", buffering=0) as f:
        while True:
            f.write(b"x" * 512)
    return filler


def the_log(directory: Path) -> Path:
    (log,) = directory.glob("carbonwrap-*.jsonl")
    return log


def writes_stop(log: Path) -> None:
    """Until the log stops growing: tmpfs hands out space by the page, so the log's last page
    still takes a few records after the disk is full (how many depends on where the file ends:
    a fixed sleep made this test fail now and then)."""
    deadline = time.monotonic() + 20
    size, since = log.stat().st_size, time.monotonic()
    while time.monotonic() - since < 0.3:  # six sample intervals without a byte written
        assert time.monotonic() < deadline, "the log kept growing on a full disk"
        time.sleep(0.02)
        if log.stat().st_size != size:
            size, since = log.stat().st_size, time.monotonic()


def test_disk_full_until_the_end(workdir: Path, small_disk: Path) -> None:
    proc = start(workdir, small_disk)
    fill(small_disk)
    writes_stop(the_log(small_disk))  # samples that cannot be written from here on
    stderr, report = finish(proc, workdir)
    reader = RecordReader(the_log(small_disk))
    recs = list(reader)
    assert reader.bad_lines == 0  # whole lines only: no half-written record
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "start" and kinds.count("sample") >= 1
    assert "No space left on device" in stderr and stderr.count("\n") == 1
    assert any("No space left on device" in n for n in report["notes"])  # type: ignore[union-attr]


def test_disk_full_for_a_while(workdir: Path, small_disk: Path) -> None:
    proc = start(workdir, small_disk)
    filler = fill(small_disk)
    writes_stop(the_log(small_disk))
    filler.unlink()  # space again
    time.sleep(0.2)
    finish(proc, workdir)
    reader = RecordReader(the_log(small_disk))
    recs = list(reader)
    assert reader.bad_lines == 0
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 5
    warnings = [r["message"] for r in recs if r["type"] == "warning"]
    assert any("could not be written (No space left on device)" in w for w in warnings), warnings


def test_log_directory_deleted(workdir: Path) -> None:
    logs = workdir / "logs"
    proc = start(workdir, logs)
    before = records(the_log(logs))
    shutil.rmtree(logs)
    time.sleep(0.2)
    finish(proc, workdir)
    recs = records(the_log(logs))  # written again, in full
    assert recs[: len(before)] == before
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 5
    warnings = [r["message"] for r in recs if r["type"] == "warning"]
    assert any("was removed during the run" in w for w in warnings), warnings


def test_log_directory_made_read_only(workdir: Path) -> None:
    """A read-only bind mount over the directory (root ignores mode bits): the open log file
    keeps being written, as it does for a user whose directory is chmod 555."""
    logs = workdir / "logs"
    proc = start(workdir, logs)
    if is_root() and subprocess.run(["mount", "--bind", str(logs), str(logs)]).returncode == 0:
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(logs)], check=True)
            with pytest.raises(OSError):
                (logs / "probe").write_text("")
            finish(proc, workdir)
        finally:
            subprocess.run(["umount", "-l", str(logs)], check=False)
    else:
        logs.chmod(0o555)
        finish(proc, workdir)
    recs = records(the_log(logs))
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 5
    assert not [r for r in recs if r["type"] == "warning" and "log" in str(r["message"])]


def test_the_json_report_on_a_full_disk_is_one_line_and_the_status_stays(
    workdir: Path, small_disk: Path
) -> None:
    fill(small_disk)
    result = subprocess.run(
        cw_argv("run", "-q", "--json", str(small_disk / "r.json"), "--",
                sys.executable, "-c", "raise SystemExit(4)"),
        cwd=workdir, env=cw_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (4, 125), result.stderr
    assert os.path.exists(workdir / "logs")
