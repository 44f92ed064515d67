"""carbonwrap's own terminal while the command has a pseudo-terminal (ptyrelay.py): raw while the
command runs in the foreground, as it was whenever the shell has it (at the end, on Ctrl-Z, after
`bg`, at exit); its size copied to the pty; job control for a command that leads a session."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any

_WINSIZE = b"\0" * 8  # struct winsize: rows, columns, x and y pixels (unsigned short each)
_DISABLED = b"\0"  # _POSIX_VDISABLE on Linux: a special character that is off


def raw(attributes: list[Any]) -> list[Any]:
    """cfmakeraw(3) (tty.cfmakeraw is Python 3.12+): bytes in and out as they are."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attributes
    iflag &= ~(
        termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
        | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON
    )  # fmt: skip
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc = list(cc)
    cc[termios.VMIN], cc[termios.VTIME] = 1, 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


def foreground() -> bool:
    """Whether carbonwrap's process group is its terminal's foreground group (not `&`, `bg`)."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:  # not our controlling terminal
        return False


def ignores(pid: int, signum: int) -> bool:
    """Whether process `pid` ignores `signum` (SigIgn in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigIgn:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


@contextlib.contextmanager
def _no_ttou() -> Iterator[None]:
    """tcsetattr from the background stops the caller with SIGTTOU unless it is blocked."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class OwnTerminal:
    """The terminal on carbonwrap's `fd` beside the command's pty (`master`).

    Always: on SIGWINCH the terminal's size goes to the pty, whose SIGWINCH then reaches the
    command's foreground group. Without `keys` the command shares carbonwrap's group, which the
    terminal's SIGWINCH reached before the pty had the size: it is sent again once it has.

    With `keys` carbonwrap's stdin is the terminal and the command leads a session of its own on
    the pty (`pid`, once spawned). The terminal is raw while carbonwrap is in the foreground, so
    every key reaches the pty, whose line discipline makes Ctrl-C and Ctrl-\\ the command's
    signals, as the real one would. Ctrl-Z needs help: the kernel ignores SIGTSTP in a process
    group with no parent in its session beside it (an orphaned group: the command's own, whose
    parent is carbonwrap), so when Ctrl-Z reaches that group (`keyboard_stop`), carbonwrap
    stops it with SIGSTOP, gives the terminal back, stops itself, and on `fg` or `bg` continues
    it (SIGCONT); a SIGTSTP from elsewhere (`kill -TSTP %1`) does the same. SIGINT and SIGQUIT
    sent to carbonwrap (`kill -INT %1`: to the job, which no longer holds the command) go to the
    pty's foreground group.
    """

    def __init__(
        self, fd: int, master: int, keys: bool, lock: threading.RLock, poke: Callable[[], None]
    ) -> None:
        self.fd, self.master, self.keys = fd, master, keys
        self.pid = -1  # the command, the leader of the pty's session (keys)
        self._lock = lock  # the relay's one writer: modes change between writes
        self._poke = poke  # wakes the relay's thread: keys again, or none in the background
        self.size = fcntl.ioctl(fd, termios.TIOCGWINSZ, _WINSIZE)
        self.raw = False
        self._saved: list[Any] | None = None  # the terminal's modes as they were (keys)
        self._stopped_group = 0  # stopped with carbonwrap, continued with it
        self._handlers: dict[int, Any] = {}

    def start(self) -> None:
        """From the main thread, once the command runs: the handlers, and raw mode (keys)."""
        handlers: list[tuple[int, Callable[[int, Any], None]]] = [(signal.SIGWINCH, self._on_winch)]
        if self.keys:
            self._saved = termios.tcgetattr(0)
            atexit.register(self.give_back)  # an exception, a bug: the terminal comes back
            handlers += [
                (signal.SIGTSTP, self._on_tstp),
                (signal.SIGCONT, self._on_cont),
                (signal.SIGINT, self._on_interrupt),
                (signal.SIGQUIT, self._on_interrupt),
            ]
        for sig, handler in handlers:
            self._handlers[sig] = signal.signal(sig, handler)
        self._make_raw()

    def give_back(self) -> None:
        """The terminal's modes and the handlers as they were; idempotent."""
        self._make_cooked()
        self._saved = None
        atexit.unregister(self.give_back)
        if threading.current_thread() is threading.main_thread():
            for sig, previous in self._handlers.items():
                signal.signal(sig, signal.SIG_DFL if previous is None else previous)
            self._handlers.clear()

    def suspend_in(self, typed: bytes) -> int:
        """Where `typed` holds the pty's suspend character (Ctrl-Z) while the pty makes signals
        of such keys, or -1."""
        try:
            attributes = termios.tcgetattr(self.master)  # the slave side's modes (Linux)
        except termios.error:
            return -1
        suspend = attributes[6][termios.VSUSP]
        if not attributes[3] & termios.ISIG or suspend == _DISABLED:
            return -1
        return typed.find(suspend)

    def keyboard_stop(self) -> None:
        """Ctrl-Z has reached the pty (from the relay's thread): where the kernel will not stop
        the foreground group (the command's own, orphaned) and it does not ignore SIGTSTP,
        the job stops, in the main thread (`_on_tstp`). A job of a shell in the pty (a group
        of its own) is stopped by the kernel, and the shell takes over, as it would anyway."""
        try:
            group = os.tcgetpgrp(self.master)
        except OSError:
            return
        if group == self.pid and not ignores(group, signal.SIGTSTP):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTSTP)

    def resize(self) -> None:
        try:
            size = fcntl.ioctl(self.fd, termios.TIOCGWINSZ, _WINSIZE)
            if size == self.size:
                return
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            return
        self.size = size
        if not self.keys:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgrp(), signal.SIGWINCH)  # ours then finds the size unchanged

    def _make_raw(self) -> None:
        if self._saved is None:
            return
        with _no_ttou():
            if not foreground():  # the shell has the terminal (`bg`): its modes are its own
                self.raw = False
                return
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSANOW, raw(self._saved))
                self.raw = True

    def _make_cooked(self) -> None:
        if self._saved is None or not self.raw:
            return
        with self._lock, _no_ttou():  # between two writes of the relay's, not in one
            self.raw = False
            if foreground():
                with contextlib.suppress(termios.error):
                    termios.tcsetattr(0, termios.TCSANOW, self._saved)

    # Signal handlers (main thread).

    def _on_winch(self, signum: int, frame: Any) -> None:
        self.resize()

    def _on_tstp(self, signum: int, frame: Any) -> None:
        """The job stops: the pty's foreground group (SIGSTOP: its SIGTSTP does nothing),
        then carbonwrap, the terminal given back first; continued: the other way round."""
        with contextlib.suppress(OSError):
            group = os.tcgetpgrp(self.master)
            if group > 0:
                os.killpg(group, signal.SIGSTOP)
                self._stopped_group = group
        self._make_cooked()
        current = signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, current)
        self._on_cont(signal.SIGCONT, frame)

    def _on_cont(self, signum: int, frame: Any) -> None:
        # Also after a SIGSTOP from elsewhere, which may have left the terminal raw for the shell.
        self._make_raw()
        self.resize()
        group, self._stopped_group = self._stopped_group, 0
        if group:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGCONT)
        self._poke()  # keys again (or none in the background)

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.killpg(os.tcgetpgrp(self.master), signum)
