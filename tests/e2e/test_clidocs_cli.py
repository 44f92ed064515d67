"""The generated bash completion: loaded by bash, it completes through the real carbonwrap."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cw_env


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_loads_the_script_and_completes_a_subcommand(tmp_path: Path) -> None:
    script = REPO / "completions" / "carbonwrap.bash"
    # A `carbonwrap` on PATH that runs the checkout; load the script; ask for the completions
    # of `carbonwrap r` the way bash's programmable completion calls the function.
    program = tmp_path / "carbonwrap"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m carbonwrap "$@"\n')
    program.chmod(0o755)
    env = cw_env()
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    words = {"carbonwrap r": "1", "carbonwrap run --region DK-DK": "3"}
    replies = {}
    for line, cword in words.items():
        bash = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={cword}; "
            '_carbonwrap_completion carbonwrap; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        result = subprocess.run(
            ["bash", "-c", bash], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        replies[line] = result.stdout.split()
    assert {"run", "report"} <= set(replies["carbonwrap r"])
    assert {"DK-DK1", "DK-DK2"} <= set(replies["carbonwrap run --region DK-DK"])
