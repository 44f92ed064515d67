"""What a measured cell shows: one compact line under it while it runs (in a Jupyter kernel an
output updated in place every second through its display_id; in a terminal IPython a plain
line redrawn with a carriage return, only on a terminal), then the final report, as `run`'s."""

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from carbonwrap.render.final import compact_view, render_text, report_view
from carbonwrap.render.live import live_lines
from carbonwrap.runlog.summary import RunSummary

REFRESH_S = 1.0
LINE_WIDTH = 160  # one line under a cell: the renderer drops what does not fit, in its order


def live_line(state: Any) -> str:
    """The live view's lines (render/live.py) for one wide line: head, then components."""
    return " · ".join(line for line in live_lines(state, LINE_WIDTH, False)[:2] if line)


def report_text(summary: RunSummary, verbose: bool) -> str:
    """The final report as `run` prints it to a pipe (compact, or whole with verbose)."""
    view = report_view(summary) if verbose else compact_view(summary)
    return render_text(view).rstrip("\n")


def in_kernel(shell: Any) -> bool:
    """A Jupyter kernel (ipykernel's shell has its kernel), not a terminal IPython."""
    return getattr(shell, "kernel", None) is not None


class CellView:
    """The line while a block runs and the report after it. `mode`: "display" (an output with
    a display_id, updated in place: Jupyter) or "line" (a plain line on `stream`, redrawn only
    where it is a terminal). `state` returns the block's live state (`LiveFeed`)."""

    def __init__(
        self,
        state: Callable[[], Any],
        mode: str,
        stream: TextIO | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._state = state
        self._mode = mode
        self._stream = stream or sys.stderr
        self._refresh_s = refresh_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: Any = None
        self._drawn = False

    def line(self) -> str:
        return live_line(self._state())

    def start(self) -> None:
        if self._mode == "display":
            from IPython.display import display

            self._handle = display(  # type: ignore[no-untyped-call]
                self._bundle(self.line()), raw=True, display_id=True
            )
        elif not _isatty(self._stream):
            return  # a pipe or a log: the report at the end says it all
        self._thread = threading.Thread(target=self._loop, name="carbonwrap-cell", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            with contextlib.suppress(Exception):  # a view must never break the cell
                self._draw(self.line())

    def _draw(self, text: str) -> None:
        if self._handle is not None:
            self._handle.update(self._bundle(text), raw=True)
        else:
            self._stream.write("\r\x1b[K" + text)
            self._stream.flush()
            self._drawn = True

    def stop(self, summary: RunSummary | None, verbose: bool = False) -> None:
        """The line stops; the report takes its place (None: quiet, the line goes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        text = report_text(summary, verbose) if summary is not None else ""
        if self._handle is not None:
            self._handle.update(self._bundle(text), raw=True)
        elif text:
            self._stream.write(text + "\n")
            self._stream.flush()

    @staticmethod
    def _bundle(text: str) -> dict[str, str]:
        return {"text/plain": text}


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
