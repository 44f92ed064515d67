"""Generated completions and man pages: current, loadable by bash, rendered by groff cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cw_env

from carbonwrap.cli.definition import cli
from carbonwrap.cli.docs import generated_files


def test_committed_files_are_current() -> None:
    stale = [
        relative
        for relative, content in generated_files(cli).items()
        if not (REPO / relative).exists() or (REPO / relative).read_text() != content
    ]
    assert not stale, f"stale generated files {stale}: run python -m carbonwrap.cli.regenerate"


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


@pytest.mark.skipif(shutil.which("groff") is None, reason="no groff")
@pytest.mark.parametrize("page", sorted(p for p in generated_files(cli) if p.startswith("man/")))
def test_man_page_renders_without_groff_warnings(page: str) -> None:
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(REPO / page)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
