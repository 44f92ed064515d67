"""The JSON-lines log: the sample line layout the fast readers rely on is what the writer writes;
where it is written, in directories other users may share."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import NOBODY, is_root

from carbonwrap.errors import CarbonwrapError
from carbonwrap.runlog import records as events
from carbonwrap.runlog.writer import EventLog


def test_the_sample_line_layout_the_fast_readers_rely_on_is_what_the_log_writes() -> None:
    """`records.SAMPLE_START` / `SAMPLE_TIME` are the one statement of how a sample line
    begins; the reader and the series skip lines by them, so the writer must agree."""
    import re

    from carbonwrap.runlog.records import SAMPLE_START, SAMPLE_TIME, encode

    for time_s in (0.0, 1_764_000_000.0, 1_764_000_299.999_9):
        line = encode(
            events.sample(
                time_s=time_s, elapsed_s=1.0, cpu_s=0.5, energy_j={"cpu": 2.0},
                device_energy_j={"cpu": 3.0},
            )
        )  # fmt: skip
        assert line.startswith(SAMPLE_START) and line.endswith(b"}\n")
        found = re.match(SAMPLE_TIME, line)
        assert found is not None
        stamp = events.utc_iso(time_s)
        assert (found[1] + found[2]).decode() == stamp[:16]
    assert not encode(events.warning(time_s=0.0, elapsed_s=0.0, message="x")).startswith(
        SAMPLE_START
    )


# ── where the log is written: a directory other users may share ───────────────────────────────

needs_root = pytest.mark.skipif(not is_root(), reason="needs root to give files to nobody")


def test_log_directories_made_are_never_writable_by_others_whatever_the_umask(
    tmp_path: Path,
) -> None:
    previous = os.umask(0)
    try:
        log = EventLog(str(tmp_path / "a" / "b"), "run.jsonl")
    finally:
        os.umask(previous)
    log.close()
    for made in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(made.stat().st_mode) == 0o755, made
    assert stat.S_IMODE((tmp_path / "a" / "b" / "run.jsonl").stat().st_mode) == 0o600


@needs_root
def test_a_log_directory_that_is_another_users_symlink_is_refused(tmp_path: Path) -> None:
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, NOBODY, NOBODY)
    (shared / "logs").symlink_to(root_only)
    os.lchown(shared / "logs", NOBODY, NOBODY)
    with pytest.raises(CarbonwrapError, match="symlink owned by uid 65534") as caught:
        EventLog(str(shared / "logs"), "run.jsonl")
    assert str(caught.value).startswith(f"cannot write the log in {shared / 'logs'}: ")
    assert "\n" not in str(caught.value) and list(root_only.iterdir()) == []
    with pytest.raises(CarbonwrapError, match="symlink owned by uid 65534"):
        EventLog(str(shared / "logs" / "deeper"), "run.jsonl")  # nor below it: made nowhere
    assert list(root_only.iterdir()) == []


def test_a_log_directory_everyone_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(CarbonwrapError, match="writable by everyone without the sticky bit"):
        EventLog(str(shared), "run.jsonl")
    assert list(shared.iterdir()) == []
    shared.chmod(0o1777)  # as /tmp: a new file of its own, O_EXCL, is safe there
    EventLog(str(shared), "run.jsonl").close()
    assert stat.S_IMODE((shared / "run.jsonl").stat().st_mode) == 0o600


@needs_root
def test_a_name_planted_before_or_during_the_run_is_never_opened(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run.jsonl").symlink_to(victim)
    with pytest.raises(CarbonwrapError, match="File exists"):
        EventLog(str(logs), "run.jsonl")
    (logs / "run.jsonl").unlink()
    log = EventLog(str(logs), "run.jsonl")
    log.write(events.warning(time_s=0.0, elapsed_s=0.0, message="first"))
    # The directory removed and made again by another user, with a link at the log's name:
    # writing the log again (it was removed) must not follow it.
    os.rename(logs, tmp_path / "gone")
    logs.mkdir()
    os.chown(logs, NOBODY, NOBODY)
    (logs / "run.jsonl").symlink_to(victim)
    os.lchown(logs / "run.jsonl", NOBODY, NOBODY)
    log.write(events.warning(time_s=0.0, elapsed_s=0.0, message="second"))
    log.close()
    assert victim.read_text() == "root:x:0:0\n"
    assert log.failed is not None and "cannot be written again" in log.failed
