"""The live view's terminal driver: status lines below a scroll region that the child writes in.

The bottom rows are reserved with DECSTBM, as apt's progress bar does, and redrawn once a second,
each frame ONE write(2): save the cursor (DECSC), draw, restore it (DECRC). The child writes to
the terminal itself, and the kernel serialises writes to a tty per call, so a frame never lands
inside one of the child's writes; with --progress-from-output its output comes through
carbonwrap's pty relay instead, and frames go through the relay's one writer (`write`), which
also keeps them out of an escape sequence or a character the child wrote in two parts. DECRC
gives the child back its cursor, colours and character set. Resizes are the hard part: frames
are anchored to the screen's bottom, the old rows are cleared at once with relative moves only,
and the area is laid out again once the size has held. Why, and what remains:
docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from carbonwrap.render.live import LiveState, live_lines

SAVE = "\x1b7"  # DECSC: position, SGR attributes, character sets (one slot, shared with CSI s)
RESTORE = "\x1b8"  # DECRC
RESET_REGION = "\x1b[r"  # DECSTBM with no arguments: the whole screen; homes the cursor
DOWN_OR_SCROLL = "\x1bD"  # IND: down one row, scrolling at the bottom margin; keeps the column
PLAIN = "\x1b(B\x0f\x1b[0m"  # G0 = ASCII, shift in, default attributes: whatever the child set
# Clear what lies below the cursor, wherever it is and whatever the screen's size (resizes come
# in bursts): IND + CUU leave the cursor on its text with a row below it (scrolling by one if it
# was on the last row); ED then clears from the cursor on. Relative moves only, no DECSC/DECRC:
# a terminal that resizes between reading a save and its restore puts the cursor back on a row
# that now holds other text, and the child would write over it.
CLEAR_BELOW = DOWN_OR_SCROLL + "\x1b[A\x1b[J"
NO_WRAP, WRAP = "\x1b[?7l", "\x1b[?7h"  # DECAWM: a too-wide line is cut, never scrolls the screen
CHILD_ROWS_MIN = 2  # the child keeps at least this many rows; else no status area
# After a resize, lay out again once no other has come for this long. More than tmux's 250 ms:
# tmux resizes its screen at once but tells the pty (TIOCSWINSZ, SIGWINCH) at most every 250 ms,
# so during a drag the size we read can be out of date by that much.
SETTLE_S = 0.4


def _region(bottom: int) -> str:
    return f"\x1b[1;{bottom}r"


def _bottom(rows_up: int) -> str:
    """To column 1 of the row `rows_up` above the last, whatever the screen's size is by the
    time the terminal reads this: CUP clamps to the last row, CUU from below the region moves
    freely."""
    return "\x1b[999;1H" + (f"\x1b[{rows_up}A" if rows_up else "")


class LiveView:
    """Status lines at the bottom of the terminal on `stream` while the child runs.

    `get_state` is called on the view's thread once per `refresh_s` (and possibly once more while
    `stop` runs; that result is never drawn). `write`: how the bytes reach the terminal, when
    not a plain write(2) (the pty relay's one writer; OSError: the terminal is gone). `start`
    must come from the main thread for the SIGWINCH and SIGTSTP handlers (installed where none
    is set, or around a Python handler, the pty relay's, which they call; without them a
    resize is seen at the next refresh). `stop` clears the area and resets the region; it is
    idempotent, safe from any thread and also registered with atexit. Ctrl-Z hands the shell a
    whole screen and `fg` brings the area back; in the background (`bg`) nothing is written.

    A SIGKILLed carbonwrap (or os._exit, or a fatal signal) leaves the scroll region set: the
    last status lines stay at the bottom and the shell scrolls above them. `reset`, `tput csr 0
    $(($(tput lines) - 1))` or a resize of the window restores it.
    """

    def __init__(
        self,
        stream: TextIO,
        get_state: Callable[[], LiveState],
        environ: Mapping[str, str],
        refresh_s: float = 1.0,
        write: Callable[[bytes], None] | None = None,
    ) -> None:
        self._fd = stream.fileno()
        self._write_out = write
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._get_state = get_state
        self._color = not environ.get("NO_COLOR")  # no-color.org: set and not empty
        self._refresh_s = refresh_s
        self._lock = threading.RLock()  # RLock: the SIGTSTP handler may run inside `stop`
        self._started = False
        self._stopped = False
        self._suspended = False  # stopped by Ctrl-Z: the shell has the terminal
        self._dead = False  # the terminal went away (EIO after a hangup)
        self._area = 0  # rows reserved at the bottom now; 0: none
        self._size = (0, 0)  # (columns, rows) when the area was reserved
        self._resized = False  # set by the SIGWINCH handler (a plain store: signal-safe)
        self._settling: tuple[int, int] | None = None  # a new size, and until when to wait
        self._settle_until = 0.0
        self._handlers: dict[int, Any] = {}
        self._thread: threading.Thread | None = None
        # Self-pipe: a signal handler wakes the thread without taking a lock (Event.set would).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @staticmethod
    def wanted(stream: TextIO, environ: Mapping[str, str], quiet: bool, no_live: bool) -> bool:
        """Only on a terminal that understands escapes, and only when asked for."""
        if quiet or no_live or environ.get("TERM", "") in ("", "dumb"):
            return False
        try:
            return stream.isatty()
        except (ValueError, OSError):  # closed or detached stream
            return False

    def start(self) -> None:
        """Install the signal handlers (main thread only) and start the refresh thread, which
        reserves the area and draws the first frame at once."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._install_handlers()
        atexit.register(self.stop)
        self._thread = threading.Thread(target=self._loop, name="carbonwrap-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Clear the area and give the whole screen back; the cursor stays where the child left
        it. Nothing is drawn after this returns."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            if self._area:
                self._write(self._release())
            self._area = 0
        self._poke()
        atexit.unregister(self.stop)
        if threading.current_thread() is threading.main_thread():
            for sig, previous in self._handlers.items():
                signal.signal(sig, previous)
            self._handlers.clear()

    # The refresh thread.

    def _loop(self) -> None:
        while not (self._stopped or self._dead):
            wait_s = self._refresh()
            ready, _, _ = select.select([self._wake_r], [], [], wait_s)
            if ready:
                os.read(self._wake_r, 64)  # a resize, SIGCONT or stop: refresh now

    def _refresh(self) -> float:
        """Draw a frame (laying the area out again if needed); returns when to come back."""
        size = self._terminal_size()
        now = time.monotonic()
        if self._resized or (self._size != (0, 0) and size not in (self._size, self._settling)):
            # Resized (even back to the same size: the terminal reset the region and may have
            # moved the area). Wait until the size holds: a frame written just before the next
            # resize would be read at that size, and a drag sends dozens.
            self._resized = False
            self._settling, self._settle_until = size, now + SETTLE_S
            with self._lock:
                # The old area is now in the child's way (the region is gone): clear it at once,
                # so that the child's lines do not land on top of ours until the re-layout.
                if self._area and self._may_write():
                    self._write(CLEAR_BELOW)
        relayout = False
        if self._settling is not None:
            if size != self._settling:
                self._settling, self._settle_until = size, now + SETTLE_S
            if now < self._settle_until:
                return self._settle_until - now
            self._settling, relayout = None, True
        try:
            state = self._get_state()
        except Exception:
            return self._refresh_s  # a bad frame is skipped; the measurement goes on
        with self._lock:
            if not self._may_write():
                return self._refresh_s
            columns, rows = size
            # One cell short of the width: the last column's pending-wrap state is a quirk.
            lines = live_lines(state, columns - 1, self._color)
            height = max(min(len(lines), rows - CHILD_ROWS_MIN), 0)
            out = ""
            if relayout or size != self._size or height != self._area:
                if self._area and not relayout and size == self._size:
                    out += self._release()  # more or fewer lines: lay out again
                self._area = height
                self._size = size
                out += self._reserve(rows, height)
            if height:
                out += self._frame(lines[:height])
            if out:
                self._write(out)
        return self._refresh_s

    @staticmethod
    def _reserve(rows: int, height: int) -> str:
        """Make room for `height` rows below the cursor's line, keeping the cursor on the same
        text and column, and set the scroll region above them. Position-independent: the
        cursor may be anywhere (start-up, after a resize reset the region, after Ctrl-Z)."""
        out = SAVE + RESET_REGION + RESTORE
        if not height:
            return out
        # IND `height` times scrolls the screen only as far as the cursor lacks room below it;
        # CUU brings the cursor back up to its text.
        out += DOWN_OR_SCROLL * height + f"\x1b[{height}A"
        # Rows below the cursor's line hold nothing of the child's but an old area (a resize
        # moves it); clear them. CUD cannot fail here: the cursor is at least `height` rows up.
        out += SAVE + "\x1b[B\x1b[1G\x1b[J" + _region(rows - height) + RESTORE
        return out

    @staticmethod
    def _frame(lines: list[str]) -> str:
        """One frame, bottom line first, anchored to the screen's bottom rather than to a row
        number, so that a frame in flight during a resize lands where the area was. The region
        is not set again here: one set for a size the terminal no longer has could leave the
        child's cursor below it, stuck on the last row, writing each line over the last."""
        out = SAVE + PLAIN + NO_WRAP + _bottom(0)
        for i, line in enumerate(reversed(lines)):
            out += ("\x1b[A\x1b[G" if i else "") + "\x1b[2K" + line + "\x1b[0m"
        return out + WRAP + RESTORE

    def _release(self) -> str:
        """Clear the area and reset the region. After a resize not yet laid out, the terminal
        has reset the region and moved or cut the area: then only the reset, no blind clear."""
        out = SAVE
        resized = self._resized or self._settling is not None
        if self._area and not resized and self._terminal_size() == self._size:
            out += _bottom(self._area - 1) + "\x1b[J"
        return out + RESET_REGION + RESTORE

    # Terminal state.

    def _terminal_size(self) -> tuple[int, int]:
        """(columns, rows): one TIOCGWINSZ ioctl, cheap enough for every frame."""
        try:
            size = os.get_terminal_size(self._fd)
        except OSError:
            return self._size
        return size.columns, size.lines

    def _may_write(self) -> bool:
        """Not after `stop`, not while stopped by Ctrl-Z, not once the terminal hung up, and
        not while a shell runs us in the background (`bg`)."""
        if self._stopped or self._suspended or self._dead:
            return False
        try:
            return os.tcgetpgrp(self._fd) == os.getpgrp()
        except OSError:  # not our controlling terminal: cannot tell, assume we own it
            return True

    def _write(self, text: str) -> None:
        """One write(2) for the whole sequence; the rest only if the kernel took part of it."""
        data = text.encode(self._encoding, "replace")
        if self._write_out is not None and not self._dead:
            try:
                self._write_out(data)
            except OSError:
                self._dead = True
            return
        while data and not self._dead:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:  # someone made the terminal non-blocking
                select.select([], [self._fd], [], 1.0)
                continue
            except OSError:
                self._dead = True  # hung up: nothing more to draw or restore
                return
            data = data[written:]

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # Signals: the main thread owns them; the handlers only flag work for the refresh thread.

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # resizes are still noticed, at the next refresh
        for sig, handler in ((signal.SIGWINCH, self._on_winch), (signal.SIGTSTP, self._on_tstp)):
            current = signal.getsignal(sig)
            # Around a Python handler (the pty relay's), which ours calls; a handler set outside
            # Python, or an ignored signal, is left alone.
            if current == signal.SIG_DFL or callable(current):
                self._handlers[sig] = signal.signal(sig, handler)

    def _on_winch(self, signum: int, frame: Any) -> None:
        previous = self._handlers.get(signal.SIGWINCH)
        if callable(previous):
            previous(signum, frame)  # the pty relay: the pty gets the new size first
        self._resized = True  # the terminal has just reset the region: lay out again
        self._poke()

    def _on_tstp(self, signum: int, frame: Any) -> None:
        """Ctrl-Z: give the shell a whole screen, stop as the default action would (or as the
        handler we were installed around does: the pty relay gives the terminal's modes back
        and stops), and reserve the area again once continued (in the foreground)."""
        with self._lock:
            self._suspended = True
            if self._area and not self._stopped:
                self._write(self._release())
            self._area = 0
        previous = self._handlers.get(signal.SIGTSTP)
        if callable(previous):
            previous(signum, frame)  # stops in there until SIGCONT
        else:
            mine = signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
            signal.signal(signal.SIGTSTP, mine)
        with self._lock:
            self._suspended = False
        self._poke()
