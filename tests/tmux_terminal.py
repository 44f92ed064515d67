"""A real terminal for tests: one tmux server with one window running an interactive bash,
typed into and read back (send-keys, capture-pane)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PROMPT = "$"
STATUS = re.compile(r"^carbonwrap · ")  # the first status line


class Terminal:
    """One tmux server with one window running an interactive bash."""

    def __init__(self, workdir: Path, columns: int, rows: int) -> None:
        self.workdir = workdir
        self.socket = str(workdir / "tmux.sock")
        self.columns = columns
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LC_ALL": "C.UTF-8",
            "TERM": "screen",  # what tmux sets; env -i would drop it
            "PS1": PROMPT + " ",
            "HISTFILE": "/dev/null",
            "INPUTRC": "/dev/null",
        }
        self.tmux("new-session", "-d", "-x", str(columns), "-y", str(rows), "-c", str(workdir),
                  "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                  "bash", "--norc", "--noprofile", "-i",
                  env=env)  # fmt: skip
        try:
            self.wait(lambda screen: screen[0] == PROMPT, "the first prompt")
        except BaseException:
            self.close()  # the fixture never saw this terminal
            raise

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-S", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
            check=True,
        )
        return done.stdout

    def type(self, text: str) -> None:
        # A command line that fills its last row exactly leaves tmux's wrap mark on it, and
        # `history()` (capture-pane -J) would join the command's first output line to it: a
        # trailing space (bash ignores it) keeps the typed line off the margin. The lines
        # depend on the checkout's path (the interpreter's and the workloads'), so a clone one
        # character deeper failed here.
        if (len(PROMPT) + 1 + len(text)) % self.columns == 0:
            text += " "
        self.tmux("send-keys", "-t", "0", "-l", text)
        self.tmux("send-keys", "-t", "0", "Enter")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "0", *keys)

    def screen(self, escapes: bool = False) -> list[str]:
        """The visible rows, one string each (trailing blanks trimmed by tmux)."""
        flags = ["-p", "-e"] if escapes else ["-p"]
        return self.tmux("capture-pane", *flags, "-t", "0").split("\n")[:-1]

    def history(self) -> list[str]:
        """Scrollback and screen, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "0").split("\n")[:-1]

    def resize(self, columns: int, rows: int) -> None:
        self.tmux("resize-window", "-t", "0", "-x", str(columns), "-y", str(rows))
        self.columns = columns

    def wait(self, ready: Callable[[list[str]], bool], what: str, timeout_s: float = 5) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            screen = self.screen()
            if ready(screen):
                return
            if time.monotonic() > deadline:
                shown = "\n".join(f"{i + 1:2d}|{row}" for i, row in enumerate(screen))
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{shown}")
            time.sleep(0.02)

    def wait_text(self, text: str) -> None:
        self.wait(lambda screen: any(text in row for row in screen), repr(text))

    def wait_prompt(self) -> None:
        self.wait(lambda screen: last_nonblank(screen) == PROMPT, "the prompt")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


def last_nonblank(screen: list[str]) -> str:
    rows = [row for row in screen if row.strip()]
    return rows[-1] if rows else ""


def status_rows(screen: list[str]) -> list[int]:
    return [i for i, row in enumerate(screen) if STATUS.match(row)]
