"""--progress-from-output: real runs whose stdout/stderr are files or pipes go through the relay;
the bytes must arrive unchanged and in order, whatever happens at the end, and the progress in
them must be recognised."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from conftest import cw_argv, cw_env, logs_in, records

PY = sys.executable

TQDM_LIKE = textwrap.dedent(
    r"""
    import sys, time
    print("Starting", flush=True)
    for i in range(0, 101, 5):
        bar = "\u2588" * (i // 10)
        sys.stderr.write(f"\r{i:3d}%|{bar:<10}| {i}/100 [00:0{i % 10}<00:10, 12.5it/s]")
        sys.stderr.flush()
        print(f"line {i}", flush=True)
        time.sleep(0.01)
    sys.stderr.write("\n")
    """
)


# --- real runs -----------------------------------------------------------------------------------


def run_direct_and_relayed(
    workdir: Path, argv: list[str], merged: bool = False, **kw: Any
) -> tuple[bytes, bytes, bytes, bytes]:
    """The command's stdout and stderr as files, without and with carbonwrap in between."""
    outputs = []
    for wrap in (False, True):
        name = "relayed" if wrap else "direct"
        out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
        full = cw_argv("run", "-q", "--progress-from-output", "--", *argv) if wrap else argv
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            subprocess.run(
                full, stdout=out, stderr=out if merged else err, cwd=workdir, env=cw_env(),
                timeout=120, **kw,
            )  # fmt: skip
        outputs += [out_path.read_bytes(), err_path.read_bytes()]
    return outputs[0], outputs[1], outputs[2], outputs[3]


def progress_of(workdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    (log,) = logs_in(workdir)
    recs = records(log)
    return [r for r in recs if r["type"] == "progress"], recs


def test_tqdm_output_through_files_is_unchanged_and_recognised(workdir: Path) -> None:
    out, err, relayed_out, relayed_err = run_direct_and_relayed(workdir, [PY, "-c", TQDM_LIKE])
    assert relayed_out == out and relayed_err == err
    assert b"100/100" in err
    progress, _ = progress_of(workdir)
    assert all(r["source"] == "output" and r["unit"] == "it" for r in progress)
    assert (progress[-1]["done"], progress[-1]["total"]) == (100, 100)


def test_merged_streams_keep_their_order(workdir: Path) -> None:
    script = textwrap.dedent(
        """
        import os
        for i in range(2000):
            os.write(1 + i % 2, b"%d %s\\n" % (i, b"out" if i % 2 == 0 else b"err"))
        """
    )
    out, _, relayed_out, _ = run_direct_and_relayed(workdir, [PY, "-c", script], merged=True)
    assert relayed_out == out
    assert out.count(b"\n") == 2000


def test_binary_output_is_copied_byte_for_byte(workdir: Path) -> None:
    script = textwrap.dedent(
        """
        import os, random
        rng = random.Random(7)
        data = bytes(range(256)) * 64 + b"\\r 50%|##| 1/2 [\\n" + rng.randbytes(8 << 20)
        view = memoryview(data)
        while view:  # odd write sizes
            n = rng.randrange(1, 70000)
            os.write(1, view[:n])
            view = view[n:]
        os.write(2, b"done\\n")
        """
    )
    out, err, relayed_out, relayed_err = run_direct_and_relayed(workdir, [PY, "-c", script])
    assert len(out) > 8 << 20
    assert relayed_out == out and relayed_err == err


def test_nothing_is_lost_when_the_command_is_killed(workdir: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal
        block = b"0123456789" * 100_000 + b"\\n"
        for _ in range(20):
            os.write(1, block)
        os.write(2, b"last words\\n")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    with open(workdir / "out", "wb") as out, open(workdir / "err", "wb") as err:
        result = subprocess.run(
            cw_argv("run", "-q", "--progress-from-output", "--", PY, "-c", script),
            stdout=out, stderr=err, cwd=workdir, env=cw_env(), timeout=120,
        )  # fmt: skip
    assert result.returncode == 128 + signal.SIGKILL
    assert (workdir / "out").read_bytes() == (b"0123456789" * 100_000 + b"\n") * 20
    assert (workdir / "err").read_bytes() == b"last words\n"


def test_epoch_lines_through_a_pipe(workdir: Path) -> None:
    script = "for e in range(1, 4): print(f'Epoch {e}/3', flush=True)\nprint('done')"
    proc = subprocess.run(
        [*cw_argv("run", "-q", "--progress-from-output", "--", PY, "-c", script)],
        capture_output=True, cwd=workdir, env=cw_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"Epoch 1/3\nEpoch 2/3\nEpoch 3/3\ndone\n"
    progress, _ = progress_of(workdir)
    assert progress[-1]["done"] == 2 and progress[-1]["total"] == 3  # epoch 3 started
    assert {r["unit"] for r in progress} == {"epoch"}


def test_a_reader_that_goes_away_gives_the_command_sigpipe(workdir: Path) -> None:
    """`carbonwrap run -- yes | head -1`: yes dies of SIGPIPE, as it would without us."""
    pipeline = " ".join(cw_argv("run", "-q", "--progress-from-output", "--", "yes"))
    proc = subprocess.run(
        ["bash", "-c", f"{pipeline} | head -1; echo ${{PIPESTATUS[0]}}"],
        capture_output=True, cwd=workdir, env=cw_env(), timeout=120,
    )  # fmt: skip
    assert proc.stdout.split() == [b"y", str(128 + signal.SIGPIPE).encode()]


def test_processes_left_running_keep_their_output(workdir: Path) -> None:
    """A background process still writes after the command has ended: a cat takes the pipe
    over, and its output reaches the file after carbonwrap has exited."""
    script = "(sleep 1.5; echo late) & echo early"
    with open(workdir / "out", "wb") as out:
        result = subprocess.run(
            cw_argv("run", "-q", "--progress-from-output", "--", "sh", "-c", script),
            stdout=out, stderr=subprocess.PIPE, cwd=workdir, env=cw_env(), timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 30
    while (workdir / "out").read_bytes() != b"early\nlate\n":
        assert time.monotonic() < deadline, (workdir / "out").read_bytes()
        time.sleep(0.05)
    _, recs = progress_of(workdir)
    assert any(r["type"] == "warning" and "cat process" in r["message"] for r in recs)


def test_a_terminal_gets_a_pseudo_terminal_and_its_progress_is_read(workdir: Path) -> None:
    """stdout and stderr on a terminal, stdin not (output only: the command keeps carbonwrap's
    process group and the real controlling terminal): the command still sees terminals, the
    bytes arrive as the terminal would have processed them, the progress is read, no note."""
    primary, secondary = pty.openpty()
    script = (
        "import os; open('tty', 'w').write(str(os.isatty(1)) + str(os.isatty(2)))\n"
        "print('Epoch 2/4', flush=True); os.write(2, b'bar\\r\\n')"
    )
    received = b""
    try:
        proc = subprocess.Popen(
            cw_argv("run", "-q", "--progress-from-output", "--", PY, "-c", script),
            stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, cwd=workdir,
            env=cw_env(),
        )  # fmt: skip
        os.close(secondary)
        while True:  # keep the terminal drained
            try:
                data = os.read(primary, 4096)
            except OSError:
                break
            if not data:
                break
            received += data
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
    assert (workdir / "tty").read_text() == "TrueTrue"
    assert received == b"Epoch 2/4\r\nbar\r\r\n"  # the outer terminal's ONLCR, once
    progress, recs = progress_of(workdir)
    assert [(r["done"], r["total"], r["source"]) for r in progress] == [(1, 4, "output")]
    assert not [r for r in recs if r["type"] == "warning" and "terminal" in r["message"]]


def test_stdout_to_a_file_with_stderr_on_a_terminal(workdir: Path) -> None:
    """A pipe for the file, a pseudo-terminal for the terminal; the progress read in both."""
    primary, secondary = pty.openpty()
    script = (
        "import os, sys, time; print(os.isatty(1), os.isatty(2)); print('Epoch 2/4', flush=True)\n"
        "time.sleep(0.3)  # two streams, two threads: the epoch first\n"
        "sys.stderr.write('\\r 50%|#####     | 5/10 [00:05<00:05, 1.00it/s]\\n')"
    )
    try:
        with open(workdir / "out", "wb") as out:
            proc = subprocess.Popen(
                cw_argv("run", "-q", "--progress-from-output", "--", PY, "-c", script),
                stdin=subprocess.DEVNULL, stdout=out, stderr=secondary, cwd=workdir,
                env=cw_env(),
            )  # fmt: skip
            os.close(secondary)
            assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
    assert (workdir / "out").read_bytes() == b"False True\nEpoch 2/4\n"
    progress, recs = progress_of(workdir)
    assert (progress[0]["done"], progress[0]["total"]) == (1, 4)  # then the bar, ignored
    assert not [r for r in recs if r["type"] == "warning" and "terminal" in r["message"]]


def test_two_different_terminals_are_said_before_the_command_runs(workdir: Path) -> None:
    """stdout and stderr on two terminals: the pty serves stdout's; that stderr is left alone
    is said on stderr before the command's first byte (and logged)."""
    out_primary, out_secondary = pty.openpty()
    err_primary, err_secondary = pty.openpty()
    script = "import os; os.write(2, b'from the command\\n'); print(os.isatty(1), os.isatty(2))"
    try:
        proc = subprocess.Popen(
            cw_argv("run", "-q", "--progress-from-output", "--", PY, "-c", script),
            stdin=subprocess.DEVNULL, stdout=out_secondary, stderr=err_secondary, cwd=workdir,
            env=cw_env(),
        )  # fmt: skip
        os.close(out_secondary)
        os.close(err_secondary)
        assert proc.wait(timeout=60) == 0
        err = os.read(err_primary, 65536)
        out = os.read(out_primary, 65536)
    finally:
        os.close(out_primary)
        os.close(err_primary)
    assert out == b"True True\r\n"
    assert err.startswith(b"carbonwrap: --progress-from-output: stdout and stderr are two ")
    assert err.endswith(b"progress not read\r\nfrom the command\r\n")
    _, recs = progress_of(workdir)
    assert [r for r in recs if r["type"] == "warning" and "two different" in r["message"]]
