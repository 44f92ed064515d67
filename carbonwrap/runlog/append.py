"""Add records to a finished run's log (`carbonwrap reprice`), safely where others may write:
the log is reached by `outfiles`' rules, read and written through one descriptor, locked
against another reprice, and each batch goes in one write(2) or not at all.

The rules, beyond those of `outfiles.open_directory` for the directories on the way:
- The log itself is opened with O_NOFOLLOW relative to its directory: a symlink there is
  followed only if the user or root owns it (read from the link itself, never a path swapped
  meanwhile), and what is opened must be the regular file that was checked.
- Only the log's owner adds to it; root may add to any user's log (a shared log directory
  repriced by its administrator). Appending keeps the file's owner and mode.
- The caller reads the log (`records`), decides, and hands its batch to `append_after`, which
  opens the log again, checks it is the same file (device and inode) no shorter than what was
  read, takes an exclusive flock (so two reprices never interleave; `carbonwrap run` writes a
  log only until its end record, and the caller touches no log without one), reads what was
  added since (another reprice's records) so the caller can leave those windows out, and
  writes the batch once; a write cut short (a full disk) is truncated away again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from carbonwrap.outfiles import UnsafePath, open_directory
from carbonwrap.runlog.reader import bounded_lines, parse_line
from carbonwrap.runlog.records import Record, encode

LOCK_WAIT_S = 10.0  # another reprice holds a log's lock for one write: seconds at most
_MAX_LINKS = 40  # the kernel's MAXSYMLINKS

Identity = tuple[int, int]  # st_dev, st_ino


class LogRefused(Exception):
    """A log carbonwrap does not read or add to: `reason` says why, in words a user can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FinishedLog:
    """One log, opened by the rules above: read-only, or for appending (`write`)."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        st = os.fstat(fd)
        self.identity: Identity = (st.st_dev, st.st_ino)
        self.owner_uid = st.st_uid
        self.mode = st.st_mode
        self.read_to = 0  # the file offset after the last whole line `records` read
        self.bad_lines = 0

    @classmethod
    def open(cls, path: str, *, write: bool) -> FinishedLog:
        """LogRefused where a rule refuses or the file cannot be opened."""
        flags = (os.O_RDWR | os.O_APPEND) if write else os.O_RDONLY
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # never wait on a FIFO put there
        directory, name = os.path.split(path)
        for _ in range(_MAX_LINKS + 1):
            try:
                dir_fd = open_directory(directory or ".")
            except UnsafePath as exc:
                raise LogRefused(f"{exc.strerror}; {exc.remedy}") from None
            except OSError as exc:
                raise LogRefused(f"cannot reach its directory: {exc.strerror}") from None
            try:
                target, checked = _final(dir_fd, name, path)
                if target is None:
                    try:
                        fd = os.open(name, flags, dir_fd=dir_fd)
                    except OSError as exc:
                        raise LogRefused(f"cannot open it: {exc.strerror}") from None
                    log = cls(path, fd)
                    if log.identity != checked:  # replaced between the check and the open
                        log.close()
                        raise LogRefused("it changed while carbonwrap opened it; try again")
                    return log
            finally:
                os.close(dir_fd)
            directory, name = os.path.split(os.path.join(directory, target))
        raise LogRefused("too many levels of symbolic links")

    def refusal(self) -> str | None:
        """Why carbonwrap may not add to this log (the rules above), or None."""
        uid = os.geteuid()
        if uid == 0:
            return None
        if self.owner_uid != uid:
            return (
                f"it is owned by uid {self.owner_uid}, not by you: only its owner (or root) "
                "may add to it"
            )
        if not self.mode & stat.S_IWUSR:
            return f"it is not writable (mode {stat.S_IMODE(self.mode):04o}); chmod u+w it"
        return None

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def records(self, offset: int = 0) -> Iterator[Record]:
        """The records from file offset `offset` (a line's start) to the end as it was when
        asked, whole lines only (a line still being written is left for later); `read_to`
        follows the lines read, `bad_lines` counts those that are not records."""
        end = self.size
        self.read_to = offset
        with os.fdopen(os.dup(self.fd), "rb") as f:
            f.seek(offset)
            for raw in bounded_lines(f):
                here = f.tell()
                if not raw.endswith(b"\n") or here > end:
                    break
                self.read_to = here
                record = parse_line(raw)
                if record is None:
                    self.bad_lines += 1
                else:
                    yield record

    def lock(self, wait_s: float = LOCK_WAIT_S) -> None:
        """An exclusive flock, waited for up to `wait_s`; LogRefused when it does not come.
        Released when the log is closed."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LogRefused(
                        f"another carbonwrap reprice has held its lock for {wait_s:g} s; try again"
                    ) from None
                time.sleep(0.05)

    def append(self, batch: Sequence[Record]) -> int:
        """Write `batch` at the end in one write(2) (a line cut off by a crash before it is
        ended first, so no record is glued to it); the bytes written. On failure nothing is
        left of the batch and LogRefused says why."""
        data = b"".join(encode(record) for record in batch)
        size = self.size
        if size and os.pread(self.fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        written = 0
        try:
            while written < len(data):
                written += os.write(self.fd, data[written:])
        except OSError as exc:
            if written:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, size)
            raise LogRefused(f"writing it failed: {exc.strerror}; nothing was added") from None
        return written

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> FinishedLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _final(dir_fd: int, name: str, shown: str) -> tuple[str | None, Identity]:
    """What `name` in `dir_fd` is: a regular file (None, its identity), or a symlink of the
    user's or root's (its target). Read from the entry itself (O_PATH): the link checked is
    the link followed. LogRefused for anything else."""
    try:
        step = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise LogRefused(f"cannot open it: {exc.strerror}") from None
    try:
        st = os.fstat(step)
        if stat.S_ISREG(st.st_mode):
            return None, (st.st_dev, st.st_ino)
        if not stat.S_ISLNK(st.st_mode):
            raise LogRefused("it is not a regular file")
        if st.st_uid not in (0, os.geteuid()):
            raise LogRefused(
                f"{shown} is a symlink owned by uid {st.st_uid}, neither yours nor root's: "
                "carbonwrap does not follow it"
            )
        return os.readlink("", dir_fd=step), (st.st_dev, st.st_ino)  # readlinkat(2) on it
    finally:
        os.close(step)


def append_after(
    path: str,
    identity: Identity,
    read_to: int,
    decide: Callable[[list[Record]], list[Record]],
    wait_s: float = LOCK_WAIT_S,
) -> list[Record]:
    """Add to the log at `path` what `decide` returns, under its lock. `identity` and
    `read_to`: the file and how far the caller read it (`FinishedLog.records`); `decide` is
    handed the records added since (another reprice's) and returns the batch ([]: nothing is
    written). The batch written; LogRefused where a rule refuses or the log changed."""
    with FinishedLog.open(path, write=True) as log:
        why = log.refusal()
        if why is not None:
            raise LogRefused(why)
        if log.identity != identity:
            raise LogRefused("it was replaced since it was read; run carbonwrap reprice again")
        log.lock(wait_s)
        if log.size < read_to:
            raise LogRefused("it is shorter than when it was read (cut meanwhile?); not touched")
        batch = decide(list(log.records(read_to)))
        if batch:
            log.append(batch)
        return batch
