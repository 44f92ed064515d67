"""Settings files that are not files: FIFOs, devices, huge files. One line and exit 125,
never a read that waits or runs on forever (real FIFOs, real devices behind a link)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from carbonwrap.errors import CarbonwrapError
from carbonwrap.settings.files import MAX_FILE_BYTES
from carbonwrap.settings.resolve import load_config

REPO = Path(__file__).resolve().parents[3]


def _places(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose user file is xdg/carbonwrap/config.toml, and a project directory."""
    (tmp_path / "xdg" / "carbonwrap").mkdir(parents=True)
    project = tmp_path / "project"
    project.mkdir()
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}, project


def _target(tmp_path: Path, where: str) -> Path:
    _, project = _places(tmp_path)
    return {
        "user": tmp_path / "xdg" / "carbonwrap" / "config.toml",
        "project": project / "carbonwrap.toml",
        "pyproject": project / "pyproject.toml",
    }[where]


def _load_in_time(env: dict[str, str], project: Path, fifo: Path) -> CarbonwrapError | None:
    """load_config on a thread; a read blocked on the FIFO past 5 s is set free (a writer opens
    and closes it) and fails the test."""
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_config(env, str(project))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # EOF for the blocked reader
        thread.join(5)
        pytest.fail(f"reading settings blocked on the FIFO {fifo}")
    assert outcome and (outcome[0] is None or isinstance(outcome[0], CarbonwrapError))
    return outcome[0]


@pytest.mark.parametrize("where", ["user", "project", "pyproject"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, where: str) -> None:
    path = _target(tmp_path, where)
    os.mkfifo(path)
    error = _load_in_time(
        {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}, tmp_path / "project", path
    )
    assert error is not None, "a FIFO was taken for no settings file"
    assert str(path) in error.message and "a FIFO, not a regular file" in error.message
    assert "replace it with a file or remove it" in error.message


def test_a_fifo_named_carbonwrap_toml_does_not_hand_over_to_a_file_further_up(
    tmp_path: Path,
) -> None:
    """Skipping it would quietly apply another project's settings."""
    env, project = _places(tmp_path)
    (tmp_path / "carbonwrap.toml").write_text("pue = 1.7\n")
    os.mkfifo(project / "carbonwrap.toml")
    error = _load_in_time(env, project, project / "carbonwrap.toml")
    assert error is not None and str(project / "carbonwrap.toml") in error.message


def _settings_in_a_child(env: dict[str, str], project: Path) -> subprocess.CompletedProcess[str]:
    """`carbonwrap config` as a real process, with 1 GiB of address space and 20 s: a read
    that runs on can only end in its own failure, not the machine's."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "carbonwrap", "config"],
        cwd=project,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=20,
        preexec_fn=limit,
    )


@pytest.mark.parametrize(
    ("device", "kind"),
    [
        ("/dev/zero", "a character device, not a regular file"),
        ("/dev/urandom", "a character device, not a regular file"),
        # A regular file by stat, with size 0, that reads on for hundreds of GiB.
        ("/proc/self/pagemap", "more than a settings file may hold (1 MiB)"),
    ],
)
@pytest.mark.parametrize("where", ["user", "project", "pyproject"])
def test_a_link_to_a_device_is_refused_without_reading_it(
    tmp_path: Path, where: str, device: str, kind: str
) -> None:
    path = _target(tmp_path, where)
    path.symlink_to(device)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}
    try:
        result = _settings_in_a_child(env, tmp_path / "project")
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} -> {device} ran on for 20 s")
    assert result.returncode == 125, result.stderr[-500:]
    assert result.stderr.startswith(f"carbonwrap: {path}") and result.stderr.count("\n") == 1
    assert kind in result.stderr, result.stderr
    if "device" in kind:
        assert f"(a link to {device})" in result.stderr
    else:  # its size says 0: what was read says more
        assert result.stderr == f"carbonwrap: {path}: {kind}; fix or remove it\n"


def test_a_huge_sparse_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = _target(tmp_path, "user")
    with open(path, "wb") as f:
        f.truncate(64 << 30)  # 64 GiB of nothing on disk
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}
    result = _settings_in_a_child(env, tmp_path / "project")
    assert result.returncode == 125, result.stderr[-500:]
    assert result.stderr == (
        f"carbonwrap: {path}: 65536 MiB, more than a settings file may hold (1 MiB); "
        "fix or remove it\n"
    )


@pytest.mark.parametrize("where", ["user", "project"])
def test_a_file_over_the_limit_is_refused_one_at_the_limit_read(tmp_path: Path, where: str) -> None:
    path = _target(tmp_path, where)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}
    line = b"# " + b"x" * 97 + b"\n"
    body = b"pue = 1.25\n" + line * ((MAX_FILE_BYTES - 11) // len(line))
    path.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    config = load_config(env, str(tmp_path / "project"))
    assert config.resolve({}, env)["pue"].value == 1.25  # exactly the limit: read
    path.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body) + 1))
    with pytest.raises(CarbonwrapError) as caught:
        load_config(env, str(tmp_path / "project"))
    assert caught.value.message == (
        f"{path}: 1.0 MiB, more than a settings file may hold (1 MiB); fix or remove it"
    )


@pytest.mark.parametrize("where", ["user", "project", "pyproject"])
def test_a_symlinked_settings_file_is_followed(tmp_path: Path, where: str) -> None:
    """Dotfiles kept in a repository: the link is read, its target's mode decides the note."""
    path = _target(tmp_path, where)
    real = tmp_path / "dotfiles" / "settings.toml"
    real.parent.mkdir()
    table = "[tool.carbonwrap]\n" if where == "pyproject" else ""
    secret = "[electricitymaps]\ntoken = 'x'\n" if where == "user" else ""
    real.write_text(f"{table}pue = 1.4\n{secret}")
    real.chmod(0o644)
    path.symlink_to(real)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}
    config = load_config(env, str(tmp_path / "project"))
    assert config.resolve({}, env)["pue"].value == 1.4
    if where == "user":
        assert config.notes == [f"{path} holds a secret and others can read it: chmod 600 {path}"]
        real.chmod(0o600)  # the link's own mode (0777) is not what others can read
        assert load_config(env, str(tmp_path / "project")).notes == []


def test_a_dangling_link_named_carbonwrap_toml_is_an_error_not_skipped(tmp_path: Path) -> None:
    env, project = _places(tmp_path)
    (tmp_path / "carbonwrap.toml").write_text("pue = 1.7\n")
    (project / "carbonwrap.toml").symlink_to(tmp_path / "moved.toml")
    with pytest.raises(CarbonwrapError) as caught:
        load_config(env, str(project))
    assert caught.value.message == (
        f"{project / 'carbonwrap.toml'}: cannot read it (No such file or directory); "
        "fix or remove it"
    )


def test_a_directory_named_carbonwrap_toml_is_still_passed_by(tmp_path: Path) -> None:
    env, project = _places(tmp_path)
    (tmp_path / "carbonwrap.toml").write_text("pue = 1.7\n")
    (project / "carbonwrap.toml").mkdir()
    (project / "pyproject.toml").mkdir()
    assert load_config(env, str(project)).resolve({}, env)["pue"].value == 1.7
