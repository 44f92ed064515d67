"""Start the child as if carbonwrap were not there, forward signals, report how it ended."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from carbonwrap.errors import CarbonwrapError, ExitCode

FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# The terminal sends these to the whole foreground process group: the child gets them directly.
IGNORED = (signal.SIGINT, signal.SIGQUIT)
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us instead of init (prctl(2)); False if refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class Ending:
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
    terminal does not broadcast (SIGTERM, SIGHUP, SIGUSR1, SIGUSR2).
    """

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], join: Callable[[], None]
    ) -> None:
        self.pid = -1
        self._reaped = False
        self.received: list[str] = []
        handled = (*FORWARDED, *IGNORED)
        self._original = {sig: signal.getsignal(sig) for sig in handled}
        # What the child gets: the dispositions carbonwrap itself was started with, so a command
        # run under nohup still ignores SIGHUP. Python's own SIGINT handler counts as default.
        child_dispositions = {
            sig: signal.SIG_IGN if signal.getsignal(sig) == signal.SIG_IGN else signal.SIG_DFL
            for sig in handled
        }
        # Block the signals across the fork: one arriving before we know the pid stays pending
        # and is forwarded as soon as the handlers run.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)

        def preexec() -> None:
            for sig, disposition in child_dispositions.items():
                signal.signal(sig, disposition)
            join()
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

        try:
            for sig in FORWARDED:
                signal.signal(sig, self._forward)
            for sig in IGNORED:
                signal.signal(sig, signal.SIG_IGN)
            try:
                self._popen: subprocess.Popen[bytes] = subprocess.Popen(
                    list(argv), env=dict(env), preexec_fn=preexec, close_fds=True
                )
            except OSError as exc:
                self.restore_signals()
                raise exec_error(argv[0], exc) from exc
            except BaseException:
                self.restore_signals()
                raise
            self.pid = self._popen.pid
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _forward(self, signum: int, frame: Any) -> None:
        self.received.append(signal.Signals(signum).name)
        if self.pid > 0 and not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

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
                ending = ending_from_status(status)
                # Tell subprocess the child is gone so it never waits on a reused pid.
                self._popen.returncode = ending.exit_code
                return ending

    def restore_signals(self) -> None:
        """Back to the handlers carbonwrap started with, once everything is written."""
        for sig, handler in self._original.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
