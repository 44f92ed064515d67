"""Every selected run's row of an output that lists them all (JSON, CSV), written to an unnamed
temporary file as the run is read and handed back in start-time order: what stays in memory per
run is its place in the file, not its summary."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

from carbonwrap.runlog.summary import RunSummary

# Per run: (started_at, run_id, offset, length): the order rows come back in, then where.
_Entry = tuple[str, str, int, int]


class RunSpool:
    """`add` encodes a run (`encode`: its row, as bytes) and writes it out; `remove` forgets one
    (a fuller copy of it came later: its bytes stay in the file, unused); `rows` gives every
    row kept, sorted by (start time, run id) as the report lists runs. The file is unnamed
    (`tempfile.TemporaryFile`: removed by the kernel however carbonwrap ends)."""

    def __init__(
        self,
        encode: Callable[[RunSummary], bytes],
        forget: Callable[[RunSummary], None] | None = None,
        directory: str | None = None,
    ) -> None:
        self._encode = encode
        self._forget = forget
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by `close`)
        self._size = 0
        self._index: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._index)

    def add(self, key: str, s: RunSummary) -> None:
        row = self._encode(s)
        self._file.write(row)
        self._index[key] = (s.started_at, s.run_id, self._size, len(row))
        self._size += len(row)

    def remove(self, key: str, s: RunSummary) -> None:
        if self._index.pop(key, None) is not None and self._forget is not None:
            self._forget(s)

    def rows(self) -> Iterator[bytes]:
        self._file.flush()
        fd = self._file.fileno()
        for _, _, offset, length in sorted(self._index.values()):
            yield os.pread(fd, length, offset)

    def close(self) -> None:
        self._file.close()
