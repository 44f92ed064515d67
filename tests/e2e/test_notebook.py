"""`%load_ext carbonwrap` in a real IPython shell (IPython's own test shell, `globalipapp`):
a %%carbonwrap cell, %carbonwrap start/status/stop, what they print and the logs they leave;
the Jupyter line through IPython's real display machinery (its capturing publisher)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import logs_in, records

pytest.importorskip("IPython")

from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

from carbonwrap.notebook.view import CellView
from carbonwrap.report.read import summarize_log
from carbonwrap.run.track import Track


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """IPython's test shell with the extension loaded, in a fresh directory, offline."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent/carbonwrap-tests")
    monkeypatch.setenv("CARBONWRAP_INTENSITY", "100")  # no provider asked: no network
    monkeypatch.setenv("CARBONWRAP_LOG_DIR", str(tmp_path / "logs"))
    for name in ("CARBONWRAP_REGION", "CARBONWRAP_QUIET", "CARBONWRAP_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    globalipapp.start_ipython()  # once per process; later calls leave it as it is
    ip = globalipapp.get_ipython()
    ip.run_cell("%load_ext carbonwrap")
    yield ip
    ip.run_cell("%unload_ext carbonwrap")


def test_a_cell_is_measured_and_keeps_its_output_and_value(shell: Any, tmp_path: Path) -> None:
    cell = "x = sum(i * i for i in range(300_000))\nprint('done', x > 0)\nx % 7"
    with capture_output() as cap:
        result = shell.run_cell(f"%%carbonwrap --tag exp=nb --interval 0.1\n{cell}")
    assert result.success
    assert result.result == sum(i * i for i in range(300_000)) % 7  # the cell's value
    assert cap.stdout.startswith("done True\n")
    report = cap.stderr.splitlines()
    assert report[0].startswith(f"carbonwrap: block cell {shell.execution_count} · ended ·")
    assert report[1].startswith("  Energy  ") and report[2].startswith("  CO2e    ")
    (log,) = logs_in(tmp_path / "logs")
    assert report[3] == f"  Log     {log}"
    read = summarize_log(log)
    assert read is not None and read.kind == "block" and read.status == "ok"
    assert read.tags == {"exp": "nb"} and read.cpu_s > 0


def test_an_error_in_the_cell_ends_the_block_and_fails_the_cell(shell: Any, tmp_path: Path) -> None:
    with capture_output() as cap:
        result = shell.run_cell("%%carbonwrap --quiet\nraise KeyError('nope')")
    assert isinstance(result.error_in_exec, KeyError)
    assert cap.stderr == ""  # --quiet: no report
    (log,) = logs_in(tmp_path / "logs")
    assert records(log)[-1]["type"] == "end"
    read = summarize_log(log)
    assert read is not None and read.status == "failed"
    assert "the block raised KeyError: 'nope'" in read.notes


def test_start_status_stop_measure_the_cells_between(shell: Any, tmp_path: Path) -> None:
    with capture_output() as cap:
        shell.run_cell("%carbonwrap start --tag part=2 --interval 0.1 --log-interval 0.2")
        shell.run_cell("y = sum(range(2_000_000))")
        time.sleep(0.3)
        shell.run_cell("%carbonwrap status")
        refused = shell.run_cell("%%carbonwrap\n1")
        shell.run_cell("%carbonwrap stop")
        shell.run_cell("%carbonwrap status")
    assert isinstance(refused.error_before_exec or refused.error_in_exec, UsageError)
    (log,) = logs_in(tmp_path / "logs")  # the refused cell left no log
    status = cap.stdout.splitlines()
    assert status[0].startswith("carbonwrap · ") and "CO2e" in status[0] and "CPU" in status[0]
    assert status[1] == f"  Log  {log}"
    assert status[2] == "carbonwrap: no block is being measured (%carbonwrap start begins one)"
    assert "already measuring this process" in cap.stderr
    assert f"  Log     {log}" in cap.stderr  # the report at stop
    read = summarize_log(log)
    assert read is not None and read.kind == "block" and read.tags == {"part": "2"}
    assert read.command_line is not None and read.command_line.startswith("block from cell ")
    assert read.cpu_s > 0.01  # the sum over two million numbers, in the cell between


def test_a_bad_option_is_one_usage_line(shell: Any) -> None:
    for line in ("%%carbonwrap --pue 9\n1", "%%carbonwrap --nope\n1", "%carbonwrap go"):
        with capture_output():
            result = shell.run_cell(line)
        assert isinstance(result.error_before_exec or result.error_in_exec, UsageError), line


def test_in_jupyter_the_line_is_updated_in_place_then_becomes_the_report(
    shell: Any, tmp_path: Path
) -> None:
    """The kernel's path of the view, through IPython's own display() and DisplayHandle into
    its capturing publisher (what ipykernel sends as display_data / update_display_data)."""
    track = Track("cell", log_dir=tmp_path / "logs", interval_s=0.1, log_interval_s=0.2)
    with capture_output() as cap:
        track.start()
        view = CellView(track.feed(), "display", refresh_s=0.05)
        view.start()
        time.sleep(0.4)
        view.stop(track.stop(report=False))
    first, *updates = cap.outputs
    display_id = first.transient["display_id"]  # what the front end updates in place
    assert not first.update and first.data["text/plain"].startswith("carbonwrap · ")
    assert len(updates) >= 3  # every 0.05 s for 0.4 s, and the report
    assert all(u.update and u.transient == {"display_id": display_id} for u in updates)
    assert updates[-1].data["text/plain"].startswith("carbonwrap: block cell · ended · ")
