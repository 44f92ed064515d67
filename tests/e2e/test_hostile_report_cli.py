"""`report` over a log with a 100 MB line, in its own process: the line is skipped and counted,
never held whole (the report's peak RSS is measured)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import cw_env
from log_records import assert_same, fold_all, sample_record, start_record

from carbonwrap.report.read import summarize_log


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _log(tmp_path: Path, name: str, middle: list[bytes]) -> Path:
    lines = [(json.dumps(start_record(run_id=name)) + "\n").encode()]
    lines += [(json.dumps(sample_record(10, 100.0, 10.0)) + "\n").encode(), *middle]
    lines += [(json.dumps(sample_record(20, 200.0, 20.0, "end")) + "\n").encode()]
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(lines))
    return path


_REPORT_WITH_PEAK = """
import sys
from carbonwrap.cli.main import _status
code = _status(sys.argv[1:])
sys.stdout.flush()
with open("/proc/self/status") as f:  # VmHWM: this program's own peak, not its parent's at fork
    peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
sys.stderr.write(f"peak_kib={peak_kib}\\n")
raise SystemExit(code)
"""


def _peak_rss_of_report(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    result = subprocess.run(
        [sys.executable, "-c", _REPORT_WITH_PEAK, "report", *args],
        cwd=cwd,
        env=cw_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    peak_kib = int(result.stderr.rpartition("peak_kib=")[2])
    return result, peak_kib * 1024


def test_a_100_mb_line_is_skipped_counted_and_never_held(tmp_path: Path) -> None:
    """Before the line cap the report held the line, decoded and parsed it: 441 MB peak RSS for
    this log on the development VM, 761 MB for a 100 MB JSON array; now ~25 MB."""
    long_warning = b'{"type":"warning","message":"' + b"a" * 100_000_000 + b'"}\n'
    path = _log(tmp_path, "long", [long_warning])
    array = _log(tmp_path, "array", [b"[" + b"0," * 50_000_000 + b"0]\n"])
    unterminated = tmp_path / "tail.jsonl"
    unterminated.write_bytes(_log(tmp_path, "t", []).read_bytes() + b"x" * (6 << 20))
    for log in (path, array, unterminated):
        summary = summarize_log(log)
        assert summary is not None and summary.complete and summary.bad_lines == 1
        assert summary.energy_j == 220.0
        assert_same(summary, fold_all(log))
    result, peak_bytes = _peak_rss_of_report(["--json", str(tmp_path)], tmp_path)
    assert result.returncode == 0, result.stderr
    document = _strict(result.stdout)
    assert document["logs"]["corrupt_lines"] == 3 and document["logs"]["duplicates"] == 1
    assert peak_bytes < 80 << 20, peak_bytes
