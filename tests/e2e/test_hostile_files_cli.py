"""carbonwrap run as root writing where other users can write (a directory every job shares, a
user's home): the --json report, the log and its directory, the .prom textfile and the HTML page
are never written through another user's symlink, never into a directory anyone may swap them
in, and directories carbonwrap makes are never writable by others. Real runs of the program;
the "other user" is `nobody` owning real symlinks and directories (lchown); the victim is a
file of the test's own standing in for /etc/passwd."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import NOBODY, cw_argv, cw_env, is_root, logs_in, run_cw

pytestmark = pytest.mark.skipif(not is_root(), reason="the case is carbonwrap run as root")
PASSWD = "root:x:0:0:root:/root:/bin/bash\n"


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(PASSWD)
    path.chmod(0o644)
    return path


def shared_directory(tmp_path: Path, kind: str) -> Path:
    """`home`: another user's own directory; `sticky`: one every job shares, as /tmp."""
    path = tmp_path / kind
    path.mkdir()
    if kind == "home":
        os.chown(path, NOBODY, NOBODY)
    else:
        path.chmod(0o1777)
    return path


def plant(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)
    return link


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _umask(mask: int) -> None:
    os.umask(mask)


@pytest.mark.parametrize("kind", ["home", "sticky"])
def test_json_through_a_symlink_another_user_planted_is_refused_before_the_run(
    tmp_path: Path, kind: str
) -> None:
    passwd = victim(tmp_path)
    link = plant(shared_directory(tmp_path, kind) / "report.json", passwd)
    result = run_cw("run", "--json", str(link), "--", "touch", "ran", cwd=tmp_path)
    assert result.returncode == 125
    line = one_line(result.stderr)
    assert line.startswith(f"carbonwrap: --json {link}: ") and "owned by uid 65534" in line
    assert passwd.read_text() == PASSWD and link.is_symlink()
    assert not (tmp_path / "ran").exists() and not logs_in(tmp_path)


def test_json_symlink_planted_during_the_run_is_not_followed(tmp_path: Path) -> None:
    """The check before the run saw nothing; the link comes while the command runs."""
    passwd = victim(tmp_path)
    target = shared_directory(tmp_path, "sticky") / "report.json"
    plant_it = (
        f"import os; os.symlink({str(passwd)!r}, {str(target)!r}); "
        f"os.lchown({str(target)!r}, {NOBODY}, {NOBODY}); raise SystemExit(3)"
    )
    result = run_cw("run", "-q", "--json", str(target), "--", sys.executable, "-c", plant_it,
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 3  # the command's status: the run happened
    line = one_line(result.stderr)
    assert line.startswith(f"carbonwrap: could not write --json {target}: ")
    assert "owned by uid 65534" in line and "the log " in line and "has everything" in line
    assert passwd.read_text() == PASSWD and target.is_symlink()
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary left


@pytest.mark.parametrize(
    ("env", "mask", "mode"),
    [({}, 0o022, 0o600), ({}, 0, 0o600), ({"CARBONWRAP_LOG_MODE": "0640"}, 0o077, 0o640)],
)
def test_json_file_has_the_logs_mode(
    tmp_path: Path, env: dict[str, str], mask: int, mode: int
) -> None:
    """It holds what the log holds (the command line, the host): 0600, or log_mode exactly."""
    (tmp_path / "r.json").write_text("old")
    (tmp_path / "r.json").chmod(0o644)  # replaced, not rewritten in place with its old mode
    result = subprocess.run(
        cw_argv("run", "-q", "--json", "r.json", "--", "true"), cwd=tmp_path, env=cw_env(**env),
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: _umask(mask),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode
    (log,) = logs_in(tmp_path)
    assert stat.S_IMODE(log.stat().st_mode) == mode
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 0


def test_json_to_stdout_is_unchanged(tmp_path: Path) -> None:
    result = run_cw("run", "-q", "--json", "-", "--", "true", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["exit_code"] == 0


def test_log_directories_made_under_umask_0_are_not_writable_by_others(tmp_path: Path) -> None:
    result = subprocess.run(
        cw_argv("run", "-q", "--log-dir", "a/b/c", "--", "true"), cwd=tmp_path, env=cw_env(),
        capture_output=True, text=True, timeout=60, preexec_fn=lambda: _umask(0),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for made in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE((tmp_path / made).stat().st_mode) == 0o755, made
    (log,) = logs_in(tmp_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_log_directory_that_is_another_users_symlink_is_refused(tmp_path: Path) -> None:
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)
    logs = plant(shared_directory(tmp_path, "home") / "logs", root_only)
    result = run_cw("run", "--log-dir", str(logs), "--", "touch", "ran", cwd=tmp_path)
    assert result.returncode == 125
    line = one_line(result.stderr)
    assert line.startswith(f"carbonwrap: cannot write the log in {logs}: ")
    assert "owned by uid 65534" in line and line.endswith("choose another directory with --log-dir")
    assert not (tmp_path / "ran").exists() and list(root_only.iterdir()) == []


def test_a_log_directory_anyone_may_write_is_refused_unless_sticky(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o777)
    result = run_cw("run", "--log-dir", "logs", "--", "touch", "ran", cwd=tmp_path)
    assert result.returncode == 125
    assert "writable by everyone without the sticky bit" in one_line(result.stderr)
    assert not (tmp_path / "ran").exists() and list(logs.iterdir()) == []
    logs.chmod(0o1777)  # as /tmp
    result = run_cw("run", "-q", "--log-dir", "logs", "--", "touch", "ran", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ran").exists() and len(logs_in(logs)) == 1


@pytest.mark.parametrize("case", ["planted-link", "anyone-writes"])
def test_prom_targets_others_could_swap_are_refused_before_the_run(
    tmp_path: Path, case: str
) -> None:
    passwd = victim(tmp_path)
    if case == "planted-link":
        prom = plant(shared_directory(tmp_path, "home") / "run.prom", passwd)
        says = "owned by uid 65534"
    else:
        textfiles = tmp_path / "textfiles"
        textfiles.mkdir()
        textfiles.chmod(0o777)
        prom, says = textfiles / "run.prom", "writable by everyone without the sticky bit"
    result = run_cw("run", "--prometheus-textfile", str(prom), "--", "touch", "ran",
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 125
    line = one_line(result.stderr)
    assert line.startswith(f"carbonwrap: --prometheus-textfile {prom}: ") and says in line
    assert passwd.read_text() == PASSWD and not (tmp_path / "ran").exists()


def test_prom_in_a_shared_sticky_directory_is_written_with_its_mode(tmp_path: Path) -> None:
    prom = shared_directory(tmp_path, "sticky") / "run.prom"
    result = run_cw("run", "-q", "--prometheus-textfile", str(prom), "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "carbonwrap_run_ended" in prom.read_text()
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644  # node_exporter reads it as another user


@pytest.fixture
def some_logs(tmp_path: Path) -> Path:
    result = run_cw("run", "-q", "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "logs"


def test_html_through_another_users_symlink_is_refused(tmp_path: Path, some_logs: Path) -> None:
    passwd = victim(tmp_path)
    passwd.chmod(0o640)
    page = plant(shared_directory(tmp_path, "home") / "report.html", passwd)
    result = run_cw("report", "--html", str(page), str(some_logs), cwd=tmp_path)
    assert result.returncode == 125
    assert "owned by uid 65534" in one_line(result.stderr)
    assert passwd.read_text() == PASSWD and page.is_symlink()


def test_html_never_replaces_a_fifo_or_a_link_into_proc(tmp_path: Path, some_logs: Path) -> None:
    """Renamed over, a FIFO a reader waits on (or, as root, /dev/null or /dev/stdout) would be
    replaced by a file; refused before anything is written."""
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    stream = tmp_path / "stdout.html"
    stream.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, made here
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    for target in (fifo, stream):
        result = run_cw("report", "--html", str(target), str(some_logs), cwd=tmp_path)
        assert result.returncode == 125
        assert one_line(result.stderr).startswith(f"carbonwrap: --html {target}: ")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and os.readlink(stream) == "/proc/self/fd/1"
    with open(fifo, "wb"):  # let the reader go
        pass
    reader.join(timeout=10)
    assert got == [b""]


@pytest.mark.parametrize(
    ("target", "stream"), [("/dev/stdout", "stdout"), ("/dev/stderr", "stderr")]
)
def test_json_to_a_standard_stream_by_name_is_written_as_the_stream(
    tmp_path: Path, target: str, stream: str
) -> None:
    """`--json /dev/stdout` is the shell's way to say `--json -`: written to the stream, the
    /dev link neither replaced nor refused."""
    result = run_cw("run", "-q", "--json", target, "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(getattr(result, stream))
    assert document["exit_code"] == 0
    assert os.path.islink("/dev/stdout") and os.path.islink("/dev/stderr")
