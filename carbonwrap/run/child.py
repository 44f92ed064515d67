"""Start the child as if carbonwrap were not there, forward signals, report how it ended."""

from __future__ import annotations

import errno
import os

from carbonwrap.errors import CarbonwrapError, ExitCode
from carbonwrap.lite import NamedTuple, nullcontext, suppress
from carbonwrap.runlog.records import LIST_ITEMS

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager
    from typing import Any

    from carbonwrap.measure.cgroupspawn import IntoCgroup
else:
    # The signal module's C part: the same functions and numbers, ints where the module wraps
    # them in IntEnums (whose making costs every run ~2 ms of start-up: enum, three conversions).
    import _signal

# Signals whose default action would end carbonwrap mid-run without an end record, and that only
# come from outside (carbonwrap sets no timer, owns no O_ASYNC file): the command gets them, as
# if sent to it, and decides. SIGUSR1/2 and the real-time signals are how batch systems warn a
# job; SIGPWR comes from a UPS daemon; SIGALRM, SIGVTALRM, SIGPROF and SIGIO from `kill`.
FORWARDED = tuple(
    sig
    for sig in (
        _signal.SIGTERM,
        _signal.SIGHUP,
        _signal.SIGUSR1,
        _signal.SIGUSR2,
        _signal.SIGALRM,
        _signal.SIGVTALRM,
        _signal.SIGPROF,
        _signal.SIGIO,  # = SIGPOLL
        getattr(_signal, "SIGPWR", None),
        getattr(_signal, "SIGSTKFLT", None),  # unused by the kernel; in the signal module from 3.11
        *range(_signal.SIGRTMIN, _signal.SIGRTMAX + 1),
    )
    if sig is not None
)
# The terminal sends SIGINT and SIGQUIT to the whole foreground process group: the child gets
# them directly. SIGXCPU is the kernel's word about carbonwrap's own CPU limit (RLIMIT_CPU is per
# process: the command gets its own, and batch systems send theirs to every process of the job):
# passing it on could end a job for carbonwrap's CPU time, so it is ignored.
# Left at their default on purpose: SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP and SIGSYS
# (a fault in carbonwrap itself: a core dump says more than a forwarded signal).
IGNORED = (_signal.SIGINT, _signal.SIGQUIT, _signal.SIGXCPU)
# Python itself ignores these; the child gets the default, as subprocess's restore_signals does.
# SIGXFSZ stays ignored here: the kernel sends it when carbonwrap's log passes RLIMIT_FSIZE, and
# the write then fails with EFBIG, which the log handles like a full disk.
PYTHON_IGNORED = (_signal.SIGPIPE, _signal.SIGXFSZ)
_SHELL = "/bin/sh"  # what execvp runs a script without #! with (_PATH_BSHELL)


class Ending(NamedTuple):
    """How the child ended: `exit_code` is what carbonwrap exits with (128 + N for signal N)."""

    exit_code: int
    signal_name: str | None


def ending_from_status(status: int) -> Ending:
    """Decode a wait status into the shell's convention."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return Ending(128 - code, signal_name(-code))
    return Ending(code, None)


def signal_name(signum: int) -> str:
    """SIGTERM, SIGRTMIN+3 (real-time signals between SIGRTMIN and SIGRTMAX have no name of
    their own), or SIG35 for a number Python does not know at all."""
    import signal  # its names: only once a signal is named

    try:
        return signal.Signals(signum).name
    except ValueError:
        if signal.SIGRTMIN < signum < signal.SIGRTMAX:
            return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
        return f"SIG{signum}"


def exec_error(argv0: str, exc: OSError, found: str | None = None) -> CarbonwrapError:
    """The one-line error and exit code for a command that could not be executed, worded as
    bash words them; `found`: the file the name led to (`find_command`), if any."""
    name = argv0 or "''"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR) and found is None:
        if argv0.split() not in ([], [argv0]):  # `carbonwrap run "python3 -c pass"`: one word
            return CarbonwrapError(
                f"{name}: command not found; pass the command and its arguments as separate "
                f"words: carbonwrap run -- {_as_words(argv0)}",
                ExitCode.NOT_FOUND,
            )
        return CarbonwrapError(
            f"{name}: command not found (check the name and PATH)", ExitCode.NOT_FOUND
        )
    if exc.errno == errno.ENOENT:  # the file is there: what it needs to run is not
        interpreter = _interpreter(found) if found is not None else None
        if interpreter is not None:
            message = f"{found}: {interpreter}: bad interpreter: No such file or directory"
        else:
            message = (
                f"{name}: cannot execute: required file not found (the program loader it "
                "names is missing)"
            )
        return CarbonwrapError(message, ExitCode.NOT_EXECUTABLE)
    if exc.errno == errno.ENOEXEC:  # a script without #! runs under /bin/sh: this is binary
        return CarbonwrapError(
            f"{found or name}: cannot execute binary file: Exec format error",
            ExitCode.NOT_EXECUTABLE,
        )
    if found is not None and os.path.isdir(found):
        return CarbonwrapError(f"{name}: Is a directory", ExitCode.NOT_EXECUTABLE)
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return CarbonwrapError(
        f"{name}: cannot execute: {reason} (check its permissions and interpreter line)",
        ExitCode.NOT_EXECUTABLE,
    )


def _as_words(line: str) -> str:
    """A command line given as one word, as the shell would split it (quotes kept)."""
    import shlex  # only on this way out

    try:
        return shlex.join(shlex.split(line))
    except ValueError:  # an unbalanced quote
        return " ".join(line.split())


def find_command(argv0: str) -> str | None:
    """The file that exec would run for `argv0`: the name itself if it holds a slash, else the
    first executable file of that name along PATH (as posix_spawnp searches it: carbonwrap's
    own PATH); None when there is none."""
    if "/" in argv0:
        return argv0 if os.path.lexists(argv0) else None
    if not argv0:
        return None
    for directory in os.get_exec_path():
        path = os.path.join(directory or ".", argv0)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _first_line(path: str) -> bytes:
    """The file's first line, within its first 256 bytes (what the kernel reads for #!)."""
    try:
        with open(path, "rb") as f:
            return f.read(256).partition(b"\n")[0]
    except OSError:
        return b""


def _interpreter(path: str) -> str | None:
    """The interpreter a #! line names, or None without one."""
    line = _first_line(path)
    if not line.startswith(b"#!"):
        return None
    words = line[2:].split()
    return os.fsdecode(words[0]) if words else ""


def _is_binary(path: str) -> bool:
    """bash's test before running a file without #! as a shell script: a NUL byte before the
    first newline."""
    return b"\0" in _first_line(path)


def _spawn(
    argv: Sequence[str], env: Mapping[str, str], into: IntoCgroup | None, **attributes: Any
) -> int:
    """posix_spawnp, then what execvp and shells do that posix_spawnp does not: a text file
    without #! (ENOEXEC) runs under /bin/sh, with its path as $0. A command that cannot run
    raises the one-line error a shell would print (`exec_error`). `into`: the placement's spawn
    functions (a child born in the run's cgroup), else os's."""
    spawner = os if into is None else into
    if not argv[0]:  # posix_spawnp refuses it with ValueError; a shell says "command not found"
        raise exec_error("", FileNotFoundError(errno.ENOENT, "empty command name"))
    try:
        return spawner.posix_spawnp(argv[0], list(argv), env, **attributes)
    except OSError as exc:
        found = find_command(argv[0])
        if exc.errno != errno.ENOEXEC or found is None or _is_binary(found):
            raise exec_error(argv[0], exc, found) from exc
    try:
        return spawner.posix_spawn(_SHELL, [_SHELL, found, *argv[1:]], env, **attributes)
    except OSError as exc:
        raise exec_error(argv[0], exc, found) from exc


class Child:
    """The wrapped command, started in carbonwrap's process group and session (with
    `new_session`: in a session of its own, whose controlling terminal its `file_actions` open:
    --progress-from-output's pseudo-terminal, which delivers the keys' signals).

    The child stays in the terminal's foreground process group (or is the foreground of its
    own terminal), so Ctrl-C and Ctrl-\\ reach it exactly as without carbonwrap; carbonwrap
    ignores those itself and forwards every other signal that would end it (FORWARDED:
    SIGTERM, SIGHUP, SIGUSR1/2, SIGALRM, the real-time signals …), so it outlives the child and
    writes the end record. Spawned with posix_spawn (vfork + exec, no Python between them)
    inside `placement`, or with the spawn functions it gives (the run's cgroup v2 leaf: the
    child is born in it, a copy of carbonwrap that runs a few lines before exec:
    measure/cgroupspawn.py).
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        placement: AbstractContextManager[IntoCgroup | None] | None = None,
        file_actions: Sequence[tuple[Any, ...]] = (),
        new_session: bool = False,
    ) -> None:
        self.pid = -1
        self._reaped = False
        self.received: list[str] = []  # the first LIST_ITEMS forwarded, by name
        self.received_not_kept = 0  # and how many more (a signal storm must not grow memory)
        handled = (*FORWARDED, *IGNORED)
        self._original = {sig: _signal.getsignal(sig) for sig in handled}
        # What the child gets: the dispositions carbonwrap itself was started with, so a command
        # run under nohup still ignores SIGHUP. Python's own SIGINT handler counts as default.
        # A signal ignored from the start stays ignored here too (not forwarded): exec keeps an
        # ignored disposition, while a caught one would reset to default in the child.
        inherited_ignore = {sig for sig in handled if self._original[sig] == _signal.SIG_IGN}
        to_default = [sig for sig in handled if sig not in inherited_ignore]
        to_default += PYTHON_IGNORED
        # Started with SIGCHLD ignored (inherited SIG_IGN), the kernel would reap the command
        # itself and waitpid would fail with ECHILD: its status is what carbonwrap is for, so the
        # default again, for carbonwrap and so for the command, as `timeout` gives it. (Handing
        # an ignored SIGCHLD on would need it ignored at the spawn and default after it: a command
        # that ends in between would be reaped by the kernel, its status lost.)
        if _signal.getsignal(_signal.SIGCHLD) == _signal.SIG_IGN:
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        # Block the signals across the spawn: one arriving before we know the pid stays pending
        # and is forwarded as soon as the handlers run. The child gets the mask we started with.
        old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, handled)
        try:
            for sig in FORWARDED:
                if sig not in inherited_ignore:
                    _signal.signal(sig, self._forward)
            for sig in IGNORED:
                _signal.signal(sig, _signal.SIG_IGN)
            try:
                with placement if placement is not None else nullcontext() as into:
                    self.pid = _spawn(
                        argv,
                        env,
                        into,
                        setsigmask=old_mask,
                        setsigdef=to_default,
                        file_actions=list(file_actions) or None,  # --progress-from-output
                        setsid=new_session,  # glibc: before the file actions
                    )
            except BaseException:
                self.restore_signals()
                raise
        finally:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)

    def _forward(self, signum: int, frame: Any) -> None:
        if len(self.received) < LIST_ITEMS:
            self.received.append(signal_name(signum))
        else:
            self.received_not_kept += 1
        if self.pid > 0 and not self._reaped:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def send(self, signum: int) -> bool:
        """Send `signum` to the child unless it has been reaped (its pid could be reused by
        then); False when it is gone."""
        if self.pid <= 0 or self._reaped:
            return False
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def ended(self) -> bool:
        """Whether the child has ended already; it stays unreaped (`wait` gets its status)."""
        if self._reaped:
            return True
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.pid, flags) is not None
        except ChildProcessError:  # reaped by someone else: `wait` says so
            return True

    def wait(self) -> Ending:
        """Wait for the child, reaping orphans re-parented to us on the way."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:  # someone else reaped it; should not happen
                self._reaped = True
                return Ending(ExitCode.USAGE, None)
            if pid == self.pid:
                self._reaped = True
                return ending_from_status(status)

    def restore_signals(self) -> None:
        """Back to the handlers carbonwrap started with, once everything is written."""
        for sig, handler in self._original.items():
            _signal.signal(sig, _signal.SIG_DFL if handler is None else handler)
