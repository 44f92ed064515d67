"""A command born in a real cgroup v2 leaf (clone3 with CLONE_INTO_CGROUP): carbonwrap never
enters the leaf, the child gets what posix_spawn's attributes ask, exec fails as
os.posix_spawnp fails, and where the clone is refused carbonwrap joins the leaf instead."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cgroup_marks import in_one_thread, needs_cgroup2
from conftest import cw_env

from carbonwrap.measure import cgroupspawn, leafjoin
from carbonwrap.measure.accounting import take_early
from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.measure.cgroupspawn import (
    CLONE_CLEAR_SIGHAND,
    CLONE_INTO_CGROUP,
    CLONE_VFORK,
    IntoCgroup,
    clone_args,
)
from carbonwrap.measure.leafjoin import LeafJoin, own_cgroup, parse_proc_cgroup

# Whether stdin is open is looked at by the shell itself before anything runs: once it execs,
# the loader's first open may take the free descriptor 0 for a moment.
SCRIPT = (
    "[ -e /proc/$$/fd/0 ] && s=open || s=closed; "
    'echo to-log; echo "$0|$1|$CW_SPAWN_TEST|$s" >&5; exec sleep 30'
)


def _cgroup(pid: int | str = "self") -> str:
    return parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text(), None) or ""


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(field)


def _exit_code(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_clone_args_ask_for_a_fork_born_in_the_cgroup_with_no_handler_of_ours() -> None:
    args = clone_args(7)
    assert len(args) == 88  # CLONE_ARGS_SIZE_VER2: struct clone_args up to `cgroup`
    flags, _, _, _, exit_signal, stack, stack_size, _, _, _, cgroup = (
        int.from_bytes(args[i : i + 8], sys.byteorder) for i in range(0, 88, 8)
    )
    # No CLONE_VM: memory of its own; CLONE_VFORK: back once its exec has replaced it
    assert flags == CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND | CLONE_VFORK
    assert exit_signal == signal.SIGCHLD and stack == stack_size == 0 and cgroup == 7


@pytest.fixture
def leaf() -> Iterator[CgroupLeaf]:
    made = CgroupLeaf(2, f"carbonwrap-test-clone-{os.getpid()}")
    yield made
    made.finish()


@needs_cgroup2
def test_the_child_is_born_in_the_leaf_and_carbonwrap_never_enters_it(
    leaf: CgroupLeaf, tmp_path: Path
) -> None:
    """Before: carbonwrap wrote itself into the leaf's cgroup.procs for the spawn (a migration
    that waits for an RCU grace period where none happened lately)."""

    def body() -> None:
        home = _cgroup()
        out = tmp_path / "cgroup"
        with leaf.placement() as into:
            assert isinstance(into, IntoCgroup)
            assert _cgroup() == home  # nothing joined
            pid = into.posix_spawnp(
                "sh", ["sh", "-c", f'cat /proc/self/cgroup > "{out}"'], dict(os.environ)
            )
        assert into.refused is None and _cgroup() == home
        assert _exit_code(pid) == 0
        assert (
            parse_proc_cgroup(out.read_text(), None) == f"{home.rstrip('/')}/{Path(leaf.path).name}"
        )
        assert leaf.cpu_s(force=True) > 0  # its CPU is the leaf's

    in_one_thread(body)


@needs_cgroup2
def test_the_child_gets_what_posix_spawn_attributes_ask(leaf: CgroupLeaf, tmp_path: Path) -> None:
    """setsid, the file actions (open, dup2, close), default dispositions, the signal mask,
    argv and env: read back from the running child."""

    def body() -> None:
        log = tmp_path / "log"
        read_end, write_end = os.pipe()
        old_pipe = signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python starts
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGUSR2])
        try:
            with leaf.placement() as into:
                assert into is not None
                pid = into.posix_spawnp(
                    "sh",
                    ["sh", "-c", SCRIPT, "0", "a b"],
                    {**os.environ, "CW_SPAWN_TEST": "env seen"},
                    setsid=True,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, write_end, 5),
                        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT, 0o600),
                        (os.POSIX_SPAWN_CLOSE, 0),
                    ],
                    setsigdef=[signal.SIGPIPE],
                    setsigmask=[signal.SIGUSR2],
                )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            signal.signal(signal.SIGPIPE, old_pipe)
        os.close(write_end)
        try:
            with os.fdopen(read_end) as pipe:
                assert pipe.readline() == "0|a b|env seen|closed\n"  # stdin: closed
            assert os.getsid(pid) == pid  # a session of its own
            assert _status(pid, "SigBlk") == 1 << (signal.SIGUSR2 - 1)  # the mask asked, not ours
            assert not _status(pid, "SigIgn") & 1 << (signal.SIGPIPE - 1)  # default again
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert log.read_text() == "to-log\n"

    in_one_thread(body)


@needs_cgroup2
@pytest.mark.parametrize(
    "case",
    [
        *("missing", "not-executable", "directory", "no-hash-bang", "slash-missing"),
        *("eacces-then-enoexec", "later", "empty-element", "unset"),
    ],
)
def test_a_command_that_cannot_run_fails_as_os_posix_spawnp_fails(
    case: str, leaf: CgroupLeaf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same errno as os.posix_spawnp for each way exec fails along PATH (glibc's search:
    EACCES remembered while later directories are tried, ENOEXEC stops it); a later directory
    that has the command runs it, as does the current one for an empty element of PATH, and
    /bin:/usr/bin without PATH."""

    def body() -> None:
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        name = "cw-spawn-test"
        if case == "not-executable":
            (first / name).write_text("#!/bin/sh\n")
        elif case == "directory":
            (first / name).mkdir()
        elif case == "no-hash-bang":
            (first / name).write_text("exit 3\n")
            (first / name).chmod(0o755)
        elif case in ("later", "eacces-then-enoexec", "empty-element"):
            (first / name).write_text("#!/bin/sh\n")  # not executable: skipped
            (second / name).write_text("#!/bin/sh\nexit 4\n"[case == "eacces-then-enoexec" :])
            (second / name).chmod(0o755)
        monkeypatch.setenv("PATH", f"{first}:{second}")
        if case == "empty-element":  # "" is the current directory
            monkeypatch.setenv("PATH", f"{first}::/nonexistent")
            monkeypatch.chdir(second)
        file = str(first / "missing" / name) if case == "slash-missing" else name
        if case == "unset":
            monkeypatch.delenv("PATH")
            file = "true"
        argv, env = [file], dict(os.environ)
        runs = {"later": 4, "empty-element": 4, "unset": 0}
        with leaf.placement() as into:
            assert into is not None
            if case in runs:
                assert _exit_code(into.posix_spawnp(file, argv, env)) == runs[case]
                assert _exit_code(os.posix_spawnp(file, argv, env)) == runs[case]
                return
            with pytest.raises(OSError) as ours:
                into.posix_spawnp(file, argv, env)
            with pytest.raises(OSError) as theirs:
                os.posix_spawnp(file, argv, env)
        assert ours.value.errno == theirs.value.errno
        assert into.refused is None
        expected = {"missing": errno.ENOENT, "not-executable": errno.EACCES,
                    "directory": errno.EACCES, "no-hash-bang": errno.ENOEXEC,
                    "slash-missing": errno.ENOENT,
                    "eacces-then-enoexec": errno.ENOEXEC}  # fmt: skip
        assert ours.value.errno == expected[case]
        with pytest.raises(ChildProcessError):  # the failed child was reaped, not left a zombie
            os.waitpid(-1, os.WNOHANG)

    in_one_thread(body)


@needs_cgroup2
def test_a_refused_clone_joins_the_leaf_instead_once(
    leaf: CgroupLeaf, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel without clone3 (ENOSYS: older than 5.3, or a container's seccomp filter):
    carbonwrap joins the leaf, posix_spawn starts the child there, and carbonwrap leaves."""

    def body() -> None:
        home = _cgroup()
        calls: list[bytes] = []

        def no_clone3(args: bytes) -> int:
            calls.append(args)
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

        monkeypatch.setattr(cgroupspawn, "_clone3", [no_clone3])
        with leaf.placement() as into:
            assert into is not None
            pid = into.posix_spawnp("true", ["true"], dict(os.environ))
            assert into.refused == "clone3: Function not implemented" and len(calls) == 1
            assert _cgroup() != home  # joined, as before clone3
            assert _cgroup(pid) in (_cgroup(), "")  # "" once it has ended
            second = into.posix_spawn("/bin/true", ["true"], dict(os.environ))
            assert len(calls) == 1  # refused once: os's functions from then on
        assert _cgroup() == home
        assert _exit_code(pid) == 0 and _exit_code(second) == 0

    in_one_thread(body)


@needs_cgroup2
def test_with_another_thread_running_carbonwrap_joins_instead(leaf: CgroupLeaf) -> None:
    """A thread could hold a lock the cloned child needs (os.fork's after-fork handlers do not
    run in it): the clone is used only while carbonwrap runs no other thread."""
    release = threading.Event()
    waiting = threading.Thread(target=release.wait)
    waiting.start()
    try:
        with leaf.placement() as into:
            assert into is not None
            pid = into.posix_spawnp("sleep", ["sleep", "5"], dict(os.environ))
            leaf_path = _cgroup(pid)
    finally:
        release.set()
        waiting.join()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert into.refused == "carbonwrap runs other threads"
    assert leaf_path.endswith(Path(leaf.path).name)  # born in the leaf all the same


@needs_cgroup2
def test_a_file_action_onto_the_report_descriptor_does_not_hide_a_failed_exec(
    leaf: CgroupLeaf,
) -> None:
    """The child's errno goes back on a pipe: file actions that duplicate onto every low
    descriptor, whichever number that pipe got, must not turn a failed exec into a start."""

    def body() -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in range(3, 64) if fd != devnull]
        with leaf.placement() as into:
            assert into is not None
            with pytest.raises(FileNotFoundError):
                into.posix_spawnp("cw-no-such-command", ["x"], {}, file_actions=actions)
            pid = into.posix_spawn("/bin/sh", ["sh", "-c", "exit 5"], {}, file_actions=actions)
        assert into.refused is None and _exit_code(pid) == 5

    in_one_thread(body)


@needs_cgroup2
def test_where_joins_are_quick_the_leaf_is_joined_early_and_nothing_is_cloned() -> None:
    """A cgroup v2 mounted favordynmods moves a process in without a grace period: there the
    early join (~0.3 ms) costs less than a clone (~1.5 ms), and is kept; elsewhere nothing
    joins early and the command is born in the leaf."""
    home = _cgroup()
    options = own_cgroup(2)[2].split(",")
    for quick in (False, True):
        made = LeafJoin(2, f"carbonwrap-test-quick-{quick}-{os.getpid()}")
        assert made.quick_joins is ("favordynmods" in options)  # from the mount
        made.close()
        made = LeafJoin(2, f"carbonwrap-test-quick-{quick}-{os.getpid()}", quick_joins=quick)
        leaf = CgroupLeaf(2, "", made=made)
        try:
            leaf.join_early()
            assert made.started is quick
            with leaf.placement() as into:
                assert (into is None) is quick
                assert (_cgroup() != home) is quick  # joined for the spawn, or never
        finally:
            leaf.finish()
        assert _cgroup() == home and not os.path.exists(made.path)


@needs_cgroup2
def test_what_os_refuses_before_forking_is_refused_the_same(leaf: CgroupLeaf) -> None:
    """os.posix_spawnp's ValueErrors (an empty argv, a NUL byte, a variable named with "="),
    raised before any clone, not as a child's EINVAL."""
    cases = [("true", [], {}), ("true", [""], {}), ("true", ["tr\0ue"], {}),
             ("true", ["true"], {"A=B": "c"}), ("true", ["true"], {"A": "c\0"})]  # fmt: skip
    with leaf.placement() as into:
        assert into is not None
        for file, argv, env in cases:
            with pytest.raises(ValueError) as ours:
                into.posix_spawnp(file, argv, env)
            with pytest.raises(ValueError) as theirs:
                os.posix_spawnp(file, argv, env)
            assert str(ours.value) == str(theirs.value).replace("posix_spawnp", "posix_spawn")
    assert into.refused is None


@needs_cgroup2
def test_the_copys_cpu_before_exec_is_charged_back(leaf: CgroupLeaf) -> None:
    """The clone's child runs as a copy of carbonwrap until its exec, counted by the leaf: its
    CPU before exec, by its own clock, is carbonwrap's (`_charge_copy`), as a join's is."""

    def body() -> None:
        with leaf.placement() as into:
            assert into is not None
            pid = into.posix_spawn("/bin/sh", ["sh", "-c", "read x"], {}, file_actions=[])
        charged_s = leaf._wrapper_cpu_s
        try:
            assert 0 < charged_s < 0.005  # its lines and copied pages: ~0.3 ms here
            usage_s = leaf._usage_s()
            assert abs(leaf.cpu_s(force=True) - (usage_s - charged_s)) < 2e-6
        finally:
            os.kill(pid, signal.SIGKILL)
            _exit_code(pid)

    in_one_thread(body)


COPY_COST = """\
import os, statistics, sys
from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.measure.leafjoin import LeafJoin
import carbonwrap.run.phases  # carbonwrap as large as at its spawn
def count(quick, i):
    made = LeafJoin(2, f"carbonwrap-test-copy-{quick}-{i}-{os.getpid()}", quick_joins=quick)
    leaf = CgroupLeaf(2, "", made=made)
    try:
        with leaf.placement() as into:
            pid = (os if into is None else into).posix_spawn("/bin/true", ["true"], {})
            assert (into is None) is quick and (into is None or into.refused is None)
        os.waitpid(pid, 0)
    finally:
        leaf.finish()
    return leaf.cpu_s()
print(*(statistics.median(count(q, i) for i in range(12)) for q in (False, True)))
"""


@needs_cgroup2
def test_a_short_commands_count_is_a_joins_and_the_copys_teardown() -> None:
    """In an interpreter of carbonwrap's size: /bin/true born in the leaf counts what a
    join's posix_spawn gives it, plus the kernel's teardown of carbonwrap's copy inside exec,
    which no clock measures from outside (~0.4 ms a run here: docs/ARCHITECTURE.md). Without
    the charge-back, and with a copy many times larger, it would be more than 1.5 ms."""
    result = subprocess.run(
        [sys.executable, "-c", COPY_COST], env=cw_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    cloned_s, joined_s = (float(x) for x in result.stdout.split())
    assert 0 < joined_s < cloned_s < joined_s + 0.0015, (cloned_s, joined_s)


@needs_cgroup2
def test_no_handler_of_ours_runs_in_the_clones_child(leaf: CgroupLeaf) -> None:
    """A signal caught while clone3 copies the process (the kernel restarts the call after
    Python's C handler has marked the handler due) left the mark in the copy, whose Python
    then ran the handler before exec, and an exception from it unwound the child into
    carbonwrap's frames. Every signal is blocked across the clone now, as glibc's
    posix_spawn does. A 100 µs timer with a handler, through many spawns."""

    def body() -> None:
        main = os.getpid()
        read_end, write_end = os.pipe()

        def handler(signum: int, frame: object) -> None:
            if os.getpid() != main:
                os.write(write_end, b"!")
                os._exit(0)

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
        try:
            with leaf.placement() as into:
                assert into is not None
                for _ in range(400):
                    _exit_code(into.posix_spawn("/bin/true", ["true"], {}))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as seen:
            assert seen.read() == b""  # no child ran the handler
        assert into.refused is None

    in_one_thread(body)


@needs_cgroup2
def test_without_clone3_the_early_leaf_is_joined_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seccomp filter that refuses clone3 (containers' default profiles: ENOSYS): the
    leaf made first thing starts its join at once, as before clone3, so its wait overlaps
    start-up instead of coming in line at the spawn."""

    def body() -> None:
        home = _cgroup()

        def filtered(args: bytes) -> int:
            raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))

        monkeypatch.setattr(cgroupspawn, "_clone3", [filtered])
        assert not cgroupspawn.clone3_present()
        leafjoin.open_early()
        taken = take_early()
        assert taken is not None
        _, (leaf, _) = taken
        assert isinstance(leaf, CgroupLeaf) and leaf._leaf.started
        with leaf.placement() as into:
            assert into is None and _cgroup() != home  # joined
            pid = os.posix_spawn("/bin/true", ["true"], {})
        assert _cgroup() == home and _exit_code(pid) == 0
        leaf.finish()

    in_one_thread(body)
    assert cgroupspawn.clone3_present()  # this kernel has it (asked with an empty struct)
