"""--progress-from-output on a real terminal: tmux runs a shell, carbonwrap puts a pseudo-terminal
between the command and the pane (predict/ptyrelay.py), and the test types keys and reads the
screen back. What the command writes must reach the pane byte for byte, the command must see the
pane's size and modes, Ctrl-C, Ctrl-Z and `fg` must act as without carbonwrap, the pane's modes
must be as before afterwards, and a real tqdm's bars must become progress and predictions."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import REPO, WORKLOADS, logs_in, records
from tmux_terminal import STATUS, Terminal, status_rows

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(shutil.which("stty") is None, reason="stty is not installed"),
]

CHILD = [sys.executable, str(WORKLOADS / "ptychild.py")]
FAST = ["--interval", "0.1", "--log-interval", "0.3"]


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[int, int], Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(columns: int, rows: int) -> Terminal:
        opened.append(Terminal(tmp_path, columns, rows))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def wrapped(workdir: Path, *args: str) -> list[str]:
    """carbonwrap run --progress-from-output ARGS, as typed into the pane's shell."""
    env = [f"PYTHONPATH={REPO}", "XDG_CONFIG_HOME=/nonexistent",
           "CARBONWRAP_UKGRID_URL=http://127.0.0.1:9"]  # fmt: skip
    return ["env", *env, sys.executable, "-m", "carbonwrap", "run", "--region", "DK",
            "--intensity-source", "static", "--log-dir", str(workdir / "logs"),
            "--progress-from-output", *args]  # fmt: skip


def shows(term: Terminal, text: str, timeout_s: float = 20) -> None:
    """`text` on the screen (a machine busy with other tests starts carbonwrap slowly)."""
    term.wait(lambda screen: any(text in row for row in screen), repr(text), timeout_s)


def prompt(term: Terminal, timeout_s: float = 20) -> None:
    term.wait(
        lambda screen: [r for r in screen if r.strip()][-1:] == ["$"], "the prompt", timeout_s
    )


def typed(argv: list[str]) -> str:
    return shlex.join(argv)


def wait_for(ready: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def state_of(pid: int) -> str:
    """The process's state letter from /proc (R, S, T for stopped, ...)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def recorded(term: Terminal, command: str, tag: str) -> bytes:
    """The bytes the pane received while `command` ran, between two markers that the typed
    line itself does not hold (printf writes them from octal escapes)."""
    log = term.workdir / f"{tag}.bytes"
    term.tmux("pipe-pane", "-t", "0", "-o", f"cat >> {shlex.quote(str(log))}")
    term.type(f"printf '\\102EGIN-{tag}\\n'; {command}; printf '\\105ND-{tag}\\n'")
    begin, end = f"BEGIN-{tag}\r\n".encode(), f"END-{tag}\r\n".encode()
    wait_for(lambda: log.exists() and end in log.read_bytes(), f"the end of {tag}")
    term.tmux("pipe-pane", "-t", "0")  # off
    data = log.read_bytes()
    return data[data.index(begin) + len(begin) : data.index(end)]


def test_output_reaches_the_terminal_byte_for_byte_and_the_command_sees_it(
    terminal: Callable[[int, int], Terminal],
) -> None:
    """Without a live view (frames are carbonwrap's bytes): the pane gets exactly what it gets
    without carbonwrap, `stty -a` inside shows the same size and modes, isatty everywhere."""
    term = terminal(100, 30)
    term.type("stty -a > stty.before")
    prompt(term)
    steps = ["tty", "size", "bytes", "stty"]
    direct = recorded(term, typed([*CHILD, *steps]), "direct")
    command = typed([*wrapped(term.workdir, "-q", "--no-live", "--"), *CHILD, *steps])
    relayed = recorded(term, command, "relayed")
    assert b"isatty True True True\r\nsize 100x30\r\n" in direct
    assert b"\xe4\xb8\xad\xe6\x96\x87" in direct and b"rows 30; columns 100;" in direct
    assert relayed == direct
    term.type("stty -a > stty.after")
    prompt(term)
    assert (term.workdir / "stty.after").read_text() == (term.workdir / "stty.before").read_text()


def test_a_real_tqdm_becomes_progress_and_a_prediction_below_the_output(
    terminal: Callable[[int, int], Terminal],
) -> None:
    """The live area stays at the bottom, the tqdm bar above it; the log has the bar's
    progress and the predictor's predictions; afterwards no trace of the area."""
    term = terminal(100, 30)
    term.type(typed([*wrapped(term.workdir, *FAST, "--"), *CHILD, "tqdm", "120", "0.03",
                     "wait", "go"]) + '; echo "rc=$?"')  # fmt: skip

    def bar_and_area(screen: list[str]) -> bool:
        rows = status_rows(screen)
        return bool(rows) and any("%|" in row and "/120 [" in row for row in screen[: rows[0]])

    term.wait(bar_and_area, "the tqdm bar above the status area", 20)
    screen = term.screen()
    print("\n".join(screen))  # what the report quotes (pytest -s)
    (first,) = status_rows(screen)
    assert first >= len(screen) - 4  # the area at the bottom, 3 or 4 rows
    assert all("%|" not in row for row in screen[first:])
    shows(term, "waiting go")
    term.wait(lambda screen: any("→ predicted" in row for row in screen), "a prediction", 20)
    print("\n".join(term.screen()))
    (term.workdir / "go").touch()
    shows(term, "rc=0")
    history = term.history()
    bars = [row for row in history if "%|" in row]
    assert len(bars) == 1 and bars[0].startswith("100%|") and "120/120" in bars[0]
    assert not any(STATUS.match(row) for row in history)
    (log,) = logs_in(term.workdir / "logs")
    recs = records(log)
    progress = [r for r in recs if r["type"] == "progress"]
    assert {(r["source"], r["unit"], r["total"]) for r in progress} == {("output", "it", 120)}
    assert progress[-1]["done"] == 120 and len(progress) >= 3
    assert [r for r in recs if r["type"] == "prediction"]
    assert not [r for r in recs if r["type"] == "warning" and "terminal" in r["message"]]


def test_the_size_follows_a_resize(terminal: Callable[[int, int], Terminal]) -> None:
    term = terminal(100, 30)
    term.type(typed([*wrapped(term.workdir, "-q", "--"), *CHILD, "size", "winch", "wait", "go"]))
    shows(term, "waiting go")
    assert "size 100x30" in term.screen()
    term.resize(90, 25)
    shows(term, "size 90x25")
    term.resize(110, 32)
    shows(term, "size 110x32")
    (term.workdir / "go").touch()
    prompt(term)


def test_ctrl_c_ends_the_command_with_130_and_the_terminal_comes_back(
    terminal: Callable[[int, int], Terminal],
) -> None:
    term = terminal(100, 30)
    term.type("stty -a > stty.before")
    for tag, prefix in (("direct", []), ("wrapped", wrapped(term.workdir, "-q", "--"))):
        term.type(typed([*prefix, *CHILD, "wait", "never"]))  # alone: ^C ends a whole list
        shows(term, "waiting never")
        term.keys("C-c")
        prompt(term)
        term.type(f'echo "{tag}=$?"')
        shows(term, f"{tag}=130")
        term.type("clear")
        prompt(term)
    term.type("stty -a > stty.after")
    prompt(term)
    assert (term.workdir / "stty.after").read_text() == (term.workdir / "stty.before").read_text()


def test_ctrl_z_stops_the_job_and_fg_continues_it(terminal: Callable[[int, int], Terminal]) -> None:
    term = terminal(100, 30)
    pidfile = term.workdir / "pid"
    term.type("stty -a > stty.before")
    term.type(typed([*wrapped(term.workdir, "-q", "--"), *CHILD, "pid", str(pidfile), "tick"]))
    shows(term, "tick 3")
    pid = int(pidfile.read_text())
    term.keys("C-z")
    shows(term, "Stopped")
    prompt(term)
    wait_for(lambda: state_of(pid) == "T", "the command stopped")
    ticks = [row for row in term.history() if row.startswith("tick ")]
    time.sleep(0.5)
    assert [row for row in term.history() if row.startswith("tick ")] == ticks  # none since
    term.type("stty -a > stty.stopped")  # the shell has its terminal as it was
    prompt(term)
    before = (term.workdir / "stty.before").read_text()
    assert (term.workdir / "stty.stopped").read_text() == before
    term.type("fg")
    last = int(ticks[-1].split()[1])
    shows(term, f"tick {last + 3}")
    assert state_of(pid) != "T"
    term.keys("C-c")
    prompt(term)
    term.type('echo "rc=$?"; stty -a > stty.after')
    shows(term, "rc=130")
    prompt(term)
    assert (term.workdir / "stty.after").read_text() == before


def test_stdin_not_a_terminal_relays_output_only(terminal: Callable[[int, int], Terminal]) -> None:
    """`echo … | carbonwrap run`: the command reads the pipe, writes to a pty, stays in the
    job (Ctrl-C from the real terminal reaches it directly)."""
    term = terminal(100, 30)
    command = typed([*wrapped(term.workdir, "-q", "--"), *CHILD, "tty", "size", "wait", "never"])
    term.type(f'echo piped | {command}; echo "rc=$?"')
    shows(term, "waiting never")
    history = term.history()
    assert "isatty False True True" in history and "stdin piped" in history
    assert "size 100x30" in history
    term.keys("C-c")
    shows(term, "rc=130")


def test_the_real_terminal_is_restored_when_carbonwrap_is_terminated(
    terminal: Callable[[int, int], Terminal],
) -> None:
    """SIGTERM to carbonwrap is forwarded; carbonwrap outlives the command and gives the raw
    terminal back (SIGKILL cannot be caught: `stty sane` then, as documented)."""
    term = terminal(100, 30)
    pidfile = term.workdir / "pid"
    term.type("stty -a > stty.before")
    steps = ["pid", str(pidfile), "wait", "never"]
    term.type(typed([*wrapped(term.workdir, "-q", "--"), *CHILD, *steps]) + '; echo "rc=$?"')
    shows(term, "waiting never")
    command = int(pidfile.read_text())
    carbonwrap = int(Path(f"/proc/{command}/stat").read_text().split(")")[1].split()[1])
    os.kill(carbonwrap, 15)
    shows(term, "rc=143")
    term.type("stty -a > stty.after")
    prompt(term)
    assert (term.workdir / "stty.after").read_text() == (term.workdir / "stty.before").read_text()


def test_keys_line_editing_and_end_of_file_reach_the_command(
    terminal: Callable[[int, int], Terminal],
) -> None:
    """Typed keys go through the pty, whose line discipline edits the line (Backspace) and
    ends the input (Ctrl-D), as the real terminal's would."""
    term = terminal(100, 30)
    script = (
        "import sys; print('ready', flush=True); print('got', sys.stdin.readline().strip())\n"
        "print('rest', repr(sys.stdin.read()))"
    )
    term.type(typed([*wrapped(term.workdir, "-q", "--"), sys.executable, "-c", script]))
    shows(term, "ready")  # carbonwrap's terminal is raw by now: the pty edits the line
    term.keys("-l", "hellp")
    term.keys("BSpace")
    term.keys("-l", "o world")
    term.keys("Enter")
    shows(term, "got hello world")
    term.keys("-l", "more")
    term.keys("Enter")
    term.keys("C-d")
    shows(term, "rest 'more\\n'")
    prompt(term)
