"""The live view in a real terminal: tmux runs a shell, the test types into it and reads the
screen back. The driver (tests/workloads/live_driver.py) runs LiveView with a made-up state
around a real child (tests/workloads/chatty.py) that writes split lines, a \\r progress bar and
colours, the way run.py will."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WORKLOADS
from tmux_terminal import PROMPT, STATUS, Terminal, status_rows

sys.path.insert(0, str(WORKLOADS))
from chatty import line

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

INTENSITY = "intensity 231 g/kWh test source"  # the third, below 100 columns


def driver(*child_steps: str, refresh_s: float = 0.01, extra: tuple[str, ...] = ()) -> str:
    """The shell command: the driver around chatty.py, then the exit status."""
    argv = [sys.executable, str(WORKLOADS / "live_driver.py"), "--refresh", str(refresh_s),
            *extra, "--", sys.executable, str(WORKLOADS / "chatty.py"), *child_steps]  # fmt: skip
    return shlex.join(argv) + '; echo "rc=$?"'


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[int, int], Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(columns: int, rows: int) -> Terminal:
        opened.append(Terminal(tmp_path, columns, rows))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def assert_status_at_bottom(screen: list[str], height: int) -> None:
    """Exactly one status area, its first line `height` rows from the bottom."""
    assert status_rows(screen) == [len(screen) - height], screen


def assert_whole_screen_scrolls(term: Terminal, tag: str) -> None:
    """After the view: output scrolls through every row, down to the last (region reset)."""
    rows = len(term.screen())
    term.type(f"for i in $(seq {rows + 5}); do echo {tag}-$i; done")
    term.wait(lambda screen: screen[-2:] == [f"{tag}-{rows + 5}", PROMPT], f"{tag} at the bottom")
    assert not status_rows(term.screen())


def child_lines(history: list[str], first: int, last: int) -> list[str]:
    numbered = [row for row in history if row.startswith("line ")]
    assert numbered == [line(n) for n in range(first, last + 1)]
    return numbered


def test_child_output_intact_around_redraws_resizes_and_exit_status(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(80, 24)
    term.type("printf 'before-%s\\n' 1 2 3")
    term.wait_prompt()
    steps = ("tty", "lines", "1", "40", "color", "bar", "wait", "go",
             "lines", "41", "70", "exit", "3")  # fmt: skip
    term.type(driver(*steps))
    term.wait_text("waiting go")

    screen = term.screen()
    assert_status_at_bottom(screen, 3)
    assert screen[-1] == INTENSITY
    # The child's last line sits above the area; nothing of ours scrolled into its output.
    assert screen.index("waiting go") < len(screen) - 3
    history = term.history()
    assert [row for row in history if row.startswith("before-")] == ["before-1", "before-2",
                                                                     "before-3"]  # fmt: skip
    assert "isatty 0=True 1=True 2=True" in history
    child_lines(history, 1, 40)
    assert "red part 1red part 2 plain" in history
    bars = [row for row in history if row.startswith("[")]
    assert bars == ["[##########] 100% 10/10"]  # \r redraws overwrote each other, intact
    assert sum(bool(STATUS.match(row)) for row in history) == 1
    coloured = term.screen(escapes=True)
    # The red survived a frame drawn between its two writes (DECSC/DECRC keep the attributes).
    assert re.search(r"\x1b\[31mred part 1red part 2\x1b\[39m plain", "\n".join(coloured))
    assert "\x1b[" in coloured[-3]  # colour in the status when NO_COLOR is unset

    # Wider and taller: two status lines at the new bottom, the old area gone. (Growing is
    # safe even for a frame in flight: frames are anchored to the bottom; shrinking is tested
    # below, with no frame in flight.)
    term.resize(120, 30)
    term.wait(lambda screen: len(screen) == 30 and status_rows(screen) == [28], "a 30-row area")
    assert INTENSITY not in term.screen()
    (term.workdir / "go").touch()
    term.wait_text("rc=3")
    history = term.history()
    child_lines(history, 1, 70)
    assert history.index("driver: exit 3 None") == history.index(line(70)) + 1
    assert not any(STATUS.match(row) or INTENSITY in row for row in history)
    assert_whole_screen_scrolls(term, "after")


def test_a_window_dragged_while_the_child_prints(terminal: Callable[[int, int], Terminal]) -> None:
    """A burst of resizes, as dragging a window edge sends, during fast output: the view waits
    for the size to hold (tmux tells the pty only every 250 ms) and clears its old rows, so no
    child line is lost or written over, and none of our lines lands in the scrollback."""
    term = terminal(80, 24)
    term.type(driver("gap", "0.001", "lines", "1", "300", refresh_s=0.05))
    term.wait_text("line 0")
    for i in range(20):
        term.resize(80 + (i % 7) * 5, 24 - (i % 5) * 2)
        time.sleep(0.02)
    term.wait_text("rc=0")
    history = term.history()
    child_lines(history, 1, 300)
    assert not any(STATUS.match(row) or INTENSITY in row for row in history)


def test_ctrl_c_ends_the_child_and_restores_the_terminal(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(80, 20)
    # A 10 s refresh: a frame at the new size after a resize can only come from SIGWINCH, and
    # no frame is in flight when tmux resizes (one could land on the child's last rows when
    # the screen shrinks below the cursor: see carbonwrap/liveview.py).
    term.type("NO_COLOR=1 " + driver("lines", "1", "30", "wait", "never", refresh_s=10))
    term.wait_text("waiting never")
    screen = term.screen(escapes=True)
    assert_status_at_bottom(term.screen(), 3)
    assert not any("\x1b[" in row for row in screen[-3:])  # NO_COLOR: no escapes at all
    # Narrower and shorter, the cursor at the bottom of the region: tmux cuts the area first.
    term.resize(60, 14)
    term.wait(lambda screen: status_rows(screen) == [11], "the area redrawn on SIGWINCH", 2)
    # Every row above the area is the child's: its last lines, then the cursor's empty row.
    assert term.screen()[:11] == [*(line(n) for n in range(22, 31)), "waiting never", ""]
    child_lines(term.history(), 1, 30)
    term.keys("C-c")
    term.wait_text("rc=130")
    history = term.history()
    child_lines(history, 1, 30)
    # The tty echoed ^C; carbonwrap outlived the child and reported, as run does.
    assert "^Cdriver: exit 130 SIGINT" in history
    assert_whole_screen_scrolls(term, "after")


def test_ctrl_z_gives_the_shell_the_whole_screen_until_fg(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(80, 20)
    term.type("seq -f 'pre-%g' 30")  # the view starts with the cursor on the last row
    term.wait_prompt()
    term.type(driver("lines", "1", "3", "wait", "go", "lines", "4", "6", refresh_s=10))
    term.wait_text("waiting go")
    screen = term.screen()
    assert_status_at_bottom(screen, 3)
    # Room was made by scrolling: the text that was there went up, nothing was drawn over.
    assert "pre-30" in screen
    history = term.history()
    start = history.index("pre-1")
    assert history[start : start + 30] == [f"pre-{n}" for n in range(1, 31)]
    command = history[start + 30]
    assert command.startswith("$ ") and command.endswith('echo "rc=$?"')
    assert history[start + 31] == line(1)
    term.keys("C-z")
    term.wait_text("Stopped")
    term.wait_prompt()
    assert_whole_screen_scrolls(term, "stopped")
    term.type("fg")
    term.wait(lambda screen: bool(status_rows(screen)), "the area back after fg")
    assert_status_at_bottom(term.screen(), 3)
    (term.workdir / "go").touch()
    term.wait_text("driver: exit 0 None")
    term.wait_prompt()
    child_lines(term.history(), 1, 6)
    assert_whole_screen_scrolls(term, "after")


def test_a_crash_is_cleaned_up_at_exit_and_dumb_terminals_get_no_view(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(80, 20)
    term.type(driver("lines", "1", "2", extra=("--crash",)))
    term.wait_text("rc=1")
    assert "RuntimeError: driver: crash on purpose" in term.history()
    assert_whole_screen_scrolls(term, "crashed")
    term.type("clear; TERM=dumb " + driver("tty"))
    term.wait_text("rc=0")
    assert "driver: no live view" in term.screen()
    assert not status_rows(term.screen())


def test_sigterm_ends_cleanly_and_sigkill_leaves_only_the_region(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(80, 20)
    pidfile = term.workdir / "pids"

    def start() -> tuple[int, int]:
        pidfile.unlink(missing_ok=True)
        term.type(driver("wait", "never", extra=("--pidfile", str(pidfile))))
        term.wait_text("waiting never")
        term.wait(lambda screen: pidfile.exists(), "the pid file")
        driver_pid, child_pid = map(int, pidfile.read_text().split())
        return driver_pid, child_pid

    # SIGTERM is forwarded to the child; carbonwrap outlives it and restores the terminal.
    driver_pid, _ = start()
    os.kill(driver_pid, signal.SIGTERM)
    term.wait_text("rc=143")
    assert "driver: exit 143 SIGTERM" in term.history()
    assert_whole_screen_scrolls(term, "termed")

    # SIGKILL cannot be caught: what remains is the region, as documented; the shell works in
    # the rows above the last status lines, and resetting the region (as `reset` does) mends it.
    driver_pid, child_pid = start()
    os.kill(driver_pid, signal.SIGKILL)
    os.kill(child_pid, signal.SIGKILL)
    term.wait_text("rc=137")
    term.type("for i in $(seq 30); do echo killed-$i; done")
    term.wait(lambda screen: screen[-5:-3] == ["killed-30", PROMPT], "output above the old area")
    assert_status_at_bottom(term.screen(), 3)
    term.type("printf '\\033[r'; clear")
    term.wait_prompt()
    assert_whole_screen_scrolls(term, "mended")


def test_the_real_run_command_shows_the_view_then_the_report(
    terminal: Callable[[int, int], Terminal],
) -> None:
    """`carbonwrap run` itself in a terminal: the status area while the child runs, the child's
    output intact, then a clean screen with the final report and the child's exit status."""
    from conftest import REPO

    term = terminal(100, 30)
    env = [f"PYTHONPATH={REPO}", "CARBONWRAP_UKGRID_URL=http://127.0.0.1:9",
           "XDG_CONFIG_HOME=/nonexistent"]  # fmt: skip
    child = [sys.executable, str(WORKLOADS / "chatty.py"), "tty", "lines", "1", "20", "bar",
             "wait", "go", "lines", "21", "30", "exit", "3"]  # fmt: skip
    command = ["env", *env, sys.executable, "-m", "carbonwrap", "run", "--region", "DK",
               "--intensity-source", "static", "--", *child]  # fmt: skip
    term.type(shlex.join(command) + '; echo "rc=$?"')
    term.wait_text("waiting go")
    term.wait(lambda screen: bool(status_rows(screen)), "the status area")
    screen = term.screen()
    assert status_rows(screen)[0] >= len(screen) - 3
    assert any("Denmark" in row or "g/kWh" in row for row in screen[-3:])
    (term.workdir / "go").touch()
    term.wait_text("rc=3")
    history = term.history()
    child_lines(history, 1, 30)
    assert "isatty 0=True 1=True 2=True" in history
    assert [row for row in history if row.startswith("[")] == ["[##########] 100% 10/10"]
    assert any("exit 3" in row and row.startswith("carbonwrap:") for row in history)
    assert any(row.startswith("CO2e") for row in history)
    assert not any(STATUS.match(row) for row in history)  # the area left no trace
    assert_whole_screen_scrolls(term, "after")
