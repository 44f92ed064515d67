"""carbonwrap started the way daemons, schedulers and scripts start programs: with stdin,
stdout or stderr closed, SIGCHLD ignored, in a deleted directory, under a low `ulimit -n`, or
with an empty command name. The command runs as it would without carbonwrap (or carbonwrap
says one line and exits as a shell would), its status passes through, never a traceback.

Real closed descriptors (closed in preexec_fn, and by a shell's `>&-`), a real SIG_IGN, a real
rmdir'ed working directory, a real RLIMIT_NOFILE."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cw_argv, cw_env, logs_in, records

PY = sys.executable

# The command: which of its fds 0-2 are open, and what carbonwrap (its parent) holds there;
# then it writes to the ones it has and exits 7.
SHOW_FDS = textwrap.dedent(
    """
    import json, os, sys
    def target(pid, fd):
        try:
            return os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            return None
    seen = {
        "own": [fd for fd in (0, 1, 2) if target("self", fd) is not None],
        "parent": {fd: target(os.getppid(), fd) for fd in (0, 1, 2)},
    }
    with open(sys.argv[1], "w") as out:
        json.dump(seen, out)
    for fd in (1, 2):
        if fd in seen["own"]:
            os.write(fd, b"epoch 1/2 from the command\\n")
    sys.exit(7)
    """
)


def show_fds(out: Path) -> list[str]:
    return [PY, "-c", SHOW_FDS, str(out)]


def start(
    workdir: Path, args: list[str], setup: Callable[[], None], **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    """carbonwrap ARGS with `setup` run in its process just before exec; output captured
    where the descriptors are still open."""
    env = cw_env()
    # The repository alone: an empty entry (cw_env's trailing separator) means the working
    # directory, and in a deleted one the interpreter itself fails to start ("failed to make
    # path absolute"), before any carbonwrap code.
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(cw_argv(*args), cwd=workdir, env=env, preexec_fn=setup, timeout=60, **kw)


def closing(*fds: int) -> Callable[[], None]:
    def setup() -> None:
        for fd in fds:
            os.close(fd)

    return setup


def end_record(logs: Path) -> dict[str, Any]:
    (log,) = logs_in(logs)
    recs = records(log)  # every line a record: nothing of the command's output got in
    assert recs[0]["type"] == "start" and recs[-1]["type"] == "end"
    return recs[-1]


@pytest.mark.parametrize("closed", [(0,), (1,), (2,), (0, 1, 2)], ids=["0", "1", "2", "all"])
def test_closed_standard_descriptors(workdir: Path, closed: tuple[int, ...]) -> None:
    """The command sees its fds closed as under a shell (`cmd 2>&-`), and none of carbonwrap's
    own files takes their numbers (before, the cgroup leaf's cgroup.procs or the log did; and a
    closed stdout or stderr ended carbonwrap with a traceback, exit 1, after the command)."""
    seen = workdir / "seen.json"
    logs = workdir / "logs"
    result = start(
        workdir,
        ["run", "-q", "--log-dir", str(logs), "--", PY, "-c", SHOW_FDS, str(seen)],
        closing(*closed),
        capture_output=True,
    )
    assert result.returncode == 7, result.stderr
    assert b"Traceback" not in result.stderr
    fds = json.loads(seen.read_text())
    assert fds["own"] == [fd for fd in (0, 1, 2) if fd not in closed]
    for fd in closed:
        assert fds["parent"][str(fd)] == "/dev/null", fds["parent"]
    assert end_record(logs)["exit_code"] == 7


def test_a_daemon_style_start_through_the_shell(workdir: Path) -> None:
    """`exec carbonwrap … <&- >&- 2>&-`, as a shell closes them."""
    seen = workdir / "seen.json"
    logs = workdir / "logs"
    command = " ".join(
        f"'{word}'" for word in cw_argv("run", "-q", "--log-dir", str(logs), "--", PY, "-c")
    )
    shell = f"exec {command} \"$0\" '{seen}' <&- >&- 2>&-"
    result = subprocess.run(
        ["sh", "-c", shell, SHOW_FDS], cwd=workdir, env=cw_env(), timeout=60, check=False
    )
    assert result.returncode == 7
    assert json.loads(seen.read_text())["own"] == []
    assert end_record(logs)["exit_code"] == 7


def test_stdout_closed_with_the_output_relay(workdir: Path) -> None:
    """--progress-from-output looks at fd 1 to decide what to relay: before, it found the
    cgroup leaf's cgroup.procs there and copied the command's output into it (EINVAL, a
    warning; a line holding a pid would have moved that process), and carbonwrap ended with a
    traceback."""
    seen = workdir / "seen.json"
    logs = workdir / "logs"
    result = start(
        workdir,
        ["run", "-q", "--progress-from-output", "--log-dir", str(logs), "--", *show_fds(seen)],
        closing(1),
        stderr=subprocess.PIPE,
    )
    assert result.returncode == 7, result.stderr
    assert json.loads(seen.read_text())["parent"]["1"] == "/dev/null"
    (log,) = logs_in(logs)
    warnings = [r["message"] for r in records(log) if r["type"] == "warning"]
    assert not [w for w in warnings if "stdout" in w], warnings
    assert end_record(logs)["exit_code"] == 7


def test_stdout_closed_stays_closed_for_the_command_with_the_relay(workdir: Path) -> None:
    seen = workdir / "seen.json"
    logs = workdir / "logs"
    start(
        workdir,
        ["run", "-q", "--progress-from-output", "--log-dir", str(logs), "--", *show_fds(seen)],
        closing(1),
        stderr=subprocess.PIPE,
    )
    assert json.loads(seen.read_text())["own"] == [0, 2]


def test_sigchld_ignored(workdir: Path) -> None:
    """Started with SIGCHLD ignored (SIG_IGN is inherited through exec), carbonwrap's waitpid
    failed with ECHILD (the kernel reaped the command itself) and the run ended 125 whatever
    the command did. Now the command's status; the command gets SIGCHLD at its default, as
    under `timeout` (decision in run/child.py)."""
    script = (
        "import sys; mask = next(l for l in open('/proc/self/status') if l.startswith('SigIgn'))"
        "; print(int(mask.split()[1], 16) >> 16 & 1); sys.exit(5)"
    )
    logs = workdir / "logs"
    result = start(
        workdir,
        ["run", "-q", "--log-dir", str(logs), "--", PY, "-c", script],
        lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 5, result.stderr
    assert result.stdout == "0\n"  # bit 16 of SigIgn: SIGCHLD (17)
    assert end_record(logs)["exit_code"] == 5


def in_deleted_directory(workdir: Path) -> Callable[[], None]:
    gone = workdir / "gone"
    gone.mkdir()

    def setup() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    return setup


def test_a_deleted_working_directory(workdir: Path) -> None:
    """The command runs in it (as from a shell whose directory was removed), its status passes
    through, the start record names it as the kernel does ("… (deleted)")."""
    marker = workdir / "ran"
    script = (
        "import os, sys\ntry:\n    os.getcwd()\nexcept FileNotFoundError:\n"
        f"    open({str(marker)!r}, 'w').close()\nsys.exit(4)"
    )
    logs = workdir / "logs"
    result = start(
        workdir,
        ["run", "-q", "--log-dir", str(logs), "--", PY, "-c", script],
        in_deleted_directory(workdir),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 4, result.stderr
    assert marker.exists()  # it ran, in the deleted directory
    (log,) = logs_in(logs)
    assert records(log)[0]["cwd"] == f"{workdir / 'gone'} (deleted)"
    assert records(log)[-1]["exit_code"] == 4


@pytest.mark.parametrize("relative", [["--log-dir", "logs"], ["--json", "run.json"]])
def test_a_relative_path_in_a_deleted_working_directory(workdir: Path, relative: list[str]) -> None:
    """carbonwrap cannot write there: one line and 125 before the command, as for any log
    directory it cannot write (the default log directory, `logs`, is relative)."""
    marker = workdir / "ran"
    args = ["run", "-q", *relative]
    if relative[0] != "--log-dir":
        args += ["--log-dir", str(workdir / "logs")]
    result = start(
        workdir,
        [*args, "--", "touch", str(marker)],
        in_deleted_directory(workdir),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and "has been deleted" in result.stderr
    assert repr(relative[1]) in result.stderr
    assert not marker.exists()


def fd_limit(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@pytest.mark.parametrize("limit", [16, 32])
@pytest.mark.parametrize("relay", [False, True], ids=["plain", "relay"])
def test_a_low_limit_on_open_files(workdir: Path, limit: int, relay: bool) -> None:
    """`ulimit -n 16` (soft and hard): the run measures and passes the status on; parts it can
    do without (the relay's pipes: 4 fds each) go with a note. Before, with --progress-from-
    output at 16, /proc/stat could not be opened after the relay's pipes: a traceback, and
    the command never ran. The command gets the limit it was started with."""
    logs = workdir / "logs"
    option = ["--progress-from-output"] if relay else []
    script = "import resource, sys; print(resource.getrlimit(resource.RLIMIT_NOFILE)); sys.exit(3)"
    result = start(
        workdir,
        ["run", "--no-live", *option, "--log-dir", str(logs), "--", PY, "-c", script],
        fd_limit(limit),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == f"({limit}, {limit})\n"
    assert end_record(logs)["exit_code"] == 3


@pytest.mark.parametrize("limit", [7, 8, 9])
def test_a_limit_too_low_to_measure_is_one_line(workdir: Path, limit: int) -> None:
    """Too few to open the log and the meters: one line and 125, the command not run (as for
    a log directory that cannot be written), never a traceback, and no empty log left."""
    marker = workdir / "ran"
    result = start(
        workdir,
        ["run", "-q", "--log-dir", str(workdir / "logs"), "--", "touch", str(marker)],
        fd_limit(limit),
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:  # enough here after all (the interpreter's own needs vary)
        assert marker.exists()
        return
    assert result.returncode == 125, result.stderr
    assert result.stderr.startswith("carbonwrap: cannot open the files a run needs")
    assert result.stderr.count("\n") == 1 and f"ulimit -n is {limit}" in result.stderr
    assert not marker.exists()
    assert logs_in(workdir / "logs") == []


def test_an_empty_command_name(workdir: Path) -> None:
    """`carbonwrap run -- ''`: 127 and one line, as a shell says it; before, posix_spawnp's
    ValueError ended carbonwrap with a traceback (exit 1)."""
    result = start(
        workdir,
        ["run", "--log-dir", str(workdir / "logs"), "--", ""],
        lambda: None,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 127
    assert result.stderr == "carbonwrap: '': command not found (check the name and PATH)\n"
    assert logs_in(workdir / "logs") == []
