"""--progress-from-output on a terminal: the command gets a pseudo-terminal of the terminal's size
and modes, as under script(1), and carbonwrap copies what it writes there to the real terminal,
byte for byte, scanning a copy (and the keys the other way). Why, and what it costs:
docs/ARCHITECTURE.md."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import termios
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO, cast

from carbonwrap.predict.escapes import PLAIN, cuts_character, state_after
from carbonwrap.predict.handover import spawn_cat
from carbonwrap.predict.messages import Report
from carbonwrap.predict.outputscan import OutputScanner
from carbonwrap.predict.rawterm import OwnTerminal, foreground

CHUNK = 1 << 16
KEYS_MAX = 1 << 16  # typed keys held while the command does not read them; then stdin waits
BESIDE_WAIT_S = 0.25  # the longest a frame waits for the command to finish an escape sequence


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """All of `data`, waiting out a descriptor someone else left non-blocking."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)


class TerminalRelay:
    """The command's `child_fds` (some of 1 and 2, on one terminal) on a new pseudo-terminal
    of the terminal's size and modes, whose output is copied to carbonwrap's own `child_fds[0]`
    and shown to a scanner.

    With `keys` (stdin is that terminal and carbonwrap runs in its foreground), the pty is also
    the command's stdin and its controlling terminal, in a session of its own (`new_session`),
    and every key goes to it, carbonwrap's terminal raw (rawterm.py: raw mode, Ctrl-Z, resizes).
    Without `keys` the pty carries output only: the command keeps carbonwrap's process group
    and session, the real stdin and controlling terminal, so keys and signals reach it directly;
    the pty does no output processing then (-opost), since the real terminal does it.
    """

    def __init__(self, child_fds: tuple[int, ...], name: str, offer: Callable[[Report], None]):
        self.child_fds, self.name = child_fds, name
        self.dest_fd = child_fds[0]
        self._offer = offer
        self.due: Callable[[], float | None] = lambda: None
        self.flush_due: Callable[[float], None] = lambda now_s: None
        self.failed: str | None = None
        self.keys = (
            os.get_inheritable(0)  # not carbonwrap's placeholder for a closed stdin
            and os.isatty(0)
            and os.fstat(0).st_rdev == os.fstat(self.dest_fd).st_rdev
            and foreground()
        )
        try:
            attributes = termios.tcgetattr(self.dest_fd)
        except termios.error as exc:
            raise OSError(*exc.args) from None
        if not self.keys:
            attributes[1] &= ~termios.OPOST
        self.master, self._slave = os.openpty()
        self._wake_r, self._wake_w = -1, -1
        # One writer: the command's output and carbonwrap's own writes (the live view's frames)
        # take turns here, never inside an escape sequence or a character of the command's.
        lock = threading.RLock()
        self._writing = threading.Condition(lock)
        try:
            termios.tcsetattr(self._slave, termios.TCSANOW, attributes)
            self.own = OwnTerminal(self.dest_fd, self.master, self.keys, lock, self._poke)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, self.own.size)
            self.slave_path = os.ttyname(self._slave)
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except termios.error as exc:
            self.discard()
            raise OSError(*exc.args) from None
        except BaseException:
            self.discard()
            raise
        self._keys_off = False  # the command has ended: keys typed now are the shell's
        self._handing_over = False
        self._state = PLAIN  # escapes.py: where the output so far ends
        self._open = False  # inside a sequence or a character: carbonwrap's writes wait
        self._thread = threading.Thread(target=self._relay, name="carbonwrap-pty", daemon=True)

    @property
    def file_actions(self) -> list[tuple[Any, ...]]:
        if self.keys:
            # Opened by the command itself after setsid: a session leader without a controlling
            # terminal that opens one without O_NOCTTY acquires it (open(2); tty_open in Linux).
            actions: list[tuple[Any, ...]] = [
                (os.POSIX_SPAWN_OPEN, 0, self.slave_path, os.O_RDWR, 0)
            ]
            return actions + [(os.POSIX_SPAWN_DUP2, 0, fd) for fd in self.child_fds]
        return [(os.POSIX_SPAWN_DUP2, self._slave, fd) for fd in self.child_fds]

    @property
    def new_session(self) -> bool:
        """Whether the command is to lead a session of its own, on the pty (`Child`)."""
        return self.keys

    def spawned(self, pid: int) -> None:
        """The command runs as `pid`. Close carbonwrap's copy of the pty's slave side: the
        output ends (EIO) once the command's tree has closed every one."""
        self.own.pid = pid
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def start(self) -> None:
        """From the main thread, once the command runs: the handlers, raw mode, the thread."""
        os.set_blocking(self.master, False)  # keys never block the thread; output is polled
        self.own.start()
        self._thread.start()

    def write_beside(self, data: bytes) -> None:
        """carbonwrap's own bytes for the terminal while the command's output goes through here:
        written between the command's writes, not inside one of its escape sequences or
        characters (waiting up to BESIDE_WAIT_S for one to end). OSError: the terminal is gone."""
        with self._writing:
            if self._open:
                self._writing.wait_for(lambda: not self._open, BESIDE_WAIT_S)
            _write_all(self.dest_fd, data)

    def own_stream(self, stream: TextIO) -> TextIO:
        """`stream` (carbonwrap's stderr on this terminal) for carbonwrap's own lines while the
        terminal is raw: each newline then goes as CR LF, through the one writer."""
        return cast(TextIO, _OwnLines(stream, self)) if self.keys else stream

    def finish(self, grace_s: float) -> str | None:
        """After the command has exited: stop taking keys, copy the rest of the output; if
        processes left running still hold the pty after `grace_s`, hand it to `cat`. Then the
        terminal as it was. A note about what happened, or None."""
        self._keys_off = True
        self._poke()
        note = None
        if self._thread.ident is not None:  # started
            self._thread.join(grace_s)
        if self._thread.is_alive():
            self._handing_over = True
            self._poke()
            self._thread.join()
            note = self._hand_over()
        self.own.give_back()
        self.discard()
        return note

    def discard(self) -> None:
        """Close every descriptor (also of a relay whose command never started)."""
        for name in ("master", "_slave", "_wake_r", "_wake_w"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    # The thread: output to the terminal and the scanner, keys to the pty.

    def _relay(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        scanner = OutputScanner()
        buffer = bytearray(CHUNK)
        keys = bytearray()  # typed, not yet taken by the pty
        suspend_at = -1  # where in `keys` a Ctrl-Z waits to reach the pty
        reading_keys, polling_keys = self.keys, False
        master_events, recheck = 0, True
        while True:
            if recheck:  # not for each chunk of output: keys and wake-ups change these
                events = select.POLLIN | (select.POLLOUT if keys else 0)
                if events != master_events:
                    poller.register(self.master, events)
                    master_events = events
                want_keys = (
                    reading_keys and not self._keys_off and len(keys) < KEYS_MAX and foreground()
                )
                if want_keys != polling_keys:  # in the background a read would stop us (SIGTTIN)
                    poller.register(0, select.POLLIN) if want_keys else poller.unregister(0)
                    polling_keys = want_keys
                recheck = False
            due = self.due()
            timeout_ms = None if due is None else max(0.0, (due - time.monotonic()) * 1000)
            if reading_keys and not want_keys:  # look again now and then (a shell's tcsetpgrp)
                timeout_ms = min(timeout_ms if timeout_ms is not None else 1000.0, 1000.0)
            ready = poller.poll(timeout_ms)
            if not ready:
                self.flush_due(time.monotonic())
                recheck = True
                continue
            for fd, events in ready:
                if fd == self._wake_r:  # SIGCONT, the end, a hand-over
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 64)
                    if self._handing_over:
                        return
                    recheck = True
                elif fd == 0:
                    try:
                        typed = os.read(0, CHUNK)
                    except BlockingIOError:
                        continue
                    except OSError:  # hung up
                        typed = b""
                    reading_keys, recheck = bool(typed), True
                    if suspend_at < 0 and typed:
                        at = self.own.suspend_in(typed)
                        suspend_at = len(keys) + at if at >= 0 else -1
                    keys += typed
                else:  # the master
                    if events & select.POLLOUT and keys:
                        try:
                            taken = os.write(self.master, keys)
                        except BlockingIOError:
                            taken = 0
                        except OSError:  # nobody holds the slave side any more
                            taken = len(keys)
                        del keys[:taken]
                        if 0 <= suspend_at < taken:  # the pty has had its Ctrl-Z
                            self.own.keyboard_stop()
                        suspend_at = suspend_at - taken if suspend_at >= taken else -1
                        recheck = True
                    if events & ~select.POLLOUT and not self._output(scanner, buffer):
                        return

    def _output(self, scanner: OutputScanner, buffer: bytearray) -> bool:
        """What the command wrote, to the terminal and the scanner; False at the end."""
        try:
            size = os.readv(self.master, [buffer])
        except BlockingIOError:
            return True
        except OSError:  # EIO: every slave descriptor is closed, the output is over
            return False
        if size == 0:
            return False
        self._copy(buffer, size)
        report = scanner.feed(buffer, size)
        if report is not None:
            self._offer(report)
        return True

    def _copy(self, buffer: bytearray, size: int) -> None:
        """The command's output to the terminal, unless that has gone: then it is dropped,
        so that the command, which has had the terminal's SIGHUP, is not blocked by a full pty
        on its way out."""
        with self._writing:
            if self.failed is not None:
                return
            try:
                _write_all(self.dest_fd, memoryview(buffer)[:size])
            except OSError as exc:  # EIO: hung up
                self.failed = f"writing the command's {self.name} failed: {exc.strerror}"
                self._open = False
                self._writing.notify_all()
                return
            self._state = state_after(self._state, buffer, size)
            self._open = self._state != PLAIN or cuts_character(buffer, size)
            if not self._open:
                self._writing.notify_all()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _hand_over(self) -> str:
        os.set_blocking(self.master, True)  # cat would take EAGAIN for the end
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_DUP2, self.master, 0),
            (os.POSIX_SPAWN_DUP2, self.dest_fd, 1),
            # A pty's end is EIO, which cat would report; nothing else can go wrong here.
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]
        failed = spawn_cat(actions)
        if failed is not None:
            return (
                f"processes left running still write to {self.name}, a terminal that went "
                f"through carbonwrap (--progress-from-output); cat could not take it over "
                f"({failed}): their pseudo-terminal hangs up as carbonwrap exits"
            )
        return (
            f"processes left running still write to {self.name}, a terminal; a cat process "
            "copies their output on (--progress-from-output)"
        )


class _OwnLines:
    """carbonwrap's stderr while its terminal is raw (no output processing): "\\n" as "\\r\\n",
    written between the command's output; as it is otherwise."""

    def __init__(self, stream: TextIO, relay: TerminalRelay) -> None:
        self._stream, self._relay = stream, relay

    def write(self, text: str) -> int:
        if not self._relay.own.raw:
            return self._stream.write(text)
        self._stream.flush()
        encoding = getattr(self._stream, "encoding", None) or "utf-8"
        self._relay.write_beside(text.replace("\n", "\r\n").encode(encoding, "replace"))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
