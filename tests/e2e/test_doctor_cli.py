"""`carbonwrap doctor` through a real subprocess: its output and exit status."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, cw_argv, cw_env, is_root, run_cw
from intensity_server import RecordedServer, serve
from sysfs_tree import make_sysfs

from carbonwrap.doctor.checks import STATUSES
from carbonwrap.render.doctor import DOCTOR_SCHEMA


def doctor_leaves() -> list[str]:
    found = []
    for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpuacct"):
        if os.path.isdir(mount):
            found += [e for e in os.listdir(mount) if e.startswith("carbonwrap-doctor-")]
    return found


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys")


# --- the command, for real --------------------------------------------------------------------


def test_doctor_text_on_this_machine(workdir: Path) -> None:
    result = run_cw("doctor", cwd=workdir, env=cw_env(TZ="UTC"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    names = [line.split("  ")[0] for line in lines[:-2] if line[:1].isalpha()]
    assert names[:3] == ["proc", "cgroup", "cgroup scope"]
    assert {"rapl", "nvml", "region", "intensity"} <= set(names)
    assert names[-2:] == ["region", "intensity"]  # WORLD: no provider, no request
    assert result.stdout.endswith("\ncarbonwrap can measure here (exit status 0)\n")
    assert doctor_leaves() == []


def test_doctor_json_with_a_fake_rapl_tree(workdir: Path, sysfs: Path) -> None:
    env = cw_env(CARBONWRAP_SYSFS_ROOT=str(sysfs), TZ="Europe/Copenhagen")
    result = run_cw("doctor", "--json", "--intensity-source", "static", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == DOCTOR_SCHEMA and doc["can_measure"] is True
    checks = {c["name"]: c for c in doc["checks"]}
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in doc["checks"])
    assert all(c["status"] in STATUSES for c in doc["checks"])
    assert all(c["fix"] is None or isinstance(c["fix"], str) for c in doc["checks"])
    assert checks["rapl"]["status"] == "ok" and "cpu estimate" not in checks
    assert checks["region"]["detail"].startswith("DK (Denmark), source timezone")
    assert checks["intensity"]["detail"].endswith("; --intensity-source static")


def test_hanging_provider_bounds_the_command() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", hang=True)
        env = cw_env(CARBONWRAP_ENERGIDATASERVICE_URL=server.url)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *cw_argv("doctor", "--region", "DK", "--json"),
            env=env,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        took_s = time.monotonic() - started
        assert process.returncode == 0
        reach = {c["name"]: c for c in json.loads(out)["checks"]}["intensity api"]
        assert reach["status"] == "warn" and reach["detail"].endswith("no answer within 3 s")
        assert took_s < 8

    serve(check)


def test_bad_option_is_one_line_and_125(workdir: Path) -> None:
    result = run_cw("doctor", "--region", "QQQ", cwd=workdir)
    assert result.returncode == 125
    assert result.stdout == ""
    assert result.stderr.startswith("carbonwrap: unknown region 'QQQ'")
    assert result.stderr.count("\n") == 1
    assert run_cw("doctor", "--no-such-option", cwd=workdir).returncode == 125


def test_help_documents_the_exit_status(workdir: Path) -> None:
    result = run_cw("doctor", "--help", cwd=workdir)
    assert result.returncode == 0
    assert "Exit status: 0 when carbonwrap can measure here" in result.stdout
    assert "1 when it cannot; 125 for a bad option or value." in result.stdout


@pytest.mark.skipif(
    not is_root() or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_without_procfs_it_cannot_measure_and_exits_1(workdir: Path) -> None:
    """A private mount namespace with an empty tmpfs over /proc: nothing to count CPU time by."""
    argv = [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", 'mount -t tmpfs none /proc && exec "$@"', "sh", *cw_argv("doctor"),
    ]  # fmt: skip
    result = subprocess.run(
        argv, cwd=workdir, env=cw_env(), capture_output=True, text=True, timeout=60
    )
    if "mount" in result.stderr and result.returncode != 1:
        pytest.skip(f"cannot mount here: {result.stderr.strip()}")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("proc          error    cannot read /proc/stat")
    assert result.stdout.endswith("carbonwrap cannot measure here: proc, cgroup (exit status 1)\n")
