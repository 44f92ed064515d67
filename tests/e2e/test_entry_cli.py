"""The entry point: start-up without the cyclic GC, and every command turns it back on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cw_env

# Runs carbonwrap's entry point with resume_gc wrapped, and writes what it saw from an atexit
# handler (carbonwrap leaves through os._exit, after running atexit handlers).
PROBE = """\
import atexit, gc, json, sys
from carbonwrap import entry, gcpause
out, args = sys.argv[1], sys.argv[2:]
seen = {"resumed_with": []}
def probe():
    seen["resumed_with"].append(gc.isenabled())
    resume()
resume, gcpause.resume = gcpause.resume, probe
atexit.register(lambda: open(out, "w").write(json.dumps({**seen, "at_exit": gc.isenabled()})))
gc.enable()  # as a fresh interpreter has it; entry.main turns it off first
sys.argv[1:] = args
entry.main()
"""


@pytest.mark.parametrize(
    "args", [["run", "-q", "--log-dir", "logs", "--", "true"], ["report", "."]]
)
def test_commands_start_without_the_collector_and_resume_it(
    tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "seen.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        env=cw_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(out.read_text())
    assert seen["resumed_with"] == [False]  # once, and start-up ran with the collector off
    assert seen["at_exit"] is True
