"""Output files where other users can write (carbonwrap often runs as root in a directory every
job shares): real symlinks planted by a real other user (`nobody`, by lchown), real modes, real
FIFOs; the victim is always a file of the test's own, never a system file."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import pytest
from conftest import NOBODY, call_as_nobody, is_root

from carbonwrap.errors import CarbonwrapError
from carbonwrap.outfiles import (
    UnsafePath,
    check_target,
    create_new,
    open_directory,
    replace_whole,
    umask,
)

pytestmark = pytest.mark.skipif(not is_root(), reason="needs root to give files to nobody")
PASSWD = "root:x:0:0:root:/root:/bin/bash\n"


def victim(tmp_path: Path) -> Path:
    """A file only root may write, standing in for /etc/passwd."""
    path = tmp_path / "passwd"
    path.write_text(PASSWD)
    path.chmod(0o644)
    return path


def nobodys_directory(tmp_path: Path, name: str = "home-nobody") -> Path:
    """A directory of another user's, where that user may plant anything."""
    path = tmp_path / name
    path.mkdir(mode=0o755)
    os.chown(path, NOBODY, NOBODY)
    return path


def plant(link: Path, target: Path | str, uid: int = NOBODY) -> Path:
    link.symlink_to(target)
    os.lchown(link, uid, uid)
    return link


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_symlink_another_user_planted_at_the_target_is_neither_followed_nor_replaced(
    tmp_path: Path,
) -> None:
    passwd = victim(tmp_path)
    link = plant(nobodys_directory(tmp_path) / "run.prom", passwd)
    with pytest.raises(UnsafePath, match="symlink owned by uid 65534"):
        replace_whole(str(link), b"carbonwrap_run_ended 1\n", 0o644)
    assert passwd.read_text() == PASSWD and link.is_symlink()
    assert names(link.parent) == ["run.prom"]  # no temporary left


def test_a_symlink_of_another_users_on_the_way_is_not_followed(tmp_path: Path) -> None:
    root_only = tmp_path / "root-only"
    root_only.mkdir(mode=0o700)
    shared = plant(nobodys_directory(tmp_path) / "out", root_only)
    with pytest.raises(UnsafePath, match=f"{shared} is a symlink owned by uid 65534"):
        replace_whole(str(shared / "report.html"), b"<p>", None)
    with pytest.raises(UnsafePath):  # also where a link leads to a link
        replace_whole(str(plant(tmp_path / "hop", shared, uid=0) / "report.html"), b"<p>", None)
    assert names(root_only) == []


def test_the_users_and_roots_own_symlinks_are_followed_on_the_way(tmp_path: Path) -> None:
    real = tmp_path / "a" / "b"
    real.mkdir(parents=True)
    (tmp_path / "to-a").symlink_to("a")  # root's own, relative, then `..` after it
    replace_whole(str(tmp_path / "to-a" / "b" / ".." / "b" / "r.json"), b"{}", 0o600)
    assert (real / "r.json").read_bytes() == b"{}"


def test_a_directory_everyone_may_write_without_the_sticky_bit_is_refused(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafePath, match="writable by everyone without the sticky bit"):
        replace_whole(str(shared / "run.prom"), b"x\n", 0o644)
    assert names(shared) == []
    with pytest.raises(CarbonwrapError, match=r"sticky bit.*chmod \+t"):
        check_target("--prometheus-textfile", str(shared / "run.prom"))
    shared.chmod(0o1777)  # as /tmp: a new file of its own is safe there
    replace_whole(str(shared / "run.prom"), b"x\n", 0o644)
    assert (shared / "run.prom").read_bytes() == b"x\n"


def test_devices_fifos_and_links_into_proc_are_never_replaced(tmp_path: Path) -> None:
    """Renaming over them would replace the node (as root: /dev/null, /dev/stdout) instead of
    writing to it; they are refused, before the run and at the write."""
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    stream = tmp_path / "stdout.json"
    stream.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, made here
    for target, says in ((fifo, "device, FIFO or socket"), (stream, "leads into /proc")):
        with pytest.raises(UnsafePath, match=says):
            replace_whole(str(target), b"<p>", None)
        with pytest.raises(CarbonwrapError, match=says):
            check_target("--html", str(target))
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and os.readlink(stream) == "/proc/self/fd/1"
    assert names(tmp_path) == ["pipe.html", "stdout.json"]


def test_a_kept_mode_is_the_users_own_files_permissions_only(tmp_path: Path) -> None:
    theirs = nobodys_directory(tmp_path) / "report.html"
    theirs.write_text("old")
    os.chown(theirs, NOBODY, NOBODY)
    theirs.chmod(0o666)  # their choice, not the user's: the page gets the default mode
    replace_whole(str(theirs), b"<p>", None)
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o666 & ~umask()
    assert theirs.stat().st_uid == 0
    ours = tmp_path / "ours.html"
    ours.write_text("old")
    ours.chmod(0o4750)  # a page is never set-id, whatever the file replaced was
    replace_whole(str(ours), b"<p>", None)
    assert stat.S_IMODE(ours.stat().st_mode) == 0o750


def test_an_exact_mode_ignores_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        replace_whole(str(tmp_path / "r.json"), b"{}", 0o640, exact=True)
        replace_whole(str(tmp_path / "run.prom"), b"x\n", 0o644)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "run.prom").stat().st_mode) == 0o600  # 0644 less the umask


def test_the_directory_checked_is_the_one_written_in(tmp_path: Path) -> None:
    """Swapping the path for another user's symlink after the check redirects nothing: the
    file is created relative to the checked directory's descriptor."""
    logs = tmp_path / "logs"
    logs.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fd = open_directory(str(logs))
    try:
        logs.rename(tmp_path / "logs.moved")
        plant(logs, elsewhere)
        os.close(create_new(fd, "run.jsonl", os.O_WRONLY, 0o600))
        with pytest.raises(FileExistsError):  # never an existing file
            create_new(fd, "run.jsonl", os.O_WRONLY, 0o600)
    finally:
        os.close(fd)
    assert names(elsewhere) == [] and names(tmp_path / "logs.moved") == ["run.jsonl"]


def test_check_target_and_the_write_agree(tmp_path: Path) -> None:
    """What the check before the run lets through, the write does (and what it refuses, the
    write refuses): one set of rules."""
    home = nobodys_directory(tmp_path)
    cases = {
        "new": home / "new.json",
        "regular": home / "old.json",
        "roots-link": plant(home / "roots.json", tmp_path / "target.json", uid=0),
        "dangling-link-of-nobody": plant(home / "dangling.json", tmp_path / "nowhere"),
        "link-of-nobody": plant(home / "theirs.json", victim(tmp_path)),
    }
    cases["regular"].write_text("{}")
    for case, path in cases.items():
        try:
            check_target("--json", str(path))
            checked = "ok"
        except CarbonwrapError as exc:
            checked = str(exc)
        try:
            replace_whole(str(path), b"{}", 0o600, exact=True)
            written = "ok"
        except UnsafePath as exc:
            written = str(exc.strerror)
        assert (checked == "ok") == (written == "ok"), case
        assert checked == "ok" or written in checked, case
        if written == "ok":
            assert path.lstat().st_mode & 0o777 == 0o600 and not path.is_symlink(), case
    assert (tmp_path / "passwd").read_text() == PASSWD


def test_a_trailing_slash_or_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    for path, says in (
        (tmp_path / "missing" / "r.json", "does not exist or is not writable"),
        (f"{tmp_path}/missing/", "is a directory"),
    ):
        with pytest.raises(CarbonwrapError, match=says) as caught:
            check_target("--json", str(path))
        assert "\n" not in str(caught.value)


def test_another_user_follows_their_own_and_roots_symlinks_but_not_a_third_users() -> None:
    with tempfile.TemporaryDirectory() as name:  # pytest's own is private to root
        top = Path(name)
        top.chmod(0o755)
        home = nobodys_directory(top)
        (home / "real").mkdir()
        os.chown(home / "real", NOBODY, NOBODY)
        plant(home / "mine", home / "real")
        plant(top / "roots", home / "real", uid=0)
        plant(home / "third", home / "real", uid=1234)

        def attempt() -> dict[str, str]:
            done = {}
            for link in ("home-nobody/mine", "roots", "home-nobody/third"):
                try:
                    replace_whole(str(top / link / "r.json"), b"{}", 0o600, exact=True)
                    done[link] = "ok"
                except UnsafePath as exc:
                    done[link] = str(exc.strerror)
            return done

        done = call_as_nobody(attempt)
        assert done["home-nobody/mine"] == "ok" and done["roots"] == "ok", json.dumps(done)
        assert "owned by uid 1234" in done["home-nobody/third"]
        assert (home / "real" / "r.json").stat().st_uid == NOBODY


def test_a_name_the_system_refuses_is_one_line_before_the_run(tmp_path: Path) -> None:
    """A file name over NAME_MAX (ENAMETOOLONG): every target option (--json, --html,
    --prometheus-textfile) says so before the command runs, never a traceback (found by the
    option fuzzer, tests/e2e/test_hostile_config_cli.py)."""
    with pytest.raises(CarbonwrapError, match=r"^--json .*: File name too long; name a file"):
        check_target("--json", str(tmp_path / ("x" * 300)))
