"""The progress channel: a UNIX datagram socket in a private directory that the command reports
to (its path in CARBONWRAP_PROGRESS), read by one blocking thread; every report reaches the
limiter's observers (the predictor), the log gets them through a rate limiter. Message format:
messages.py; the sending side: report_progress.py."""

from __future__ import annotations

import _socket  # the C module: `socket` would cost ~6 ms of start-up for nothing used here
import atexit
import os
import sys
import time

from carbonwrap.lite import Lock, Thread, suppress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from carbonwrap.predict.messages import Report

    OnProgress = Callable[[float, float | None, str, str, float], None]

ENV = "CARBONWRAP_PROGRESS"
# done, total, unit, source ("channel" | "output"), when it arrived (time.monotonic())
_DATAGRAM_MAX = 4096  # longer datagrams are cut by the kernel: counted as bad
_UCRED = 12  # struct ucred: pid, uid, gid
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path, less the terminating NUL
_OWNER_RECHECK_S = 0.5
_HANDOVER_S = 2.0


class RateLimiter:
    """Which reports go to the log (each one is `latest` in turn, for readers in memory).

    Logged: the first report; then at most one per `interval_s`, the newest waiting (`due`)
    until its time comes, logged with the time it arrived. A report whose unit or total differs
    from the last logged one (a new phase) is logged at once, after the last report of the
    phase before it; at most MAX_CHANGES such changes per `interval_s` go at once, so
    interleaved streams (several units at a time) cannot flood the log: they wait, the newest
    of each kind (at most MAX_KINDS), and are logged together. `finish` logs whatever waits.
    Every report, logged or not, goes first to each of the observers (`watch`): the predictor.
    """

    MAX_KINDS = 4
    MAX_CHANGES = 4

    def __init__(
        self,
        interval_s: float,
        log: Callable[[Report, float], None],
        observe: Callable[[Report, float], None] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._log = log
        # every report, as it comes (in memory; not the log)
        self._observers = [] if observe is None else [observe]
        self._lock = Lock()
        self.latest: Report | None = None
        self.reports = 0
        self.logged = 0
        self._last: Report | None = None
        self._last_s = -float("inf")
        self._changes_s: list[float] = []  # when the recent changes went at once
        # the newest waiting report of each kind (unit, total), oldest kind first
        self._pending: dict[tuple[str, float | None], tuple[Report, float]] = {}

    def watch(self, observe: Callable[[Report, float], None]) -> None:
        """Every report from now on also to `observe` (once: an observer equal to one already
        watching is not added again)."""
        with self._lock:
            if observe not in self._observers:
                self._observers = [*self._observers, observe]

    def offer(self, report: Report, now_s: float) -> None:
        for observe in self._observers:
            observe(report, now_s)
        with self._lock:
            self.latest = report
            self.reports += 1
            last = self._last
            kind = (report.unit, report.total)
            self._pending.pop(kind, None)  # superseded by this one
            if report == last and not self._pending:
                return  # the log already says this
            changed = last is None or kind != (last.unit, last.total)
            if changed:
                recent = [t for t in self._changes_s if now_s - t < self.interval_s]
                changed = len(recent) < self.MAX_CHANGES
                self._changes_s = [*recent, now_s] if changed else recent
            if changed or now_s - self._last_s >= self.interval_s:
                self._write_pending(now_s)  # the last reports of other kinds, before this one
                self._write(report, now_s, now_s)
            else:
                self._pending[kind] = (report, now_s)
                if len(self._pending) > self.MAX_KINDS:
                    del self._pending[next(iter(self._pending))]

    def due(self) -> float | None:
        """When the waiting reports are to be logged (time.monotonic()), or None."""
        with self._lock:
            return self._last_s + self.interval_s if self._pending else None

    def flush_due(self, now_s: float) -> None:
        with self._lock:
            if self._pending and now_s >= self._last_s + self.interval_s:
                self._write_pending(now_s)

    def finish(self) -> None:
        """Log whatever waits: the log always has the last report."""
        with self._lock:
            self._write_pending(self._last_s)

    def _write_pending(self, now_s: float) -> None:
        pending = sorted(self._pending.values(), key=lambda item: item[1])
        self._pending.clear()
        for report, at_s in pending:
            self._write(report, at_s, now_s)

    def _write(self, report: Report, at_s: float, now_s: float) -> None:
        self._last, self._last_s = report, now_s
        self.logged += 1
        self._log(report, at_s)


class ProgressChannel:
    """The socket `path` (in a 0700 directory of its own), read on a thread from `start` to
    `close`.

    Several processes may report (DDP ranks all report the same steps): the first process to
    report is the source until it exits, and reports of others meanwhile are ignored; then the
    next one to report takes over (for _HANDOVER_S, not with a report that is behind the last
    one in the same unit and total: a rank lagging the one that has just finished).
    """

    def __init__(
        self,
        tmp_dir: str,
        run_id: str,
        on_progress: OnProgress,
        interval_s: float,
        on_report: OnProgress | None = None,
    ):
        self.directory = _make_private_dir(tmp_dir, f"carbonwrap-{run_id}")
        self.path = os.path.join(self.directory, "progress")
        atexit.register(self._remove)  # also if the run dies of a bug
        try:
            if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
                raise OSError(f"socket path longer than {_SUN_PATH_MAX} bytes")
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
            self._sock = sock
            sock.setblocking(True)  # whatever socket.setdefaulttimeout says: see _read
            sock.bind(self.path)
            # The kernel attaches each sender's pid (SCM_CREDENTIALS): whose report it is.
            with suppress(OSError, AttributeError):
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_PASSCRED, 1)
        except BaseException:
            self._remove()
            raise
        self._on_progress = on_progress
        self.limiter = RateLimiter(interval_s, self._log, observer(on_report, "channel"))
        self.bad = 0
        self.bad_example = ""
        self.other_sources = 0
        self._owner: int | None = None
        self._owner_alive_s = -float("inf")
        self._refused: set[int] = set()  # senders refused while the source ran
        self._handover: tuple[Report, float] | None = None  # the last report before it
        self._closing = False
        self._thread = Thread(target=self._read, name="carbonwrap-progress")
        self._started = False

    @property
    def latest(self) -> Report | None:
        """The newest report (logged or not)."""
        return self.limiter.latest

    def start(self) -> None:
        self._started = True
        self._thread.start()

    def close(self, warn: Callable[[str], None]) -> None:
        """Read what is queued, log the last report, warn once about bad messages, remove the
        socket and its directory. Senders from now on get ECONNREFUSED/ENOENT and drop.

        The shutdown wakes the reader, and once it has read what is queued its next receive
        returns nothing: it ends there, at once (the join's timeout only guards against a bug).
        That holds because the socket stays in blocking mode (`_receive_timeout`). A reader
        never started (the command had ended before it was due: run/phases.py) is run here,
        to the same end."""
        self._closing = True
        if self._thread.is_alive() or not self._started:
            with suppress(OSError):
                self._sock.shutdown(_socket.SHUT_RD)
            if self._started:
                self._thread.join(2.0)
            else:
                self._thread.run_here()
        self.limiter.finish()
        if self.bad:
            warn(
                f"{self.bad} progress message(s) on CARBONWRAP_PROGRESS were not understood and "
                f"ignored, e.g. {self.bad_example!r}; expected lines such as 'epoch 3/10', "
                '\'0.35\' or JSON {"done": 3, "total": 10} (see carbonwrap.progress)'
            )
        self._remove()

    def discard(self) -> None:
        """Remove the socket of a run that never started the command."""
        self._sock.close()
        self._remove()

    def _read(self) -> None:
        sock = self._sock
        cmsg_size = _socket.CMSG_SPACE(_UCRED)
        timeout: float | None = None
        try:
            while True:
                due = self.limiter.due()
                wanted = None if due is None else due - time.monotonic()
                if wanted is not None and wanted <= 0:  # due already (SO_RCVTIMEO 0: no timeout)
                    self.limiter.flush_due(time.monotonic())
                    continue
                if wanted != timeout:
                    _receive_timeout(sock, wanted)
                    timeout = wanted
                try:
                    data, ancillary, flags, _ = sock.recvmsg(_DATAGRAM_MAX, cmsg_size)
                except BlockingIOError:  # the receive timeout: a waiting report is due
                    self.limiter.flush_due(time.monotonic())
                    continue
                if not data and not ancillary and self._closing:
                    return  # shut down, and the queue is empty
                self._take(data, _sender(ancillary), flags, time.monotonic())
        except OSError:
            if not self._closing:
                raise  # a bug: the traceback shows; senders find the socket closed and drop
        finally:
            sock.close()

    def _take(self, data: bytes, pid: int, flags: int, now_s: float) -> None:
        from carbonwrap.predict.messages import parse_message  # on the first report (start-up)

        if not self._from_source(pid):
            self.other_sources += 1
            return
        if flags & _socket.MSG_TRUNC:
            self._bad(data[:80].decode("utf-8", "replace"))
            return
        for line in data.decode("utf-8", "replace").split("\n"):
            if not line.strip():
                continue
            report = parse_message(line)
            if report is None:
                self._bad(line)
            elif not self._behind(report, now_s):
                self.limiter.offer(report, now_s)

    def _behind(self, report: Report, now_s: float) -> bool:
        """Whether a new source's report is behind the last one of the source before it (same
        unit and total, less done), within _HANDOVER_S of the handover: a rank that lags the
        one that has just finished, not a new phase."""
        if self._handover is None:
            return False
        last, since_s = self._handover
        if now_s - since_s >= _HANDOVER_S:
            self._handover = None
            return False
        if (report.unit, report.total) == (last.unit, last.total) and report.done < last.done:
            self.other_sources += 1
            return True
        return False

    def _from_source(self, pid: int) -> bool:
        """The first sender is the source; another takes over once it has exited. The source
        is looked up in /proc at once for a sender not seen before, else at most every
        _OWNER_RECHECK_S (DDP ranks report at every step)."""
        if self._owner is None or pid == self._owner:
            self._owner = pid
            return True
        now = time.monotonic()
        known = pid in self._refused
        if known and now - self._owner_alive_s < _OWNER_RECHECK_S:
            return False
        if _alive(self._owner):
            self._owner_alive_s = now
            if not known and len(self._refused) < 1024:
                self._refused.add(pid)
            return False
        self._owner, self._owner_alive_s = pid, -float("inf")
        self._refused.clear()
        latest = self.limiter.latest
        self._handover = None if latest is None else (latest, now)
        return True

    def _bad(self, text: str) -> None:
        self.bad += 1
        if self.bad == 1:
            self.bad_example = text.strip()[:60]

    def _log(self, report: Report, at_s: float) -> None:
        self._on_progress(report.done, report.total, report.unit, "channel", at_s)

    def _remove(self) -> None:
        for remove, path in ((os.unlink, self.path), (os.rmdir, self.directory)):
            with suppress(OSError):
                remove(path)


def open_channel(
    environ: Mapping[str, str],
    run_id: str,
    on_progress: OnProgress,
    interval_s: float,
    notes: list[str],
    on_report: OnProgress | None = None,
) -> ProgressChannel | None:
    """The run's channel in $TMPDIR (else /tmp), or None with a note: progress reports are never
    worth failing a run for. `on_progress` gets the reports the rate limiter lets into the log;
    `on_report`, if given, every report as it comes."""
    tmp = environ.get("TMPDIR") or "/tmp"
    for root in dict.fromkeys((tmp if os.path.isabs(tmp) else "/tmp", "/tmp")):
        try:
            return ProgressChannel(root, run_id, on_progress, interval_s, on_report)
        except OSError as exc:
            reason = exc.strerror or str(exc)
    notes.append(f"no progress channel ({reason}): the command's progress reports are not recorded")
    return None


class Observer:
    """A RateLimiter's observer that calls `on_report` like `on_progress`; two for the same
    callback and source are equal (`RateLimiter.watch` adds it once)."""

    __slots__ = ("on_report", "source")

    def __init__(self, on_report: OnProgress, source: str) -> None:
        self.on_report = on_report
        self.source = source

    def __call__(self, report: Report, at_s: float) -> None:
        self.on_report(report.done, report.total, report.unit, self.source, at_s)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Observer):
            return NotImplemented
        return (self.on_report, self.source) == (other.on_report, other.source)

    def __hash__(self) -> int:
        return hash((self.on_report, self.source))


def observer(on_report: OnProgress | None, source: str) -> Observer | None:
    """A RateLimiter's `observe` that calls `on_report` like `on_progress`; None without one."""
    return None if on_report is None else Observer(on_report, source)


def _make_private_dir(root: str, name: str) -> str:
    path = os.path.join(root, name)
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)  # whatever the umask
    return path


def _receive_timeout(sock: _socket.socket, timeout_s: float | None) -> None:
    """How long a receive may wait (None: for ever), as SO_RCVTIMEO: a receive that times out
    fails with EAGAIN (BlockingIOError).

    Not `settimeout`: that puts the socket in non-blocking mode and polls, and a non-blocking
    receive on a shut-down datagram socket with nothing queued fails with EAGAIN instead of
    returning nothing, while poll calls it readable: the reader would spin until its timeout
    (up to the log interval) and `close` would wait 2 s for it. A blocking receive on a
    shut-down socket whose queue is empty returns nothing at once (net/core/datagram.c), and
    SO_RCVTIMEO bounds the wait without leaving blocking mode (socket(7))."""
    import struct  # only once a report waits for its time

    if timeout_s is None:
        seconds, micros = 0, 0  # 0: no timeout
    else:
        seconds, micros = divmod(max(1, round(timeout_s * 1e6)), 1_000_000)
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))


def _sender(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The sending process's pid from SCM_CREDENTIALS; 0 when absent."""
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_CREDENTIALS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    return 0


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2][1:2]
        return state not in (b"Z", b"X", b"x")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True
