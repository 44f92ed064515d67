"""Start the child as if carbonwrap were not there, forward signals, report how it ended."""

import contextlib
import ctypes
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from carbonwrap.errors import CarbonwrapError, ExitCode

FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# The terminal sends these to the whole foreground process group: the child gets them directly.
IGNORED = (signal.SIGINT, signal.SIGQUIT)
# Python itself ignores these; the child gets the default, as subprocess's restore_signals does.
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us instead of init (prctl(2)); False if refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Ending(NamedTuple):
    """How the child ended: `exit_code` is what carbonwrap exits with (128 + N for signal N)."""

    exit_code: int
    signal_name: str | None


def ending_from_status(status: int) -> Ending:
    """Decode a wait status into the shell's convention."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return Ending(128 - code, signal.Signals(-code).name)
    return Ending(code, None)


def exec_error(argv0: str, exc: OSError) -> CarbonwrapError:
    """The one-line error and exit code for a command that could not be executed."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return CarbonwrapError(
            f"{argv0}: command not found (check the name and PATH)", ExitCode.NOT_FOUND
        )
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return CarbonwrapError(
        f"{argv0}: cannot execute: {reason} (check its permissions and interpreter line)",
        ExitCode.NOT_EXECUTABLE,
    )


class Child:
    """The wrapped command, started in carbonwrap's process group and session.

    The child stays in the terminal's foreground process group, so Ctrl-C and Ctrl-\\ reach it
    exactly as without carbonwrap; carbonwrap ignores those itself and forwards the signals a
    terminal does not broadcast (SIGTERM, SIGHUP, SIGUSR1, SIGUSR2). Spawned with posix_spawn
    (vfork + exec, no Python between them) inside `placement` (e.g. the run's cgroup leaf).
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        placement: AbstractContextManager[None] | None = None,
        file_actions: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        self.pid = -1
        self._reaped = False
        self.received: list[str] = []
        handled = (*FORWARDED, *IGNORED)
        self._original = {sig: signal.getsignal(sig) for sig in handled}
        # What the child gets: the dispositions carbonwrap itself was started with, so a command
        # run under nohup still ignores SIGHUP. Python's own SIGINT handler counts as default.
        # A signal ignored from the start stays ignored here too (not forwarded): exec keeps an
        # ignored disposition, while a caught one would reset to default in the child.
        inherited_ignore = {sig for sig in handled if self._original[sig] == signal.SIG_IGN}
        to_default = [sig for sig in handled if sig not in inherited_ignore]
        to_default += PYTHON_IGNORED
        # Block the signals across the spawn: one arriving before we know the pid stays pending
        # and is forwarded as soon as the handlers run. The child gets the mask we started with.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
        try:
            for sig in FORWARDED:
                if sig not in inherited_ignore:
                    signal.signal(sig, self._forward)
            for sig in IGNORED:
                signal.signal(sig, signal.SIG_IGN)
            try:
                with placement if placement is not None else contextlib.nullcontext():
                    self.pid = os.posix_spawnp(
                        argv[0],
                        list(argv),
                        env,
                        setsigmask=old_mask,
                        setsigdef=to_default,
                        file_actions=list(file_actions) or None,  # --progress-from-output
                    )
            except OSError as exc:
                self.restore_signals()
                raise exec_error(argv[0], exc) from exc
            except BaseException:
                self.restore_signals()
                raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _forward(self, signum: int, frame: Any) -> None:
        self.received.append(signal.Signals(signum).name)
        if self.pid > 0 and not self._reaped:
            with contextlib.suppress(ProcessLookupError):
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
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
