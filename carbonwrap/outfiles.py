"""Files carbonwrap writes for people and other programs (--json, --prometheus-textfile,
report --html) and the log directory: each checked before anything runs (one line, exit 125:
a mistake found after hours of training is hours lost), and a file replaced whole."""

import contextlib
import os

from carbonwrap.errors import CarbonwrapError


def writable_directory(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def check_target(option: str, path: str) -> None:
    """A file `option` creates or replaces: not a directory, in an existing directory carbonwrap
    may write to."""
    if os.path.isdir(path):
        raise CarbonwrapError(f"{option} {path}: is a directory; name a file in it")
    directory = os.path.dirname(os.path.realpath(path))
    if not writable_directory(directory):
        raise CarbonwrapError(
            f"{option} {path}: directory {directory} does not exist or is not writable; "
            "name a file in an existing directory"
        )


def check_log_directory(log_dir: str) -> None:
    """The log directory, or the nearest directory above it that exists (the log creates the
    rest), is one carbonwrap may write to."""
    existing = os.path.abspath(log_dir)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not writable_directory(existing):
        raise CarbonwrapError(
            f"cannot write the log in {log_dir}: {existing} is not a writable directory; "
            "choose another directory with --log-dir"
        )


def replace_whole(path: str, data: bytes, mode: int | None) -> None:
    """Write `path` whole: a new temporary file beside it (a hidden name without its ending, so
    a collector reading `*.prom` never reads it), renamed over it, so that a reader sees the old
    file or the new one, never part of one. A symlink at `path` is replaced, not followed.

    `mode`: the new file's permissions, less the umask; None keeps the replaced file's mode
    (a new file gets 0666 less the umask, as `open` would give it). OSError on failure, with
    the temporary file removed."""
    import tempfile

    directory, name = os.path.split(os.path.abspath(path))
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~umask()
    else:
        mode &= ~umask()
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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
