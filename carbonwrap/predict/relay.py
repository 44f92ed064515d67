"""--progress-from-output: the command's stdout and stderr go through pipes that carbonwrap copies,
byte for byte and in order, to where they were going, while a copy is scanned for progress
(outputscan.py). A pipe only where the stream is not a terminal (the command sees no terminal
there anyway); a terminal gets a pseudo-terminal of its own instead (ptyrelay.py, loaded only
then), so that isatty, the size, colours, raw mode and job control stay as they were."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap.predict.channel import RateLimiter, observer
from carbonwrap.predict.handover import spawn_cat
from carbonwrap.predict.messages import Report
from carbonwrap.predict.outputscan import OutputScanner

CHUNK = 1 << 16
PIPE_SIZE = 1 << 20  # fewer wake-ups, and the command blocks less often than with 64 KiB
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux; the constant is in fcntl from 3.10 only)
_NAMES = {1: "stdout", 2: "stderr"}

if TYPE_CHECKING:
    from carbonwrap.predict.channel import OnProgress
    from carbonwrap.predict.ptyrelay import TerminalRelay


class _Pipe:
    """One pipe: the command writes into `write_fd` (as `child_fds`); a thread copies what
    arrives to carbonwrap's own `dest_fd` and shows each chunk to a scanner."""

    def __init__(self, dest_fd: int, child_fds: tuple[int, ...], offer: Callable[[Report], None]):
        self.dest_fd, self.child_fds = dest_fd, child_fds
        self.name = "+".join(_NAMES[fd] for fd in child_fds)
        self._offer = offer
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        with contextlib.suppress(OSError, ImportError):
            import fcntl

            fcntl.fcntl(self.write_fd, _F_SETPIPE_SZ, PIPE_SIZE)
        self.failed: str | None = None  # the first failed write to the destination
        self.due: Callable[[], float | None] = lambda: None
        self.flush_due: Callable[[float], None] = lambda now_s: None
        self._thread = threading.Thread(target=self._copy, name=f"carbonwrap-{self.name}")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def _copy(self) -> None:
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        scanner = OutputScanner()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            due = self.due()
            timeout_ms = None if due is None else max(0.0, (due - time.monotonic()) * 1000)
            ready = poller.poll(timeout_ms)
            if not ready:
                self.flush_due(time.monotonic())
                continue
            if any(fd == self._wake_r for fd, _ in ready):
                return  # handed over (leftover processes still write): see `finish`
            size = os.readv(self.read_fd, [buffer])
            if size == 0:
                return  # every writer has closed it: the command and its tree are done
            if not self._write(view, size):
                return
            report = scanner.feed(buffer, size)
            if report is not None:
                self._offer(report)

    def _write(self, view: memoryview, size: int) -> bool:
        """All of view[:size] to the destination; False once the destination is a pipe nobody
        reads any more."""
        done = 0
        while done < size:
            try:
                done += os.write(self.dest_fd, view[done:size])
            except BlockingIOError:  # a destination left non-blocking by whoever opened it
                select.select([], [self.dest_fd], [])
            except BrokenPipeError:
                # Its reader has gone: without carbonwrap the command would get EPIPE (and
                # SIGPIPE) now. Closing our end gives it exactly that on its next write.
                os.close(self.read_fd)
                self.read_fd = -1
                return False
            except OSError as exc:  # a full disk: the command would have seen the error
                if self.failed is None:
                    self.failed = f"writing the command's {self.name} failed: {exc.strerror}"
                return True  # drop this chunk, keep the command from blocking
        return True

    def finish(self, grace_s: float) -> str | None:
        """Wait for the end of the output; if processes left running still hold the pipe after
        `grace_s`, stop copying and hand the pipe to `cat`, which goes on copying to the same
        destination after carbonwrap exits. A note about what happened, or None."""
        self._thread.join(grace_s)
        note = None
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join()
            note = self._hand_over()
        for fd in (self.read_fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self.read_fd = -1
        return note

    def _hand_over(self) -> str:
        failed = spawn_cat(
            [(os.POSIX_SPAWN_DUP2, self.read_fd, 0), (os.POSIX_SPAWN_DUP2, self.dest_fd, 1)]
        )
        if failed is not None:
            return (
                f"processes left running still write to {self.name}, which went through "
                f"carbonwrap (--progress-from-output); cat could not take it over "
                f"({failed}): their writes fail once carbonwrap has exited"
            )
        return (
            f"processes left running still write to {self.name}; a cat process copies it on "
            "(--progress-from-output)"
        )


class OutputRelay:
    """The pipes for stdout and stderr where they are not terminals (one pipe for both when
    they go to the same file or pipe, keeping their order), and a pseudo-terminal for those on
    a terminal (`terminal`). `file_actions` for posix_spawn; reports go through a RateLimiter
    to `on_progress` with source "output" (and each one to `on_report`, if given). What cannot
    be relayed is said in `at_start` (and `notes`): the run says it before the command runs."""

    def __init__(
        self,
        on_progress: OnProgress,
        interval_s: float,
        notes: list[str],
        on_report: OnProgress | None = None,
    ) -> None:
        self._on_progress = on_progress
        self.limiter = RateLimiter(interval_s, self._log, observer(on_report, "output"))
        self._epochs_seen = False
        self.at_start: list[str] = []
        self.terminal: TerminalRelay | None = None
        targets: dict[int, tuple[int, int]] = {}
        terminals: dict[int, int] = {}  # fd: the terminal's device number
        for fd in (1, 2):
            try:
                status = os.fstat(fd)
            except OSError:
                continue  # closed: nothing to relay
            if not os.get_inheritable(fd):
                continue  # closed for the command: carbonwrap's /dev/null placeholder (entry.py)
            if os.isatty(fd):
                terminals[fd] = status.st_rdev
            else:
                targets[fd] = (status.st_dev, status.st_ino)
        groups: list[tuple[int, tuple[int, ...]]]
        if len(targets) == 2 and targets[1] == targets[2]:
            groups = [(1, (1, 2))]  # 2>&1: one pipe, so that their order is kept
        else:
            groups = [(fd, (fd,)) for fd in targets]
        self.pipes: list[_Pipe] = []
        try:
            for dest, child_fds in groups:
                pipe = _Pipe(dest, child_fds, self._offer)
                pipe.due, pipe.flush_due = self.limiter.due, self.limiter.flush_due
                self.pipes.append(pipe)
            if terminals:
                self._open_terminal(terminals)
        except BaseException:
            self.discard()
            raise
        notes += self.at_start

    def _open_terminal(self, terminals: dict[int, int]) -> None:
        first = min(terminals)
        on_it = tuple(fd for fd in sorted(terminals) if terminals[fd] == terminals[first])
        name = "+".join(_NAMES[fd] for fd in on_it)
        if len(on_it) < len(terminals):
            self.at_start.append(
                "--progress-from-output: stdout and stderr are two different terminals; "
                "stderr is left as it is, its progress not read"
            )
        try:
            from carbonwrap.predict.ptyrelay import TerminalRelay  # only for a terminal

            self.terminal = TerminalRelay(on_it, name, self._offer)
        except OSError as exc:  # no pseudo-terminal to be had (EMFILE, ptmx limit, no devpts)
            self.at_start.append(
                f"--progress-from-output: no pseudo-terminal for the command's {name} "
                f"({exc.strerror or exc}): it writes to the terminal directly, and progress "
                "is read there only from CARBONWRAP_PROGRESS"
            )
            return
        self.terminal.due, self.terminal.flush_due = self.limiter.due, self.limiter.flush_due

    @property
    def file_actions(self) -> list[tuple[Any, ...]]:
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_DUP2, pipe.write_fd, fd) for pipe in self.pipes for fd in pipe.child_fds
        ]
        return actions + (self.terminal.file_actions if self.terminal is not None else [])

    @property
    def new_session(self) -> bool:
        """Whether the command leads a session of its own, on the pty (`Child`'s argument)."""
        return self.terminal is not None and self.terminal.new_session

    def spawned(self, pid: int = -1) -> None:
        """The command runs as `pid`. Close carbonwrap's copies of the write ends: the end of
        the output is then the moment the command's tree has closed them all."""
        for pipe in self.pipes:
            if pipe.write_fd >= 0:
                os.close(pipe.write_fd)
                pipe.write_fd = -1
        if self.terminal is not None:
            self.terminal.spawned(pid)

    def start(self) -> None:
        """From the main thread (the terminal's signal handlers), once the command runs."""
        for pipe in self.pipes:
            pipe.start()
        if self.terminal is not None:
            self.terminal.start()

    def beside(self, stream: TextIO) -> Callable[[bytes], None] | None:
        """How carbonwrap writes to `stream`'s terminal while the command's output is copied
        there (the live view): through the one writer, or None where the output is not."""
        if self.terminal is None or _fd_of(stream) not in self.terminal.child_fds:
            return None
        return self.terminal.write_beside

    def own_stream(self, stream: TextIO) -> TextIO:
        """`stream` (carbonwrap's stderr) for carbonwrap's own lines during the run: on a
        terminal made raw, each newline as CR LF, between the command's writes."""
        if self.terminal is None or _fd_of(stream) not in self.terminal.child_fds:
            return stream
        return self.terminal.own_stream(stream)

    def finish(self, warn: Callable[[str], None], grace_s: float = 0.5) -> None:
        """After the command has exited: copy the rest (the terminal as it was again), log the
        last report, say what failed."""
        relays: list[_Pipe | TerminalRelay] = [*self.pipes]
        if self.terminal is not None:  # first: keys typed from now on are the shell's
            relays.insert(0, self.terminal)
        for relay in relays:
            note = relay.finish(grace_s)
            if note is not None:
                warn(note)
            if relay.failed is not None:
                warn(relay.failed)
        self.limiter.finish()

    def discard(self) -> None:
        """Close every descriptor of a relay whose command never started."""
        self.spawned()
        for pipe in self.pipes:
            for fd in (pipe.read_fd, pipe._wake_r, pipe._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.pipes = []
        if self.terminal is not None:
            self.terminal.discard()
            self.terminal = None

    def _offer(self, report: Report) -> None:
        # Across stdout and stderr as within each: once epochs are seen, other bars are the
        # bars of one epoch.
        if report.unit == "epoch":
            self._epochs_seen = True
        elif self._epochs_seen:
            return
        self.limiter.offer(report, time.monotonic())

    def _log(self, report: Report, at_s: float) -> None:
        self._on_progress(report.done, report.total, report.unit, "output", at_s)


def _fd_of(stream: TextIO) -> int:
    try:
        return stream.fileno()
    except (OSError, ValueError):  # not a file (a test's StringIO), or closed
        return -1
