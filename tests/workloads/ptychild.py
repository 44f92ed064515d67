"""A command for the pty relay's terminal tests (tests/e2e/test_pty_relay_tmux.py).

Arguments are steps, run in order:
  tty             whether stdin/stdout/stderr are terminals, and stdin's first line if not
  size            the terminal's size (stdout's), as "size COLUMNSxROWS"
  winch           from now on print the size at every SIGWINCH
  bytes           what programs write to a terminal: colours, UTF-8, tabs, \\r bars, moves
  stty            `stty -a` (the modes of the command's terminal, as stty shows them)
  tqdm N S        a real tqdm loop of N iterations, S seconds each
  pid FILE        write the process id to FILE
  tick            print "tick N" every 0.1 s, for ever
  wait NAME       print "waiting NAME", then wait until the file NAME exists
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def size() -> None:
    columns, rows = os.get_terminal_size(1)
    print(f"size {columns}x{rows}", flush=True)


def main(steps: list[str]) -> None:
    while steps:
        step = steps.pop(0)
        if step == "tty":
            print("isatty", *(os.isatty(fd) for fd in (0, 1, 2)), flush=True)
            if not os.isatty(0):
                print("stdin", sys.stdin.readline().strip(), flush=True)
        elif step == "size":
            size()
        elif step == "winch":
            signal.signal(signal.SIGWINCH, lambda signum, frame: size())
        elif step == "bytes":
            out = sys.stdout.buffer
            out.write(b"plain\n\x1b[31mred\x1b[0m \x1b[1;4mbold\x1b[m\n")
            out.write("UTF-8: \u00e9\u00e8 \u2588\u258c \u4e2d\u6587 \U0001f600\n".encode())
            out.write(b"tab\there\r\nCRLF line\n")
            for i in range(0, 101, 25):
                out.write(b"\r%3d%%|%-4s|" % (i, b"#" * (i // 25)))
                out.flush()
            out.write(b"\n\x1b[2Aup two\x1b[2B\n\x1b]0;a title\x07after the title\n")
            out.flush()
        elif step == "stty":
            subprocess.run(["stty", "-a"], check=True)
        elif step == "tqdm":
            from tqdm import tqdm

            n, pause_s = int(steps.pop(0)), float(steps.pop(0))
            for _ in tqdm(range(n)):
                time.sleep(pause_s)
        elif step == "pid":
            with open(steps.pop(0), "w") as f:
                f.write(str(os.getpid()))
        elif step == "tick":
            for n in range(1_000_000):
                print(f"tick {n}", flush=True)
                time.sleep(0.1)
        elif step == "wait":
            name = steps.pop(0)
            print(f"waiting {name}", flush=True)
            while not os.path.exists(name):
                time.sleep(0.02)
        else:
            raise SystemExit(f"ptychild: unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
