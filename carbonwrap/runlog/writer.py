"""Append records to a run's JSON-lines log, one write(2) per line (reading back: logread.py)."""

from __future__ import annotations

import os
import time

from carbonwrap.errors import CarbonwrapError
from carbonwrap.lite import Lock, suppress
from carbonwrap.outfiles import create_new, open_directory
from carbonwrap.runlog.records import Record, encode, utc_iso


def _warning_line(message: str) -> bytes:
    return encode({"type": "warning", "time": utc_iso(time.time()), "message": message})


def log_name(stamp: str, host: str, run_id: str) -> str:
    """carbonwrap-<UTC stamp>-<host>-<run_id>.jsonl, with path separators kept out of `host`."""
    safe_host = "".join(c if c.isalnum() or c in "-_." else "_" for c in host) or "host"
    return f"carbonwrap-{stamp}-{safe_host}-{run_id}.jsonl"


class EventLog:
    """A new log file, private to the user (0600), created where no other user can steer it
    (`outfiles`). Each record is a single write(2) of one line, so a SIGKILL leaves a valid
    prefix and concurrent runs never interleave lines.

    Storage that fails during the run never reaches the child: a line only partly written (a
    full disk) is cut off again, so the log stays whole lines; records that could not be written
    are counted and, once writing works again, a warning says how many and why (sample records
    hold totals since the start, so the next one carries what the lost ones measured). A log
    removed during the run (its directory deleted) is written again from the open file."""

    def __init__(self, directory: str, name: str, mode: int = 0o600) -> None:
        directory = os.fspath(directory)  # a Path is welcome too
        self.path = os.path.join(directory, name)
        self._directory, self._name = directory or ".", name
        self._mode = mode
        # A log directory this run makes is removed again with its log if the run never starts
        # (`carbonwrap run nope` must not leave an empty logs/ behind).
        self._made_directory = not os.path.isdir(self._directory)
        try:
            self._fd, self._identity = self._create()
        except OSError as exc:
            raise CarbonwrapError(
                f"cannot write the log in {directory}: {exc.strerror}; "
                "choose another directory with --log-dir"
            ) from exc
        self._lock = Lock()
        self._size = 0  # bytes of whole lines written: where the next line starts
        self._lost = 0  # records not written since writing last worked
        self._lost_why = ""
        self.failed: str | None = None

    def _create(self) -> tuple[int, tuple[int, int]]:
        """The log file, new, in its directory (made if missing) reached and checked by
        outfiles' rules: no other user's symlink on the way, not a directory everyone may write
        to without the sticky bit; its mode exactly the one configured, whatever the umask."""
        dir_fd = open_directory(self._directory, create=True)
        try:
            fd = create_new(dir_fd, self._name, os.O_RDWR | os.O_APPEND, self._mode)
        finally:
            os.close(dir_fd)
        st = os.fstat(fd)
        return fd, (st.st_dev, st.st_ino)

    def write(self, record: Record) -> None:
        """Append one record. A failing disk is remembered, not raised: the child comes first."""
        try:
            line = encode(record)
        except (TypeError, ValueError) as exc:  # a bug upstream must not end the run either
            self.failed = f"a {record.get('type')} record could not be written: {exc}"
            return
        with self._lock:
            if self._fd < 0:
                return
            notes = self._write_again_if_removed()
            if self._lost:
                notes.append(
                    f"{self._lost} record(s) could not be written ({self._lost_why}); each "
                    "sample holds the totals since the start, so nothing measured is lost"
                )
            if notes:
                warnings = b"".join(_warning_line(n) for n in notes)
                if not self._append(warnings):
                    self._lost += 1
                    return
                self._lost = 0
            if not self._append(line):
                self._lost += 1

    def _append(self, data: bytes) -> bool:
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            if written:  # part of a line: take it back, so the log stays whole lines
                with suppress(OSError):
                    os.ftruncate(self._fd, self._size)
            self.failed = f"writing {self.path} failed: {exc.strerror}"
            self._lost_why = exc.strerror or str(exc)
            return False
        self._size += written
        return True

    def _write_again_if_removed(self) -> list[str]:
        """If the log's name no longer leads to our file, write it again there from the open
        file (one stat per record); a note for the log, or nothing."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == self._identity:
                return []
        except OSError:
            pass
        try:
            fd, identity = self._create()
        except OSError as exc:
            self.failed = f"{self.path} was removed during the run and cannot be written again: "
            self.failed += exc.strerror or str(exc)
            return []
        copied = 0
        with suppress(OSError):
            while copied < self._size:
                data = os.pread(self._fd, min(1 << 20, self._size - copied), copied)
                if not data:
                    break
                copied += os.write(fd, data)
        os.close(self._fd)
        self._fd, self._identity, self._size = fd, identity, copied
        return [f"the log was removed during the run (its directory deleted?): written again "
                f"at {self.path} from what carbonwrap had written"]  # fmt: skip

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def discard(self) -> None:
        """Remove a log of a run that never started."""
        self.close()
        try:  # relative to the directory the log was made in
            dir_fd = open_directory(self._directory)
        except OSError:  # no descriptor to walk with (ulimit -n): the log's own path
            with suppress(OSError):
                st = os.lstat(self.path)  # the file made, not one planted since
                if (st.st_dev, st.st_ino) == self._identity:
                    os.unlink(self.path)
            return
        try:
            with suppress(OSError):
                os.unlink(self._name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        if self._made_directory:
            with suppress(OSError):  # only while empty: another run may use it now
                os.rmdir(self._directory)
