"""Progress from the command: the message format, the rate limiter, the channel (a real socket)
and the helper, in this process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from carbonwrap import report_progress
from carbonwrap.predict.channel import ProgressChannel, RateLimiter, open_channel
from carbonwrap.predict.messages import Report, parse_message

PY = sys.executable


# --- the message format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("epoch 3/10", Report(3, 10, "epoch")),
        ("step 1200/50000\n", Report(1200, 50000, "step")),
        ("  Epoch 3 / 10 ", Report(3, 10, "Epoch")),
        ("epoch\t3/10", Report(3, 10, "epoch")),
        ("3/10", Report(3, 10, "it")),
        ("step 1200", Report(1200, None, "step")),
        ("0.35", Report(0.35, 1.0, "fraction")),
        ("1", Report(1, 1.0, "fraction")),
        ("35%", Report(0.35, 1.0, "fraction")),
        ("35 %", Report(0.35, 1.0, "fraction")),
        (".5", Report(0.5, 1.0, "fraction")),
        ("tokens 1.5e6/2e6", Report(1.5e6, 2e6, "tokens")),
        ("batch_v2.x-y 1/2", Report(1, 2, "batch_v2.x-y")),
        ('{"done": 3, "total": 10, "unit": "epoch"}', Report(3, 10, "epoch")),
        ('{"done": 3, "total": 10}', Report(3, 10, "it")),
        ('{"done": 0.5}', Report(0.5, 1.0, "fraction")),
        ('{"done": 7, "total": null, "unit": "step"}', Report(7, None, "step")),
    ],
)
def test_messages_understood(text: str, expected: Report) -> None:
    report = parse_message(text)
    assert report == expected
    assert report is not None and type(report.done) is type(expected.done)  # 3 stays an int


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "epoch",
        "1.5",  # a bare number is a fraction: at most 1
        "150%",
        "epoch 11/10",  # done > total
        "3/0",
        "-1",
        "+1/2",
        "epoch -3/10",
        "nan",
        "inf",
        "step 1e400",
        "1_000/2000",
        "٣/10",  # digits are ASCII
        "3 10",
        "epoch 3/",
        "/10",
        "epoch3/10",
        "train step 3/10",  # a unit is one word
        "épocha 1/2",
        "u" * 33 + " 1/2",
        "epoch 1/2%",
        "x" * 300,
        '{"done": true}',
        '{"done": "3"}',
        '{"done": 1e999}',
        '{"done": ' + "9" * 400 + "}",
        '{"done": 3, "total": 10, "unit": "two words"}',
        '{"total": 10}',
        "[1, 2]",
        "{" * 100000,
    ],
)
def test_bad_messages(text: str) -> None:
    assert parse_message(text) is None


# --- the rate limiter (a fake clock) -------------------------------------------------------------


class Logged:
    def __init__(self) -> None:
        self.items: list[tuple[Report, float]] = []

    def __call__(self, report: Report, at_s: float) -> None:
        self.items.append((report, at_s))

    @property
    def reports(self) -> list[Report]:
        return [report for report, _ in self.items]


def test_fifty_thousand_steps_make_a_few_records_and_the_last() -> None:
    logged = Logged()
    limiter = RateLimiter(10.0, logged)
    for step in range(1, 50_001):  # 100 s of training, 500 steps a second
        now = step / 500
        limiter.flush_due(now)
        limiter.offer(Report(step, 50_000, "step"), now)
    limiter.finish()
    assert limiter.reports == 50_000
    assert len(logged.items) <= 100 / 10 + 2
    assert logged.reports[0] == Report(1, 50_000, "step")
    assert logged.reports[-1] == Report(50_000, 50_000, "step")
    times = [at for _, at in logged.items]
    assert times == sorted(times)
    assert limiter.latest == Report(50_000, 50_000, "step")


def test_waiting_report_is_logged_when_due_with_its_own_time() -> None:
    logged = Logged()
    limiter = RateLimiter(10.0, logged)
    limiter.offer(Report(1, 10, "epoch"), 0.0)
    limiter.offer(Report(2, 10, "epoch"), 3.0)
    assert limiter.due() == 10.0
    limiter.flush_due(9.9)
    assert len(logged.items) == 1
    limiter.flush_due(10.0)
    assert logged.items[-1] == (Report(2, 10, "epoch"), 3.0)
    assert limiter.due() is None


def test_a_new_phase_goes_at_once_after_the_last_of_the_old() -> None:
    logged = Logged()
    limiter = RateLimiter(10.0, logged)
    limiter.offer(Report(0, 100, "step"), 0.0)
    limiter.offer(Report(99, 100, "step"), 1.0)
    limiter.offer(Report(100, 100, "step"), 2.0)
    limiter.offer(Report(0.5, 1.0, "fraction"), 3.0)  # a new phase
    assert logged.items == [
        (Report(0, 100, "step"), 0.0),
        (Report(100, 100, "step"), 2.0),
        (Report(0.5, 1.0, "fraction"), 3.0),
    ]


def test_interleaved_units_cannot_flood_the_log() -> None:
    logged = Logged()
    limiter = RateLimiter(1.0, logged)
    for i in range(10_000):  # two streams, alternating, 1,000 reports a second for 10 s
        now = i / 1000
        limiter.flush_due(now)
        unit = "step" if i % 2 else "sample"
        limiter.offer(Report(i, 10_000, unit), now)
    limiter.finish()
    # per second: at most MAX_CHANGES changes at once and one other write (due, or the interval
    # over), each after the newest waiting report of the other unit; not one per report
    assert len(logged.items) <= 10 * (RateLimiter.MAX_CHANGES + 1) * 2 + 2
    assert {r.unit for r in logged.reports[-2:]} == {"step", "sample"}


def test_repeats_of_the_logged_report_are_not_logged_again() -> None:
    logged = Logged()
    limiter = RateLimiter(1.0, logged)
    for i in range(10):
        limiter.offer(Report(5, 10, "epoch"), float(i * 5))
    limiter.finish()
    assert logged.reports == [Report(5, 10, "epoch")]


# --- the channel and the helper, in this process -------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """A short directory: a socket's path must fit in 107 bytes."""
    path = tempfile.mkdtemp(prefix="cwp-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Channel:
    """A real channel with what it logs (interval 0: everything) and its warnings."""

    def __init__(self, root: str, interval_s: float = 0.0) -> None:
        self.logged: list[tuple[Any, ...]] = []
        self.warnings: list[str] = []
        self.channel = ProgressChannel(root, os.urandom(4).hex(), self._log, interval_s)
        self.channel.start()

    def _log(self, *args: Any) -> None:
        self.logged.append(args)

    def wait_for(self, reports: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.channel.limiter.reports + self.channel.bad < reports:
            assert time.monotonic() < deadline, f"{self.channel.limiter.reports} reports"
            time.sleep(0.005)

    def close(self) -> None:
        self.channel.close(self.warnings.append)


@pytest.fixture
def channel(short_tmp: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Channel]:
    ch = Channel(short_tmp)
    monkeypatch.setenv("CARBONWRAP_PROGRESS", ch.channel.path)
    report_progress.reset()
    yield ch
    ch.close()
    report_progress.reset()


def test_channel_is_private_and_removed(channel: Channel) -> None:
    directory = channel.channel.directory
    assert os.stat(directory).st_mode & 0o777 == 0o700
    assert os.path.exists(channel.channel.path)
    channel.close()
    assert not os.path.exists(directory)


def test_no_channel_is_a_note_not_a_failure() -> None:
    notes: list[str] = []
    long_id = "x" * 120  # the socket's path would not fit in sockaddr_un
    assert open_channel({"TMPDIR": "/tmp"}, long_id, lambda *a: None, 1.0, notes) is None
    assert len(notes) == 1 and notes[0].startswith("no progress channel")
    assert not os.path.exists(f"/tmp/carbonwrap-{long_id}")


def test_helper_reports_reach_the_channel(channel: Channel) -> None:
    from carbonwrap import progress

    progress(3, 10, "epoch")
    progress(0.25)
    progress(7, 20)
    progress(1200, unit="step")
    channel.wait_for(4)
    channel.close()
    got = [(done, total, unit, source) for done, total, unit, source, _ in channel.logged]
    assert got == [
        (3, 10, "epoch", "channel"),
        (0.25, 1.0, "fraction", "channel"),
        (7, 20, "it", "channel"),
        (1200, None, "step", "channel"),
    ]
    assert channel.warnings == []


def test_every_report_in_memory_the_log_rate_limited(
    short_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[tuple[Any, ...]] = []
    seen: list[tuple[Any, ...]] = []
    channel = ProgressChannel(
        short_tmp, os.urandom(4).hex(), lambda *a: logged.append(a), 60.0, lambda *a: seen.append(a)
    )
    channel.start()
    monkeypatch.setenv("CARBONWRAP_PROGRESS", channel.path)
    report_progress.reset()
    from carbonwrap import progress

    for step in range(1, 9):  # fewer than the socket's queue holds
        progress(step, 8, "step")
    deadline = time.monotonic() + 20
    while len(seen) < 8:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    channel.close(lambda message: None)
    report_progress.reset()
    assert [args[:4] for args in seen] == [(s, 8, "step", "channel") for s in range(1, 9)]
    assert [args[0] for args in logged] == [1, 8]  # the first, and the last at the end
    assert channel.latest == Report(8, 8, "step")


def test_helper_never_raises_on_odd_values(channel: Channel) -> None:
    from carbonwrap import progress

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

        def __float__(self) -> float:
            raise RuntimeError("no")

    progress(Unprintable())  # type: ignore[arg-type]
    progress(float("nan"), 10, "epoch")
    progress("three", 10, "epoch")  # type: ignore[arg-type]
    progress(3, 10, "two words")
    progress(11, 10, "epoch")
    progress(1, 2, "epoch")
    channel.wait_for(5)
    channel.close()
    assert [args[:3] for args in channel.logged] == [(1, 2, "epoch")]
    assert channel.channel.bad == 4
    assert len(channel.warnings) == 1  # one warning, however many bad messages
    assert "4 progress message(s)" in channel.warnings[0]


def test_raw_lines_and_several_lines_in_one_datagram(channel: Channel) -> None:
    assert report_progress.send_line('epoch 1/3\n{"done": 2, "total": 3, "unit": "epoch"}\n')
    assert report_progress.send_line("nonsense")
    channel.wait_for(3)
    channel.close()
    assert [args[:3] for args in channel.logged] == [(1, 3, "epoch"), (2, 3, "epoch")]
    assert channel.channel.bad == 1
    assert "'nonsense'" in channel.warnings[0]


def cpu_s_of(calls: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        calls()
    return time.process_time() - start


def test_helper_is_a_cheap_no_op_without_carbonwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBONWRAP_PROGRESS", raising=False)
    report_progress.reset()
    from carbonwrap import progress

    assert cpu_s_of(lambda: progress(3, 10, "epoch"), 100_000) < 1.0  # ~0.2 µs a call here
    report_progress.reset()


@pytest.mark.parametrize("state", ["removed", "no reader", "full"])
def test_helper_never_blocks_or_raises(
    state: str, short_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    path = os.path.join(short_tmp, "progress")
    sock = None
    if state != "removed":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        if state == "no reader":
            sock.close()  # the path stays: a carbonwrap killed with SIGKILL
    monkeypatch.setenv("CARBONWRAP_PROGRESS", path)
    report_progress.reset()
    from carbonwrap import progress

    assert cpu_s_of(lambda: progress(3, 10, "epoch"), 10_000) < 2.0
    if sock is not None:
        sock.close()
    report_progress.reset()


def test_channel_gone_mid_run(channel: Channel) -> None:
    from carbonwrap import progress

    progress(1, 2, "epoch")
    channel.wait_for(1)
    channel.close()
    assert cpu_s_of(lambda: progress(2, 2, "epoch"), 10_000) < 2.0
    assert report_progress._off  # gave up at the first failure: later calls cost nothing


def test_threads_report_at_once(channel: Channel) -> None:
    from carbonwrap import progress

    def report() -> None:
        for i in range(200):
            progress(i, 1000, "step")

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress(1000, 1000, "step")
    channel.wait_for(1)
    time.sleep(0.2)
    channel.close()
    assert channel.channel.bad == 0
    assert all(unit == "step" for _, _, unit, _, _ in channel.logged)


def test_first_source_is_kept_until_it_exits(channel: Channel) -> None:
    """Reports from another process are ignored while the first reporter runs; once it has
    exited, the next one to report takes over."""
    env = dict(os.environ)
    report = "import sys, carbonwrap; carbonwrap.progress(int(sys.argv[1]), 10, sys.argv[2])"
    first = subprocess.Popen(
        [PY, "-c", report + "; sys.stdin.read()", "1", "first"], env=env, stdin=subprocess.PIPE
    )
    channel.wait_for(1)
    subprocess.run([PY, "-c", report, "2", "other"], env=env, check=True)
    channel.wait_for(1)
    time.sleep(0.1)  # the other's report has been read (and refused)
    assert [args[2] for args in channel.logged] == ["first"]
    assert first.stdin is not None
    first.stdin.close()
    first.wait()
    subprocess.run([PY, "-c", report, "3", "next"], env=env, check=True)
    channel.wait_for(2)
    channel.close()
    assert [args[:3] for args in channel.logged] == [(1, 10, "first"), (3, 10, "next")]
    assert channel.channel.other_sources == 1


def test_forked_child_reports_on_its_own_socket(channel: Channel) -> None:
    from carbonwrap import progress

    progress(1, 4, "epoch")
    parent_sock = report_progress._sock
    pid = os.fork()
    if pid == 0:  # the child: its own socket, reports refused while the parent runs
        code = 0 if report_progress._sock is None else 1
        progress(2, 4, "epoch")
        code |= 0 if report_progress._sock not in (None, parent_sock) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    progress(3, 4, "epoch")
    channel.wait_for(2)
    time.sleep(0.1)
    channel.close()
    assert [args[0] for args in channel.logged] == [1, 3]


def test_close_returns_as_soon_as_the_queue_is_read(
    short_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report waiting for its time (rate-limited) and one still queued in the socket: close
    reads the queue, logs the last report and returns at once. Before, the reader waited with
    the socket in non-blocking mode, where a shut-down datagram socket reads as EAGAIN though
    poll calls it readable: it spun on the CPU until close's 2 s join gave up on it."""
    logged: list[tuple[Any, ...]] = []
    channel = ProgressChannel(short_tmp, os.urandom(4).hex(), lambda *a: logged.append(a), 60.0)
    channel.start()
    monkeypatch.setenv("CARBONWRAP_PROGRESS", channel.path)
    report_progress.reset()
    from carbonwrap import progress

    progress(1, 10, "epoch")  # logged at once
    progress(2, 10, "epoch")  # waits for its time, 60 s on
    deadline = time.monotonic() + 20
    while channel.limiter.reports < 2:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.1)  # the reader waits for the next report with a timeout
    progress(3, 10, "epoch")  # queued as close begins
    started = time.monotonic()
    channel.close(lambda message: None)
    took_s = time.monotonic() - started
    report_progress.reset()
    assert took_s < 0.3, f"close took {took_s:.2f} s"
    assert [args[0] for args in logged] == [1, 3]  # the first, and the last at the end
    assert not os.path.exists(channel.path)


def test_a_reader_never_started_still_has_the_queue_read_at_close(
    short_tmp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command that ended before carbonwrap started its threads (`true`: run/phases.py
    starts no reader then): what it sent is read and logged by close itself, in order, the
    last report included, and the socket removed."""
    logged: list[tuple[Any, ...]] = []
    channel = ProgressChannel(short_tmp, os.urandom(4).hex(), lambda *a: logged.append(a), 60.0)
    monkeypatch.setenv("CARBONWRAP_PROGRESS", channel.path)
    report_progress.reset()
    from carbonwrap import progress

    for done in (1, 2, 3):
        progress(done, 10, "epoch")  # queued: nothing reads yet
    started = time.monotonic()
    channel.close(lambda message: None)
    report_progress.reset()
    assert time.monotonic() - started < 0.3
    assert channel.limiter.reports == 3
    assert [args[0] for args in logged] == [1, 3]  # the first at once, the last at the end
    assert not os.path.exists(channel.path)


def test_a_reader_run_at_close_that_raises_is_said_as_its_thread_would_say_it(
    short_tmp: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reader run by close itself (never started) is a bug's traceback on stderr, as its
    thread's would be, and close goes on to remove the socket: the run's end is not cut."""

    def broken(*args: object) -> None:
        raise ValueError("an observer's bug")

    channel = ProgressChannel(short_tmp, os.urandom(4).hex(), broken, 0.0)
    monkeypatch.setenv("CARBONWRAP_PROGRESS", channel.path)
    report_progress.reset()
    from carbonwrap import progress

    progress(1, 10, "epoch")
    channel.close(lambda message: None)
    report_progress.reset()
    err = capsys.readouterr().err
    assert "Exception in thread carbonwrap-progress" in err and "an observer's bug" in err
    assert not os.path.exists(channel.path)
