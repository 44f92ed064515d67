"""The clone's child between clone3 and exec (cgroupspawn.py): posix_spawn's attributes as
glibc's child applies them (posix/spawni.c), then exec along PATH as glibc's posix_spawnp
searches it (posix/execvpe.c); and its report to the parent, both ends of it.

The child is a copy of carbonwrap, every signal blocked, no handler of carbonwrap's in place
(CLONE_CLEAR_SIGHAND). Each line it runs costs its copied pages, so what can be worked out
before the clone is (`along_path`); it writes its own CPU before exec (`c<ns> `: the scheduler
has not charged a running task's time anywhere another process could read it yet) and, if
exec fails, the errno (`e<errno>`), on a close-on-exec pipe whose end the exec closes.
"""

from __future__ import annotations

import errno
import os
import time

from carbonwrap.lite import suppress

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    import signal as _signal
    from typing import Any, NoReturn
else:
    import _signal  # the signal module's C part (run/child.py says why)

# The errors after which glibc's PATH search tries the next directory (posix/execvpe.c).
SEARCH_ON = (errno.ENOENT, errno.ESTALE, errno.ENOTDIR, errno.ENODEV, errno.ETIMEDOUT)


def along_path(file: str) -> list[str]:
    """Where posix_spawnp would look for `file`: carbonwrap's own PATH ("" is the current
    directory) from the first place that may hold it on: those before plainly hold no such
    file (ENOENT, ENOTDIR: the search passes them by anyway). Looked at here, not by exec
    attempts in the child, where each one costs its copied pages; the last place stays if
    none is left, for exec's own errno."""
    # os.get_exec_path() would say the same, after importing warnings (~0.3 ms of start-up).
    path = os.environ.get("PATH", os.defpath)
    places = [os.path.join(d or ".", file) for d in path.split(os.pathsep)]
    for i, place in enumerate(places):
        try:
            os.stat(place)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:  # anything else is exec's to say
            pass
        return places[i:]
    return places[-1:]


def run(
    candidates: list[str],
    argv: list[str],
    env: dict[str, str],
    setsid: bool,
    actions: list[tuple[Any, ...]],
    defaults: list[int],
    mask: set[int],
    report_w: int,
) -> NoReturn:
    """In the child, between clone and exec, every signal blocked: posix_spawn's attributes in
    glibc's order (posix/spawni.c: dispositions, setsid, file actions, then the mask), then
    exec; on failure the errno to the parent and exit 127. Never returns, never raises (an
    exception would unwind into carbonwrap's own frames, copied into the child)."""
    code = errno.EINVAL
    try:
        for sig in defaults:
            _signal.signal(sig, _signal.SIG_DFL)
        if setsid:
            os.setsid()
        for action in actions:
            file_action(action)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        os.write(report_w, b"c%d " % time.process_time_ns())  # the copy's CPU so far
        code = exec_first(candidates, argv, env)
    except OSError as exc:
        code = exc.errno or errno.EINVAL
    except BaseException:  # nothing to say it with: the parent gets EINVAL
        pass
    finally:
        try:
            os.write(report_w, b"e%d" % code)
        finally:
            os._exit(127)


def file_action(action: tuple[Any, ...]) -> None:
    """One of posix_spawn's file actions as glibc's child does it (posix/spawni.c): an open
    closes its descriptor first; a dup2 onto itself clears close-on-exec; a close never fails.
    os.open makes close-on-exec descriptors (PEP 446): what the command gets is made
    inheritable."""
    kind = action[0]
    if kind == os.POSIX_SPAWN_OPEN:
        _, fd, path, flags, mode = action
        with suppress(OSError):
            os.close(fd)
        opened = os.open(path, flags, mode)
        if opened == fd:  # close-on-exec only if the flags ask for it, as glibc's open
            os.set_inheritable(fd, not flags & os.O_CLOEXEC)
        else:
            os.dup2(opened, fd)
            os.close(opened)
    elif kind == os.POSIX_SPAWN_DUP2:
        _, fd, new_fd = action
        if fd == new_fd:
            os.set_inheritable(fd, True)
        else:
            os.dup2(fd, new_fd)
    elif kind == os.POSIX_SPAWN_CLOSE:
        with suppress(OSError):
            os.close(action[1])
    else:
        raise OSError(errno.EINVAL, f"unknown file action {kind}")


def exec_first(candidates: list[str], argv: list[str], env: dict[str, str]) -> int:
    """exec the first candidate that can be; returns the errno glibc's search would leave: the
    first error that stops the search, else EACCES if any was not permitted, else the last."""
    got_eacces = False
    code = errno.ENOENT
    for path in candidates:
        try:
            os.execve(path, argv, env)
        except OSError as exc:
            code = exc.errno or errno.EINVAL
            if code == errno.EACCES:
                got_eacces = True
            elif code not in SEARCH_ON:
                return code
    return errno.EACCES if got_eacces else code


def parse_report(report: bytes) -> tuple[int, int | None]:
    """The child's report, read once CLONE_VFORK let the caller go: (its CPU before exec in
    ns, None) for an exec that succeeded, (ns, errno) for one that failed."""
    copy_ns, code = 0, None
    for word in report.split():
        if word.startswith(b"c"):
            copy_ns = int(word[1:])
        elif word.startswith(b"e"):
            code = int(word[1:])
    if not report:
        code = errno.EINVAL  # gone without a word: killed before it could exec
    return copy_ns, code
