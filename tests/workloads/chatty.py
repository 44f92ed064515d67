"""A child for the live-view terminal tests: it writes to its terminal the ways programs do.

Arguments are steps, run in order:
  tty                  print whether stdin/stdout/stderr are terminals
  gap S                the pause between the writes of `lines` (default 0.003 s)
  lines A B            print numbered lines A..B, each in three write(2) calls a few ms apart
  bar                  a tqdm-style progress bar redrawn with \\r, ending at 100 %
  color                red text split across two writes with a pause between them
  wait NAME            print "waiting NAME", then wait until the file NAME exists
  exit N               exit with status N
"""

from __future__ import annotations

import os
import signal
import sys
import time


def out(text: str) -> None:
    os.write(1, text.encode())


def line(n: int) -> str:
    """The expected text of line n, for the tests."""
    return f"line {n:03d} the quick brown fox jumps over the lazy dog {n:03d}"


def print_lines(first: int, last: int, gap_s: float) -> None:
    for n in range(first, last + 1):
        text = line(n)
        # Three writes per line: a redraw may land between them and must not show.
        for piece in (text[:9], text[9:30], text[30:] + "\n"):
            out(piece)
            if gap_s:
                time.sleep(gap_s)


def bar() -> None:
    steps = 10
    for done in range(steps + 1):
        filled = "#" * done + "." * (steps - done)
        out(f"\r[{filled}] {100 * done // steps:3d}% {done}/{steps}")
        time.sleep(0.02)
    out("\n")


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends us by the signal, no traceback
    steps = iter(argv)
    gap_s = 0.003
    for step in steps:
        if step == "tty":
            flags = " ".join(f"{fd}={os.isatty(fd)}" for fd in (0, 1, 2))
            out(f"isatty {flags}\n")
        elif step == "gap":
            gap_s = float(next(steps))
        elif step == "lines":
            print_lines(int(next(steps)), int(next(steps)), gap_s)
        elif step == "bar":
            bar()
        elif step == "color":
            out("\x1b[31mred part 1")
            time.sleep(0.1)  # longer than the test's refresh: a frame is drawn in between
            out("red part 2\x1b[0m plain\n")
        elif step == "wait":
            name = next(steps)
            out(f"waiting {name}\n")
            while not os.path.exists(name):
                time.sleep(0.01)
        elif step == "exit":
            return int(next(steps))
        else:
            raise SystemExit(f"chatty: unknown step {step!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
