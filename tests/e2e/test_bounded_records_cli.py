"""A command line as long as the kernel takes, run for real: the log's start record stays
readable by carbonwrap's own reader (a line over 4 MiB is skipped as damage), keeps the first
arguments whole and says how many more there were."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import logs_in, run_cw

from carbonwrap.runlog import records
from carbonwrap.runlog.reader import _MAX_LINE

ARG_MAX = os.sysconf("SC_ARG_MAX")


def _fits(args: list[str]) -> bool:
    """Whether carbonwrap's own command line with `args` passes execve: the strings, their
    NULs and a pointer each, with room for the environment and carbonwrap's own words."""
    return sum(len(a) + 1 + 8 for a in args) + 64 * 1024 + sum(map(len, os.environ)) < ARG_MAX


@pytest.mark.parametrize(
    "args",
    [
        # 200,000 arguments: the most the kernel takes of the shortest ones.
        [f"{n % 10}" for n in range(200_000)],
        # 50,000 arguments of 20 control characters: 1.4 MB on the command line, 6 MB of JSON
        # (each is \u0001): the start record was a line the reader skipped, the run lost.
        ["\x01" * 19 + f"{n % 10}" for n in range(50_000)],
    ],
    ids=["200k-short", "50k-escaped"],
)
def test_a_huge_command_line_is_logged_cut_and_read_back(tmp_path: Path, args: list[str]) -> None:
    assert _fits(args), "this machine's ARG_MAX is too small for the test"
    result = run_cw("run", "-q", "--log-dir", "logs", "--", "/bin/true", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (log,) = logs_in(tmp_path / "logs")
    first = log.read_bytes().split(b"\n", 1)[0]
    assert len(first) < _MAX_LINE
    start = json.loads(first)
    argv, cut = start["argv"], start["argv_cut"]
    assert ["/bin/true", *args][: len(argv)] == argv  # the first arguments, whole
    assert len(json.dumps(argv, separators=(",", ":"))) <= records.ARGV_BYTES
    assert cut == {
        "arguments": len(args) + 1 - len(argv),
        "bytes": sum(len(a) for a in args[len(argv) - 1 :]),
    }

    # `report` finds the run and says the command was cut.
    report = run_cw("report", "--json", "logs", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    document = json.loads(report.stdout)
    assert document["totals"]["runs"] == 1, report.stderr
    (run,) = document["runs"]
    assert run["command"] == argv
    more = f"{cut['arguments']:,} more arguments ({cut['bytes']:,} bytes) left out"
    assert any(more in note for note in run["notes"]), run["notes"]
    assert run["command_cut"] == cut  # scripts see the cut beside the command
    table = run_cw("report", "logs", cwd=tmp_path)
    assert table.returncode == 0 and "1 run" in table.stdout + table.stderr, table.stdout
    csv_text = run_cw("report", "logs", "--csv", cwd=tmp_path).stdout
    assert f"(+{cut['arguments']:,} more arguments)" in csv_text  # the command column says so
