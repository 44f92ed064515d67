"""Tell the carbonwrap run this process is under how far it is: `carbonwrap.progress(3, 10,
"epoch")`. Standard library only; a no-op outside carbonwrap; never raises, never blocks.

Under `carbonwrap run`, the command's environment holds CARBONWRAP_PROGRESS: the path of a UNIX
datagram socket that carbonwrap reads. Each report is one datagram of text, one line per report:

    epoch 3/10        UNIT DONE/TOTAL (UNIT: a letter, then letters, digits, _ . -; at most 32)
    3/10              DONE/TOTAL without a unit (recorded as unit "it")
    step 1200         UNIT DONE, total unknown
    0.35  or  35%     a fraction of the whole
    {"done": 3, "total": 10, "unit": "epoch"}   JSON (total and unit optional)

Numbers are plain decimals, DONE at most TOTAL. Messages carbonwrap cannot read are ignored and
counted (one warning in the log at the end). From a shell script:

    python3 -m carbonwrap.report_progress epoch 3/10

or with socat: `echo "epoch 3/10" | socat -u - UNIX-SENDTO:"$CARBONWRAP_PROGRESS"`.

Several processes may report (DDP ranks, workers): carbonwrap keeps the reports of the first
process that reports, until that process has exited; then the next one to report takes over.

The command may also read back the run's totals so far, e.g. to log them beside its own metrics
(the framework callbacks in carbonwrap.integrations do): `carbonwrap.report_progress.totals()`
gives {"energy_kwh", "co2e_g", "elapsed_s", "intensity_g_per_kwh", ...} from a small file that
carbonwrap keeps current once the command has reported progress (CARBONWRAP_TOTALS names it),
or None outside carbonwrap and before the first report. It reads one small file: never blocks.

Cost: the first call opens and connects a socket (once per process; again in a child after
os.fork); each later call is one non-blocking send(2), a few microseconds. When carbonwrap's
queue is full the report is dropped (a later one supersedes it); the last dropped report is
sent again at interpreter exit, waiting at most 0.1 s for room. When carbonwrap has gone
(the socket is closed or removed), every later call returns at once.
"""

import _thread  # not threading: ~1 ms to import, for one lock
import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (import carbonwrap is light)
if TYPE_CHECKING:
    import _socket

ENV = "CARBONWRAP_PROGRESS"
TOTALS_ENV = "CARBONWRAP_TOTALS"  # carbonwrap/live/totals.py writes it
_TOTALS_MAX = 4096  # the file is ~200 bytes: more is not carbonwrap's
# What `totals_for_log` hands a trainer's logger: the file's keys and the names they log under.
LOG_KEYS = (("energy_kwh", "carbonwrap_energy_kwh"), ("co2e_g", "carbonwrap_co2e_g"))
EXIT_WAIT_S = 0.1

_sock: "_socket.socket | None" = None
_off = False  # no channel, or carbonwrap has gone: every call returns at once
_lock = _thread.allocate_lock()  # opening only; sends need no lock
_dropped: "bytes | None" = None  # the last report dropped for a full queue
_exit_hook = False
_flags = 0


def progress(done: float, total: "float | None" = None, unit: "str | None" = None) -> None:
    """Report `done` of `total` `unit`s to carbonwrap; nothing when not under carbonwrap.

    progress(0.35)              a fraction of the whole
    progress(3, 10)             3 of 10 (no unit)
    progress(3, 10, "epoch")    3 of 10 epochs
    progress(1200, unit="step") 1200 steps, total unknown

    Never raises and never blocks: a report carbonwrap cannot take now is dropped.
    """
    global _dropped
    sock = _sock
    if sock is None:
        if _off:
            return
        sock = _open()
        if sock is None:
            return
    try:
        message = _message(done, total, unit)
    except Exception:  # a value that cannot be formatted: not this call's caller's problem
        return
    try:
        sock.send(message, _flags)
        _dropped = None
    except BlockingIOError:  # carbonwrap's queue is full: drop; a later report supersedes it
        _dropped = message
        _at_exit_resend()
    except Exception:  # carbonwrap has gone (ECONNREFUSED, EPIPE) or something else odd
        _give_up()


def totals() -> "dict[str, float | None] | None":
    """The run's totals so far, as carbonwrap last wrote them: energy_j, energy_kwh (attributed,
    before PUE), co2e_g (PUE included), elapsed_s, time_s, pue, intensity_g_per_kwh; None
    outside carbonwrap, before the command's first progress report, or if the file cannot be
    read. Never raises, never blocks (O_NONBLOCK: not even on something that is not a file)."""
    path = os.environ.get(TOTALS_ENV)
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            data = os.read(fd, _TOTALS_MAX + 1)
        finally:
            os.close(fd)
        if len(data) > _TOTALS_MAX:
            return None
        import json  # only here: `import carbonwrap` stays light

        value = json.loads(data)
    except Exception:  # not there yet, gone, or not carbonwrap's
        return None
    if not isinstance(value, dict):
        return None
    return {
        str(k): float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        for k, v in value.items()
    }


def totals_for_log() -> "dict[str, float]":
    """The totals under the names a trainer's logger gets them (LOG_KEYS:
    carbonwrap_energy_kwh, carbonwrap_co2e_g); {} when there are none (`totals`)."""
    found = totals()
    if found is None:
        return {}
    logged: dict[str, float] = {}
    for key, name in LOG_KEYS:
        value = found.get(key)
        if value is not None:
            logged[name] = value
    return logged


def send_line(text: str) -> bool:
    """Send one raw message line as given (for shell scripts); True if carbonwrap took it."""
    sock = _sock if _sock is not None else (None if _off else _open())
    if sock is None:
        return False
    try:
        sock.send(text.encode("utf-8", "replace")[:4096], _flags)
        return True
    except Exception:
        return False


def _number(value: object) -> str:
    """Ints, floats, numpy and torch scalars; anything else as its text, which carbonwrap then
    counts as a bad message (and says so once), as it does nan and inf."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)[:40]
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _message(done: object, total: object, unit: object) -> bytes:
    text = _number(done)
    if total is not None:
        text += "/" + _number(total)
    if unit is not None:
        text = f"{unit} {text}"
    return text.encode("utf-8", "replace")


def _open() -> "_socket.socket | None":
    """Connect to the run's socket on first use; None (and off from then on) without one."""
    global _sock, _off, _flags
    with _lock:
        if _sock is not None or _off:
            return _sock
        path = os.environ.get(ENV)
        if not path:
            _off = True
            return None
        try:
            import _socket  # the C module: `socket` costs ~6 ms to import, this < 1 ms

            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
            try:
                sock.connect(path)
            except BaseException:
                sock.close()
                raise
        except Exception:
            _off = True  # carbonwrap has gone, or is not there
            return None
        _flags = _socket.MSG_DONTWAIT | _socket.MSG_NOSIGNAL
        _sock = sock
        return sock


def _give_up() -> None:
    global _sock, _off
    _off = True
    sock, _sock = _sock, None
    _close(sock)


def _close(sock: "_socket.socket | None") -> None:
    if sock is not None:
        try:  # noqa: SIM105  (contextlib is not worth importing here)
            sock.close()
        except Exception:
            pass


def _after_fork_in_child() -> None:
    """A forked child opens its own socket on its first report (closing its copy of the
    parent's); a lock held by a thread of the parent, which the child does not have, is
    replaced."""
    global _sock, _off, _lock, _dropped
    sock, _sock = _sock, None
    _close(sock)
    _off, _lock, _dropped = False, _thread.allocate_lock(), None  # the atexit hook is inherited


def _at_exit_resend() -> None:
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        import atexit

        atexit.register(_resend_dropped)


def _resend_dropped() -> None:
    """At exit, the last report if it was dropped: it may be the one that says "done"."""
    global _dropped
    sock, message = _sock, _dropped
    if sock is None or message is None:
        return
    try:
        import select

        poller = select.poll()
        poller.register(sock.fileno(), select.POLLOUT)
        if poller.poll(EXIT_WAIT_S * 1000):
            sock.send(message, _flags)
            _dropped = None
    except Exception:
        pass


def reset() -> None:
    """Forget the channel: the next report reads CARBONWRAP_PROGRESS again (tests; a process
    that changed its environment)."""
    _after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def main(argv: "list[str] | None" = None) -> int:
    """`python -m carbonwrap.report_progress epoch 3/10`: the words, joined by spaces, as one
    message. Exit status 0 even when nothing is listening: a script's progress never fails it."""
    import sys

    words = sys.argv[1:] if argv is None else argv
    if words:
        send_line(" ".join(words))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
