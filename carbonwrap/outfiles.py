"""Files carbonwrap writes for people and other programs (--json, --prometheus-textfile,
report --html) and the log's directory: each checked before anything runs (one line, exit 125:
a mistake found after hours of training is hours lost), and each written so that no other user
can steer the write, though carbonwrap often runs as root in directories every job shares.

The rules, the same before the run (`check_target`, `check_log_directory`) and at each write:
- A directory is reached one component at a time from a descriptor of the one before
  (`open_directory`): a symlink on the way is followed only if the user or root owns it (the
  kernel's fs.protected_symlinks does so in sticky directories only, and is often off), and
  what is checked is what is written in, not a path swapped meanwhile.
- A directory written in is not writable by everyone without the sticky bit: anyone could
  replace the file there. Group-writable is allowed (the group is the directory owner's choice);
  /tmp (sticky) is fine.
- A file is created new (O_CREAT|O_EXCL|O_NOFOLLOW, relative to the directory's descriptor) or
  replaced whole: a new file with an unpredictable name beside it, renamed over the target.
  Rename replaces a symlink at the target, never follows it; a symlink there owned by another
  user is refused all the same (someone planted it), and so are devices, FIFOs and sockets
  (renaming over /dev/null as root would replace the device), and a symlink into /proc such
  as /dev/stdout (renaming would replace the system's link, not write to the stream).
- Directories carbonwrap makes are 0755 less the umask: never writable by group or others.
"""

import errno
import os
import stat

from carbonwrap.errors import CarbonwrapError
from carbonwrap.lite import suppress

_STEP = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC  # no read permission needed, no device opened
_MAX_LINKS = 40  # the kernel's MAXSYMLINKS


class UnsafePath(OSError):
    """A path carbonwrap refuses to write through: `strerror` says what and why, `remedy` what to
    do (each caller says it its own way where it knows better)."""

    remedy = "name a file elsewhere"


def _refuse(why: str, remedy: str) -> UnsafePath:
    refused = UnsafePath(errno.EPERM, why)
    refused.remedy = remedy
    return refused


def _trusted(st: os.stat_result, shown: str) -> None:
    if st.st_uid not in (0, os.geteuid()):
        raise _refuse(
            f"{shown} is a symlink owned by uid {st.st_uid}, neither yours nor root's: "
            "carbonwrap does not follow or replace it",
            "remove it or name the real path",
        )


def open_directory(path: "str | os.PathLike[str]", create: bool = False) -> int:
    """An O_PATH descriptor of directory `path`, to create files in with the *at calls, reached
    by the rules above; with `create`, missing directories are made. The caller closes it.
    UnsafePath where a rule refuses, else the OSError of the component that failed."""
    path = os.fspath(path)
    fd = _walk(path, create)
    try:
        mode = os.fstat(fd).st_mode
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise _refuse(
                f"{os.path.abspath(path)} is writable by everyone without the sticky bit, "
                "so anyone could replace what carbonwrap writes there",
                "choose another directory (or chmod +t it)",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _walk(path: str, create: bool) -> int:
    """Resolve `path` as the kernel would (`..` physically, after the link it follows), but
    each symlink only if the user or root owns it: the link is opened itself (O_PATH), its
    owner read from that descriptor and its target from it, so it cannot be swapped between
    the check and the use."""
    shown = "/" if path.startswith("/") else "."
    fd = os.open(shown, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    pending = path.split("/")[::-1]
    links = made = 0
    try:
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            here = os.path.normpath(os.path.join(shown, name))
            try:
                step = os.open(name, _STEP, dir_fd=fd)
            except FileNotFoundError:
                if not create or made > 100:  # one removed as often as made: give up
                    raise
                made += 1
                # 0755 less the umask: the mode argument bounds group and others even where a
                # default ACL replaces the umask (acl(5)), so no umask makes it writable to them.
                with suppress(FileExistsError):  # made meanwhile: checked next
                    os.mkdir(name, 0o755, dir_fd=fd)
                pending.append(name)
                continue
            st = os.fstat(step)
            if stat.S_ISDIR(st.st_mode):
                os.close(fd)
                fd, shown = step, here
                continue
            try:
                if not stat.S_ISLNK(st.st_mode):
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), here)
                _trusted(st, here)
                target = os.readlink("", dir_fd=step)  # readlinkat(2) on the link itself
            finally:
                os.close(step)
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            if target.startswith("/"):
                os.close(fd)
                fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                shown = "/"
            pending.extend(target.split("/")[::-1])
        return fd
    except BaseException:
        os.close(fd)
        raise


def _split(path: str) -> tuple[str, str]:
    directory, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    return directory or ".", name


def _existing(dir_fd: int, name: str, shown: str) -> os.stat_result | None:
    """What `name` in `dir_fd` holds now, if carbonwrap may replace it: nothing, a regular file,
    or a symlink of the user's or root's (the link is replaced; the stat is of what it leads
    to, for the mode `replace_whole` may keep). Refuses everything else."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        _trusted(st, shown)
        if os.readlink(name, dir_fd=dir_fd).startswith("/proc/"):
            raise _refuse(  # /dev/stdout: renaming over it as root would replace the system's link
                f"{shown} leads into /proc (one of a process's open files), not to a file "
                "carbonwrap may replace",
                "name a regular file (--json and --html take - for stdout)",
            )
        with suppress(OSError):  # dangling or a loop: the link is replaced all the same
            st = os.stat(name, dir_fd=dir_fd)  # a stat opens nothing: no device acts on it
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        raise _refuse(
            f"{shown} is a device, FIFO or socket, not a file carbonwrap may replace",
            "name a regular file",
        )
    return st


def create_new(dir_fd: int, name: str, flags: int, mode: int) -> int:
    """A new file `name` in `dir_fd`, opened with `flags`: never an existing file, never through
    a symlink (O_EXCL, O_NOFOLLOW). Created 0600, then given `mode` exactly (the umask does not
    apply), so it is never more open than meant while it is written."""
    fd = os.open(
        name, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
    )
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        with suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        raise
    return fd


def check_target(option: str, path: str) -> None:
    """A file `option` creates or replaces, checked by the rules `replace_whole` writes by: not
    a directory, in an existing directory carbonwrap may write to."""
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        directory, name = _split(path)
    except IsADirectoryError:
        raise CarbonwrapError(f"{option} {path}: is a directory; name a file in it") from None
    try:
        dir_fd = open_directory(directory)
    except UnsafePath as exc:
        raise CarbonwrapError(f"{option} {path}: {exc.strerror}; {exc.remedy}") from None
    except OSError:
        dir_fd = -1
    try:
        if dir_fd < 0 or not os.access(".", os.W_OK | os.X_OK, dir_fd=dir_fd):
            raise CarbonwrapError(
                f"{option} {path}: directory {os.path.realpath(directory)} does not exist or is "
                "not writable; name a file in an existing directory"
            )
        _existing(dir_fd, name, path)
    except UnsafePath as exc:
        raise CarbonwrapError(f"{option} {path}: {exc.strerror}; {exc.remedy}") from None
    except OSError as exc:  # a name the system refuses (too long, a loop …): before the run
        reason = exc.strerror or str(exc)
        raise CarbonwrapError(
            f"{option} {path}: {reason}; name a file that can be created"
        ) from None
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


def check_log_directory(log_dir: str) -> None:
    """The log directory, or the nearest directory above it that exists (the log creates the
    rest), is one carbonwrap may write to, by the rules above."""
    existing = os.path.abspath(log_dir)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        # The log directory itself by every rule; an existing one above it only by how it is
        # reached: carbonwrap makes the rest below it, its own and 0755.
        whole = existing == os.path.abspath(log_dir)
        fd = open_directory(existing) if whole else _walk(existing, False)
    except UnsafePath as exc:
        raise CarbonwrapError(
            f"cannot write the log in {log_dir}: {exc.strerror}; choose another directory "
            "with --log-dir"
        ) from None
    except OSError:
        fd = -1
    try:
        if fd < 0 or not os.access(".", os.W_OK | os.X_OK, dir_fd=fd):
            raise CarbonwrapError(
                f"cannot write the log in {log_dir}: {existing} is not a writable directory; "
                "choose another directory with --log-dir"
            )
    finally:
        if fd >= 0:
            os.close(fd)


def replace_whole(path: str, data: bytes, mode: int | None, *, exact: bool = False) -> None:
    """Write `path` whole: a new file beside it with an unpredictable hidden name without its
    ending (a collector reading `*.prom` never reads it), renamed over it, so that a reader sees
    the old file or the new one, never part of one. All of it relative to the directory's
    descriptor, by the rules above.

    `mode`: the new file's permissions, less the umask unless `exact`; None keeps the replaced
    file's permission bits if the user owns it (a new file, or one of another user's, gets 0666
    less the umask, as `open` would give it). OSError on failure (UnsafePath where a rule
    refuses), with the temporary file removed."""
    directory, name = _split(path)
    dir_fd = open_directory(directory)
    try:
        existing = _existing(dir_fd, name, path)
        if mode is None:
            if existing is not None and existing.st_uid == os.geteuid():
                mode = existing.st_mode & 0o777  # a page is never set-id
            else:
                mode = 0o666 & ~umask()
        elif not exact:
            mode &= ~umask()
        temporary, fd = _temporary(dir_fd, name, mode)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def _temporary(dir_fd: int, name: str, mode: int) -> tuple[str, int]:
    """A new file `.NAME.<random>.tmp` (as mkstemp names them, which takes no directory fd)."""
    for _ in range(100):
        temporary = f".{name}.{os.urandom(6).hex()}.tmp"
        with suppress(FileExistsError):
            return temporary, create_new(dir_fd, temporary, os.O_WRONLY, mode)
    raise FileExistsError(errno.EEXIST, "no unused temporary name", name)


def umask() -> int:
    """The process's umask, read without changing it (os.umask sets it: another thread
    creating a file at that moment would get the wrong mode); Linux ≥ 4.7 says it in
    /proc/self/status."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask
