"""--progress-from-output on a terminal, in-process: the pty relay (ptyrelay.py) between real
subprocesses and a real pseudo-terminal standing in for the user's, the escape-sequence
tracker that keeps carbonwrap's frames out of the command's sequences (escapes.py), and the
terminal's modes and job control (rawterm.py). Raw mode and keys need carbonwrap's own
controlling terminal: tests/e2e/test_pty_relay_tmux.py drives those in tmux."""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import signal
import struct
import sys
import termios
import threading
import time
from collections.abc import Iterator

import pytest

from carbonwrap.predict.escapes import CSI, ESCAPE, PLAIN, STRING, cuts_character, state_after
from carbonwrap.predict.messages import Report
from carbonwrap.predict.ptyrelay import TerminalRelay
from carbonwrap.predict.rawterm import ignores, raw
from carbonwrap.predict.relay import OutputRelay

# --- escapes.py ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"plain text\r\n"], PLAIN),
        ([b"\x1b[31mred\x1b[0m"], PLAIN),
        ([b"red \x1b"], ESCAPE),
        ([b"\x1b[3"], CSI),
        ([b"\x1b[3", b"1m text"], PLAIN),
        ([b"\x1b[", b"?25", b"l"], PLAIN),
        ([b"\x1b(", b"B"], PLAIN),
        ([b"\x1b(B"], PLAIN),
        ([b"\x1b]0;a title"], STRING),
        ([b"\x1b]0;a title", b" goes on"], STRING),
        ([b"\x1b]0;a title", b" ends\x07 here"], PLAIN),
        ([b"\x1b]8;;http://x\x1b", b"\\link"], PLAIN),
        ([b"\x1bP" + b"q" * 5000, b"#" * 70000, b"\x1b\\"], PLAIN),  # a long DCS (sixel)
        ([b"\x1b7", b"saved"], PLAIN),
    ],
)
def test_the_state_follows_sequences_across_chunks(chunks: list[bytes], expected: int) -> None:
    state = PLAIN
    for chunk in chunks:
        buffer = bytearray(chunk + b"\0" * 10)  # a reused buffer: only `end` bytes count
        state = state_after(state, buffer, len(chunk))
    assert state == expected


def test_a_character_cut_in_two_is_seen() -> None:
    text = "é █ 中 😀".encode()
    for end in range(1, len(text) + 1):
        try:
            text[:end].decode()
            whole = True
        except UnicodeDecodeError:
            whole = False
        assert cuts_character(text, end) is not whole, end
    assert not cuts_character(b"", 0)


# --- rawterm.py ----------------------------------------------------------------------------------


def test_raw_mode_is_cfmakeraw() -> None:
    primary, secondary = os.openpty()
    try:
        made = raw(termios.tcgetattr(secondary))
        termios.tcsetattr(secondary, termios.TCSANOW, made)
        iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(secondary)
        assert not oflag & termios.OPOST and not iflag & (termios.ICRNL | termios.IXON)
        assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        assert cflag & termios.CSIZE == termios.CS8
        assert (cc[termios.VMIN], cc[termios.VTIME]) in ((1, 0), (b"\x01", b"\x00"))
    finally:
        os.close(primary)
        os.close(secondary)


def test_an_ignored_signal_is_seen_in_proc() -> None:
    previous = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    try:
        assert ignores(os.getpid(), signal.SIGTSTP)
        assert not ignores(os.getpid(), signal.SIGUSR2)
    finally:
        signal.signal(signal.SIGTSTP, previous)
    assert not ignores(os.getpid(), signal.SIGTSTP)
    assert not ignores(2**22 + 7, signal.SIGTSTP)  # no such process


# --- the relay, output only (fd 1 on a pseudo-terminal standing in for the user's) ---------------


class UserTerminal:
    """A pty whose slave side is the test process's fd 1 for the test: 'the terminal'."""

    def __init__(self, columns: int, rows: int) -> None:
        self.primary, self.secondary = os.openpty()
        self.resize(columns, rows)
        self.received = bytearray()
        self._saved = os.dup(1)
        os.dup2(self.secondary, 1)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def resize(self, columns: int, rows: int) -> None:
        fcntl.ioctl(self.primary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.primary, 65536)
            except OSError:
                return
            if not data:
                return
            self.received += data

    def wait_for(self, data: bytes, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while data not in self.received:
            assert time.monotonic() < deadline, bytes(self.received)
            time.sleep(0.01)

    def close(self) -> None:
        os.dup2(self._saved, 1)
        os.close(self._saved)
        os.close(self.secondary)
        os.close(self.primary)
        self._reader.join(5)


@contextlib.contextmanager
def user_terminal(columns: int = 97, rows: int = 31) -> Iterator[UserTerminal]:
    """In the test's body: pytest puts its capture back on fd 1 after a fixture's setup."""
    term = UserTerminal(columns, rows)
    try:
        yield term
    finally:
        term.close()


def spawn(argv: list[str], relay: TerminalRelay | None) -> int:
    actions = relay.file_actions if relay is not None else [(os.POSIX_SPAWN_DUP2, 1, 2)]
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions)
    if relay is not None:
        relay.spawned(pid)
    return pid


WRITER = """
import os, sys, time
print("isatty", os.isatty(1), os.isatty(2), "size", *os.get_terminal_size(1), flush=True)
sys.stderr.write("\\r 40%|####      | 40/100 [00:04<00:06, 10.00it/s]")
sys.stderr.flush()
time.sleep(0.05)
os.write(1, "\\x1b[32mgreen\\x1b[0m tab\\tend \\u4e2d\\r\\n".encode())
sys.stderr.write("\\r100%|##########| 100/100 [00:10<00:00, 10.00it/s]\\n")
"""


def test_output_goes_through_as_the_terminal_would_have_it() -> None:
    """Not carbonwrap's stdin: output only; the same bytes reach the terminal as when the
    command writes to it directly, the command sees a terminal of its size, bars are read."""
    with user_terminal() as term:
        argv = [sys.executable, "-c", WRITER]
        pid = spawn(argv, None)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        term.wait_for(b"100/100")
        direct = bytes(term.received)
        term.received.clear()

        reports: list[Report] = []
        relay = TerminalRelay((1, 2), "stdout+stderr", reports.append)
        assert not relay.keys and not relay.new_session  # pytest's stdin is not this terminal
        pid = spawn(argv, relay)
        relay.start()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert relay.finish(0.5) is None and relay.failed is None
        assert bytes(term.received) == direct
        assert b"isatty True True size 97 31\r\n" in direct
        assert reports[-1] == Report(100, 100, "it")


def test_a_resize_reaches_the_command() -> None:
    with user_terminal() as term:
        relay = TerminalRelay((1,), "stdout", lambda report: None)
        script = "import os, sys; sys.stdin.readline(); print(*os.get_terminal_size(1))"
        argv = [sys.executable, "-c", script]
        read_end, write_end = os.pipe()
        try:
            actions = [(os.POSIX_SPAWN_DUP2, read_end, 0), *relay.file_actions]
            pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=actions)
            relay.spawned(pid)
            relay.start()
            term.resize(120, 40)
            relay.own.resize()  # as on SIGWINCH
            os.write(write_end, b"go\n")
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        finally:
            os.close(read_end)
            os.close(write_end)
            relay.finish(0.5)
        assert b"120 40\r\n" in term.received


def test_own_writes_wait_for_the_end_of_an_escape_sequence() -> None:
    """A frame written while the command is halfway through a colour sequence goes after the
    sequence's end, not into it."""
    with user_terminal() as term:
        relay = TerminalRelay((1,), "stdout", lambda report: None)
        script = "import os, time; os.write(1, b'A\\x1b[3'); time.sleep(0.1); os.write(1, b'1mB')"
        pid = spawn([sys.executable, "-c", script], relay)
        relay.start()
        term.wait_for(b"A\x1b[3")
        relay.write_beside(b"\x1b7FRAME\x1b8")
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        relay.finish(0.5)
        term.wait_for(b"FRAME")
        # After the write that ended the sequence, not into it (the kernel alone would have
        # put it between "A\x1b[3" and "1mB": a broken sequence on the screen).
        assert bytes(term.received) == b"A\x1b[31mB\x1b7FRAME\x1b8"


def test_leftover_writers_are_handed_to_cat() -> None:
    with user_terminal() as term:
        relay = TerminalRelay((1,), "stdout", lambda report: None)
        script = "(sleep 1; echo late) & echo early"
        pid = spawn(["/bin/sh", "-c", script], relay)
        relay.start()
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        note = relay.finish(0.2)
        assert note is not None and "cat process" in note
        term.wait_for(b"late\r\n")
        time.sleep(0.2)
        assert bytes(term.received) == b"early\r\nlate\r\n"  # and nothing from cat


def test_two_terminals_one_pty_and_a_note_for_the_start() -> None:
    first, second = UserTerminal(80, 24), os.openpty()  # fd 1 on one, fd 2 on the other
    saved = os.dup(2)
    os.dup2(second[1], 2)
    try:
        notes: list[str] = []
        relay = OutputRelay(lambda *args: None, 1.0, notes)
        assert relay.terminal is not None and relay.terminal.child_fds == (1,)
        assert relay.pipes == [] and notes == relay.at_start
        assert "two different terminals" in relay.at_start[0]
        relay.discard()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(second[0])
        os.close(second[1])
        first.close()


def test_without_a_pseudo_terminal_the_note_comes_at_the_start() -> None:
    """No pty to be had (here: no descriptor free under the limit): the terminal is left alone,
    and `at_start` says so, for the run to say before the command's output."""
    term = UserTerminal(80, 24)
    saved = os.dup(2)
    os.dup2(term.secondary, 2)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    used = {int(name) for name in os.listdir("/proc/self/fd")}
    lowest_free = min(set(range(max(used) + 2)) - used)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            notes: list[str] = []
            relay = OutputRelay(lambda *args: None, 1.0, notes)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert relay.terminal is None and relay.pipes == []
        (note,) = relay.at_start
        assert note.startswith("--progress-from-output: no pseudo-terminal for the command's ")
        assert "CARBONWRAP_PROGRESS" in note
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        term.close()


def test_the_suspend_key_is_found_only_while_the_pty_makes_signals() -> None:
    relay_term = UserTerminal(80, 24)
    try:
        relay = TerminalRelay((1,), "stdout", lambda report: None)
        slave = os.open(relay.slave_path, os.O_RDWR | os.O_NOCTTY)
        try:
            modes = termios.tcgetattr(slave)
            modes[3] |= termios.ISIG
            termios.tcsetattr(slave, termios.TCSANOW, modes)
            assert relay.own.suspend_in(b"ab\x1acd") == 2
            assert relay.own.suspend_in(b"abcd") == -1
            modes[3] &= ~termios.ISIG  # raw: Ctrl-Z is the program's byte
            termios.tcsetattr(slave, termios.TCSANOW, modes)
            assert relay.own.suspend_in(b"ab\x1acd") == -1
        finally:
            os.close(slave)
            relay.discard()
    finally:
        relay_term.close()
