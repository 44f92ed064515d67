"""`carbonwrap.track`: a real block of Python (CPU work in this process and in a real child)
measured in-process, its log read back by `report`'s reader as a run of kind block."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_env, logs_in, records, run_cw

import carbonwrap
from carbonwrap.errors import CarbonwrapError
from carbonwrap.measure.ownprocess import OwnProcessAccounting
from carbonwrap.render.final import compact_view, render_text
from carbonwrap.render.json import run_document
from carbonwrap.report.read import summarize_log
from carbonwrap.run.track import TrackError
from carbonwrap.sensors.pidstat import process_stat

CHILD_WORK = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Keywords for a quick block that reaches no network (a fixed intensity) and reads no
    developer's settings (a fresh working directory, no user file)."""
    monkeypatch.chdir(tmp_path)
    return {
        "log_dir": tmp_path / "logs",
        "intensity_g_per_kwh": 100,
        "interval_s": 0.1,
        "log_interval_s": 0.2,
        "quiet": True,
        "environ": cw_env(),
    }


def burn(seconds: float) -> float:
    """CPU work in this thread for `seconds` of its CPU time; returns the CPU time it took."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(range(1000))
    return time.thread_time() - start


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_a_block_counts_its_own_and_its_childs_cpu_and_reads_back_as_a_block(
    where: dict[str, Any],
) -> None:
    with carbonwrap.track("work", tags={"exp": "a"}, **where) as t:
        own_s = burn(0.4)
        before_s = children_cpu_s()
        subprocess.run([sys.executable, "-c", CHILD_WORK.format(s=0.3)], check=True)
        child_s = children_cpu_s() - before_s
    final = t.summary()
    # Every thread of the process (the sampler's too) and the reaped child; the interpreter
    # the child started costs some of its own beyond the loop, counted in child_s.
    assert own_s + child_s - 0.02 <= final.cpu_s <= own_s + child_s + 0.15
    (log,) = logs_in(where["log_dir"])
    start, *_, end = records(log)
    assert start["kind"] == "block" and start["pid"] == os.getpid()
    assert start["cpu_accounting"] == "process" and end["type"] == "end"
    read = summarize_log(log)
    assert read is not None
    assert read.kind == "block" and read.status == "ok" and read.complete
    assert read.command_line == "block work" and read.tags == {"exp": "a"}
    assert read.cpu_s == pytest.approx(final.cpu_s, abs=1e-6)
    assert read.energy_j > 0 and read.co2e_g > 0
    assert run_document(read)["kind"] == "block"
    assert render_text(compact_view(read)).startswith("carbonwrap: block work · ended · ")
    table = run_cw("report", str(where["log_dir"]), cwd=log.parent)
    assert table.returncode == 0 and "block work" in table.stdout, table.stderr


def test_summary_grows_while_the_block_runs(where: dict[str, Any]) -> None:
    with carbonwrap.track(**where) as t:
        burn(0.3)
        time.sleep(0.25)  # a reading or two
        first = t.summary()
        burn(0.3)
        time.sleep(0.25)
        second = t.summary()
        assert not second.complete and second.log_path == t.log_path
    assert 0 < first.cpu_s < second.cpu_s <= t.summary().cpu_s
    assert 0 < first.energy_j < second.energy_j
    assert 0 < first.co2e_g < second.co2e_g
    assert 0 < first.duration_s < second.duration_s
    assert t.summary().complete
    assert t.summary().command_line == f"block test_block.py:{with_line()}"


def with_line() -> int:
    """The line of `with carbonwrap.track(**where)` above (a block's default name)."""
    source = Path(__file__).read_text().splitlines()
    return source.index("    with carbonwrap.track(**where) as t:") + 1


def test_each_call_of_a_decorated_function_is_one_block(where: dict[str, Any]) -> None:
    @carbonwrap.track(**where)
    def step(seconds: float) -> str:
        burn(seconds)
        return "done"

    assert step(0.05) == "done" and step(0.05) == "done"
    logs = logs_in(where["log_dir"])
    assert len(logs) == 2
    for log in logs:
        read = summarize_log(log)
        assert read is not None and read.status == "ok" and read.kind == "block"
        assert read.command == [f"{__name__}.{step.__qualname__}"]


def test_an_exception_ends_the_block_with_an_end_record_and_goes_on(
    where: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="boom"), carbonwrap.track("failing", **where):
        burn(0.05)
        raise ValueError("boom")
    (log,) = logs_in(where["log_dir"])
    assert records(log)[-1]["type"] == "end"
    read = summarize_log(log)
    assert read is not None
    assert read.status == "failed" and read.exit_code == 1
    assert "the block raised ValueError: boom" in read.notes
    assert "· raised an exception ·" in render_text(compact_view(read))


def test_a_block_inside_or_beside_another_is_refused(where: dict[str, Any]) -> None:
    refused: list[BaseException] = []

    def beside() -> None:
        try:
            with carbonwrap.track(**where):
                pass
        except TrackError as exc:
            refused.append(exc)

    with carbonwrap.track("outer", **where) as outer:
        with pytest.raises(TrackError, match="block 'outer' is already measuring"):  # noqa: SIM117
            with carbonwrap.track("inner", **where):
                pass
        thread = threading.Thread(target=beside)
        thread.start()
        thread.join()
    assert len(refused) == 1
    assert outer.summary().status == "ok"
    assert len(logs_in(where["log_dir"])) == 1  # the refused ones left nothing behind
    with carbonwrap.track("after", **where):  # and once it has ended, a new one may start
        pass
    assert len(logs_in(where["log_dir"])) == 2


def test_a_bad_keyword_is_one_line_naming_it(where: dict[str, Any]) -> None:
    with pytest.raises(CarbonwrapError, match=r"track\(pue=0.5\)"):
        carbonwrap.track(pue=0.5)


def test_a_child_running_before_the_block_is_counted_from_the_start_only() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD_WORK.format(s=30)])
    # another child from before the block, still running after it: not one the block left
    # (before the fix, CI's Slurm daemons, children of pytest, were "left running" by a block)
    server = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.5)  # CPU it uses before the block is not the block's
        at_start = process_stat(child.pid)
        acct = OwnProcessAccounting()
        time.sleep(0.5)
        during = acct.cpu_s()
        now = process_stat(child.pid)
        assert at_start is not None and now is not None and at_start.cpu_s > 0.1
        used_s = now.cpu_s - at_start.cpu_s
        assert used_s - 0.05 <= during <= used_s + 0.05
        assert child.pid in acct.pids() and os.getpid() in acct.pids()
    finally:
        child.kill()
        child.wait()  # reaped: RUSAGE_CHILDREN takes its whole CPU, the baseline comes off
    after = acct.cpu_s()
    assert during <= after <= during + 0.1
    try:
        assert acct.finish() == []
    finally:
        server.kill()
        server.wait()


def test_summary_reads_now_even_before_the_samplers_first_reading(where: dict[str, Any]) -> None:
    """Before: a block shorter than one interval said 0 J from summary() (the sampler's first
    reading had not come); now summary() reads CPU and memory itself."""
    with carbonwrap.track(**{**where, "interval_s": 30.0, "log_interval_s": 30.0}) as t:
        burn(0.2)
        now = t.summary()
    assert now.cpu_s >= 0.15 and now.energy_j > 0 and now.duration_s > 0
