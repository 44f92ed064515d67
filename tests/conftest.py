"""Shared helpers: run the real carbonwrap as a subprocess, read its log and JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
WORKLOADS = TESTS / "workloads"


def cw_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("CARBONWRAP_REGION", "CARBONWRAP_LOCATION", "CARBONWRAP_CLOUD"):
        env.pop(name, None)
    for name in ("ELECTRICITYMAPS_TOKEN", "WATTTIME_USERNAME", "WATTTIME_PASSWORD"):
        env.pop(f"CARBONWRAP_{name}", None)
    env["XDG_CONFIG_HOME"] = "/nonexistent/carbonwrap-tests"  # no developer's config file
    # Tests never reach the internet: every provider points at a closed local port unless a
    # test gives it its own server.
    for provider in ("ELECTRICITYMAPS", "UKGRID", "ENERGIDATASERVICE", "WATTTIME"):
        env[f"CARBONWRAP_{provider}_URL"] = "http://127.0.0.1:9"
    env.update(extra)
    return env


def cw_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "carbonwrap", *args]


def run_cw(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """carbonwrap ARGS, run for real, text output captured."""
    return subprocess.run(
        cw_argv(*args),
        cwd=cwd,
        env=env or cw_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def logs_in(directory: Path) -> list[Path]:
    return sorted(directory.rglob("carbonwrap-*.jsonl"))


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def is_root() -> bool:
    return os.geteuid() == 0


NOBODY = 65534


def call_as_nobody(function: Callable[[], Any]) -> Any:
    """`function()` in a forked child that first drops to uid/gid nobody; its JSON-able result.

    Root reads a mode-000 file regardless, so tests of permission errors run the code as nobody:
    the kernel then refuses for real (no mocked open). Needs root to drop privileges.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(function()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "the unprivileged child failed"
    return json.loads(message)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
