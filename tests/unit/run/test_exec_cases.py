"""A command that is a file starts as a shell would start it: a script without #! under /bin/sh,
one whose interpreter is missing or a binary whose loader is missing refused with bash's words
and 126, an empty name 127; SIGCHLD ignored by whoever started carbonwrap changes nothing; a
death by a real-time signal is named. Real files, real spawns (run/child.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from carbonwrap.errors import CarbonwrapError, ExitCode
from carbonwrap.run.child import Child, Ending, signal_name

PY = sys.executable


@pytest.fixture
def start() -> Iterator[Callable[[Sequence[str]], Ending]]:
    """Start a command as a run does and wait for it; carbonwrap's handlers restored after."""
    children: list[Child] = []
    sigchld = signal.getsignal(signal.SIGCHLD)

    def run(argv: Sequence[str]) -> Ending:
        child = Child(argv, os.environ)
        children.append(child)
        return child.wait()

    yield run
    for child in children:
        child.restore_signals()
    signal.signal(signal.SIGCHLD, sigchld)


def executable(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def refusal(start: Callable[[Sequence[str]], Ending], argv: Sequence[str]) -> CarbonwrapError:
    with pytest.raises(CarbonwrapError) as caught:
        start(argv)
    return caught.value


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH (posix_spawnp searches carbonwrap's own PATH)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    return directory


@pytest.mark.parametrize("by", ["path", "PATH"])
def test_a_script_without_a_shebang_runs_under_sh(
    start: Callable[[Sequence[str]], Ending], tmp_path: Path, on_path: Path, by: str
) -> None:
    """As execvp, env and shells do on ENOEXEC: /bin/sh runs it, its path as $0."""
    out = tmp_path / "out"
    script = executable(on_path / "plain", f'echo "$0|$*" > {out}\nexit 3\n'.encode())
    name = str(script) if by == "path" else "plain"
    assert start([name, "a b", "c"]) == Ending(3, None)
    assert out.read_text() == f"{script}|a b c\n"


def test_a_binary_without_a_shebang_is_not_given_to_sh(
    start: Callable[[Sequence[str]], Ending], tmp_path: Path
) -> None:
    """A NUL byte in its first line (bash's test): not a script, 126 as bash says it."""
    binary = executable(tmp_path / "foreign", b"\x7fELF\x02\x01\x01\x00\xff\xfe garbage\n")
    error = refusal(start, [str(binary)])
    assert error.code == ExitCode.NOT_EXECUTABLE
    assert error.message == f"{binary}: cannot execute binary file: Exec format error"


@pytest.mark.parametrize("by", ["path", "PATH"])
@pytest.mark.parametrize("line", ["#!/no/such/interpreter", "#! /no/such/interpreter -x -y"])
def test_a_missing_interpreter_is_a_bad_interpreter(
    start: Callable[[Sequence[str]], Ending], on_path: Path, by: str, line: str
) -> None:
    """execve fails with ENOENT as for a missing command; the file is there: bash's words for
    it (before 5.2: 5.2 says "cannot execute: required file not found" and 127), and 126,
    POSIX's status for a command found but not executable."""
    script = executable(on_path / "tool", f"{line}\necho never\n".encode())
    error = refusal(start, [str(script) if by == "path" else "tool"])
    assert error.code == ExitCode.NOT_EXECUTABLE
    expected = f"{script}: /no/such/interpreter: bad interpreter: No such file or directory"
    assert error.message == expected


def test_a_binary_whose_loader_is_missing(
    start: Callable[[Sequence[str]], Ending], tmp_path: Path
) -> None:
    """A real ELF program whose PT_INTERP names a loader that is not there (a binary built for
    another libc): ENOENT for a file that exists."""
    true = (shutil.which("true") or "/bin/true").encode()
    data = Path(os.fsdecode(true)).read_bytes()
    loader = re.search(rb"/lib[\w/.-]*/ld-[\w.-]+\.so[\w.]*", data)
    if loader is None:
        pytest.skip("no dynamic loader named in true(1)")
    missing = loader.group(0)[:-1] + (b"X" if not loader.group(0).endswith(b"X") else b"Y")
    program = executable(tmp_path / "foreign-libc", data.replace(loader.group(0), missing, 1))
    error = refusal(start, [str(program)])
    assert error.code == ExitCode.NOT_EXECUTABLE
    assert error.message.startswith(f"{program}: cannot execute: required file not found")


def test_an_empty_command_name_is_not_found(start: Callable[[Sequence[str]], Ending]) -> None:
    """`carbonwrap run -- ''`: what a shell says (bash: ": command not found", 127); before,
    posix_spawnp's ValueError was a traceback."""
    error = refusal(start, ["", "arg"])
    assert error.code == ExitCode.NOT_FOUND
    assert error.message.startswith("'': command not found")


def test_a_directory_is_not_executable(
    start: Callable[[Sequence[str]], Ending], tmp_path: Path
) -> None:
    error = refusal(start, [str(tmp_path)])
    assert (error.code, error.message) == (ExitCode.NOT_EXECUTABLE, f"{tmp_path}: Is a directory")


def test_a_missing_command_is_still_not_found(
    start: Callable[[Sequence[str]], Ending], tmp_path: Path
) -> None:
    for name in ("no-such-command-xyz", str(tmp_path / "nothing-here")):
        error = refusal(start, [name])
        assert error.code == ExitCode.NOT_FOUND
        assert error.message == f"{name}: command not found (check the name and PATH)"


def test_sigchld_ignored_by_whoever_started_us(start: Callable[[Sequence[str]], Ending]) -> None:
    """SIG_IGN for SIGCHLD is inherited through exec, and with it the kernel reaps the command
    itself: waitpid failed with ECHILD and the run ended 125 whatever the command did."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    assert start([PY, "-c", "raise SystemExit(5)"]) == Ending(5, None)


def test_a_death_by_a_real_time_signal_is_named(start: Callable[[Sequence[str]], Ending]) -> None:
    """Signals between SIGRTMIN and SIGRTMAX have no name in Python's enum: before, decoding
    the status raised ValueError, a traceback instead of 128 + N."""
    script = "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 6)"
    assert start([PY, "-c", script]) == Ending(128 + signal.SIGRTMIN + 6, "SIGRTMIN+6")


def test_signal_names() -> None:
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(signal.SIGRTMIN) == "SIGRTMIN"
    assert signal_name(signal.SIGRTMIN + 1) == "SIGRTMIN+1"
    assert signal_name(signal.SIGRTMAX) == "SIGRTMAX"


def test_ended_says_whether_the_child_has_ended_and_leaves_it_to_wait() -> None:
    """`ended` looks without reaping: `wait` still gets the status (run/phases.py asks it
    before starting the threads a command that has ended needs none of)."""
    sigchld = signal.getsignal(signal.SIGCHLD)
    running = Child(["sleep", "30"], os.environ)
    done = Child(["sh", "-c", "exit 3"], os.environ)
    try:
        assert not running.ended()
        while not done.ended():  # a few milliseconds
            os.sched_yield()
        assert done.ended() and done.wait() == Ending(3, None)  # the status is still there
        assert done.ended()  # and reaped now
        running.send(signal.SIGKILL)
        assert running.wait() == Ending(128 + signal.SIGKILL, "SIGKILL")
    finally:
        for child in (running, done):
            child.restore_signals()
        signal.signal(signal.SIGCHLD, sigchld)
