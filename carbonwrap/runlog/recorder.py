"""The run's one way to record: each record written to the log and folded into the summary
under one lock, then handed to the observers (the predictor, the budget)."""

from __future__ import annotations

from carbonwrap.lite import Lock
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Recorder:
    """Writes each record to the log and folds it into the summary, under one lock; then hands
    it to each of `observers` (the predictor, the budget), outside the lock, on the recording
    thread: an observer may record (its records reach the observers too) and read the fold,
    and must not raise."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.fold = Fold()
        self._lock = Lock()
        self.observers: list[Callable[[dict[str, Any]], None]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.log.write(record)
            self.fold.add(record)
        for observe in self.observers:
            observe(record)

    def locked(self, read: Callable[[Fold], Any]) -> Any:
        """`read(fold)` while no record is being added (for the live view's thread)."""
        with self._lock:
            return read(self.fold)
