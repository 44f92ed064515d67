"""Append records to a run's JSON-lines log, one write(2) per line (reading back: logread.py)."""

from __future__ import annotations

import contextlib
import json
import os
import threading

from carbonwrap.errors import CarbonwrapError
from carbonwrap.events import Record


def log_name(stamp: str, host: str, run_id: str) -> str:
    """carbonwrap-<UTC stamp>-<host>-<run_id>.jsonl, with path separators kept out of `host`."""
    safe_host = "".join(c if c.isalnum() or c in "-_." else "_" for c in host) or "host"
    return f"carbonwrap-{stamp}-{safe_host}-{run_id}.jsonl"


class EventLog:
    """A new log file, private to the user (0600). Each record is a single write(2) of one
    line, so a SIGKILL leaves a valid prefix and concurrent runs never interleave lines."""

    def __init__(self, directory: str, name: str) -> None:
        try:
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, name)
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise CarbonwrapError(
                f"cannot write the log in {directory}: {exc.strerror}; "
                "choose another directory with --log-dir"
            ) from exc
        self._lock = threading.Lock()
        self.failed: str | None = None

    def write(self, record: Record) -> None:
        """Append one record. A failing disk is remembered, not raised: the child comes first."""
        try:
            line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        except (TypeError, ValueError) as exc:  # a bug upstream must not end the run either
            self.failed = f"a {record.get('type')} record could not be written: {exc}"
            return
        with self._lock:
            if self._fd < 0:
                return
            try:
                written = 0
                while written < len(line):
                    written += os.write(self._fd, line[written:])
            except OSError as exc:
                self.failed = f"writing {self.path} failed: {exc.strerror}"

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def discard(self) -> None:
        """Remove a log of a run that never started."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
