"""Generated completions and man pages: current, and rendered by groff cleanly."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import REPO

from carbonwrap.cli.definition import cli
from carbonwrap.cli.docs import generated_files


def test_committed_files_are_current() -> None:
    stale = [
        relative
        for relative, content in generated_files(cli).items()
        if not (REPO / relative).exists() or (REPO / relative).read_text() != content
    ]
    assert not stale, f"stale generated files {stale}: run python -m carbonwrap.cli.regenerate"


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
