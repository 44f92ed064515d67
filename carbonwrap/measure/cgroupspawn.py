"""Start the command straight inside the run's cgroup v2 leaf: clone3 with CLONE_INTO_CGROUP.

Moving a process into a cgroup (a write to cgroup.procs) takes the kernel's
cgroup_threadgroup_rwsem for writing, and a writer that finds it idle first waits an RCU grace
period (rcu_sync_enter): 5-24 ms, mostly 9-14, measured on the development VM, more than the
rest of carbonwrap's start-up, before a kernel mounted with `favordynmods` takes a per-process
lock instead. A process born in the cgroup waits for nothing: clone3(2)'s CLONE_INTO_CGROUP
(Linux 5.7) puts the child there as it is forked, with the fork's read side of that lock only.
Python 3.11's posix_spawn and subprocess cannot ask for it (glibc's posix_spawnattr_setcgroup_np
came in 2.41), so the system call goes through `_ctypes`, ctypes' C part alone (~0.5 ms to load
here against ~2 ms for the package).

The child is a copy of carbonwrap (no CLONE_VM: memory of its own, as after fork), still
holding the GIL as the caller did, and runs a few lines of Python before exec: what
posix_spawn's attributes ask (default dispositions, `setsid`, the file actions, the signal
mask, in glibc's order), then exec along PATH as glibc's posix_spawnp searches it. No handler
of carbonwrap's runs in it: as glibc's posix_spawn does, every signal is blocked across the
clone (Python runs what is pending first), so none is half-handled when the copy is made, and
CLONE_CLEAR_SIGHAND resets the caught ones before the child unblocks any. A failure reaches the
caller as the errno on a close-on-exec pipe and is raised as os.posix_spawnp raises it; its
ValueErrors are raised before any fork. The copy's own CPU before exec (its lines, its copied
pages: ~0.3 ms here), by its own clock, is given to carbonwrap (`on_born`); the kernel's
teardown of the copy inside exec (~0.5 ms here, more for a larger carbonwrap) stays in the
command's count: no clock measures it from outside while the command runs on (a wall-time
estimate was off by milliseconds whenever the VM was busy). Used only while carbonwrap runs
no other thread: the child skips the after-fork handlers, and a lock another thread held at
the fork (malloc's) would stay held in it.
"""

from __future__ import annotations

import errno
import gc
import os
import sys

from carbonwrap.measure import clonechild

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any, NoReturn
else:
    import _signal  # the signal module's C part (run/child.py says why)

CLONE_VFORK = 0x4000  # the caller sleeps until the child's exec has replaced its memory
CLONE_CLEAR_SIGHAND = 0x100000000  # Linux 5.5: caught signals to SIG_DFL in the child
CLONE_INTO_CGROUP = 0x200000000  # Linux 5.7: `cgroup` names the child's cgroup v2 directory
# clone3's number where the kernel's unified system call table holds it (not MIPS's).
SYS_CLONE3 = 435
MACHINES = ("x86_64", "aarch64", "i686", "i386", "armv7l", "armv8l", "riscv64", "ppc64le",
            "ppc64", "s390x", "loongarch64")  # fmt: skip
# struct clone_args up to its `cgroup` field: 11 u64 (CLONE_ARGS_SIZE_VER2 = 88 bytes).
_FIELDS = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
           "tls", "set_tid", "set_tid_size", "cgroup")  # fmt: skip


class CloneUnavailable(Exception):
    """This kernel, libc or process cannot clone into a cgroup: the caller joins the cgroup
    and spawns as before. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clone_args(cgroup_fd: int) -> bytes:
    """struct clone_args for a fork-like child (SIGCHLD at its end, its own memory) born in
    the cgroup open as `cgroup_fd`, with no handler of ours. CLONE_VFORK: the call returns
    when the child's exec has replaced its memory (or it has exited), before the kernel tears
    the copy down (~0.5 ms here that carbonwrap need not wait for)."""
    values = dict.fromkeys(_FIELDS, 0)
    values["flags"] = CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND | CLONE_VFORK
    values["exit_signal"] = int(_signal.SIGCHLD)
    values["cgroup"] = cgroup_fd
    return b"".join(values[name].to_bytes(8, sys.byteorder) for name in _FIELDS)


def _load_clone3() -> Callable[[bytes], int]:
    """libc's syscall(2) for clone3, through _ctypes: returns the child's PID (0 in the child);
    OSError with the kernel's errno. The GIL stays held across the call (FUNCFLAG_PYTHONAPI):
    the child must own it as the caller did."""
    if os.uname().machine not in MACHINES:
        raise CloneUnavailable(f"clone3's number is not known on {os.uname().machine}")
    try:
        import _ctypes

        class Long(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "l"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _flags_ |= _ctypes.FUNCFLAG_PYTHONAPI
            _restype_ = Long

        libc = _ctypes.dlopen(None, os.RTLD_LAZY)  # type: ignore[arg-type]  # the program's
        function = Function(_ctypes.dlsym(libc, "syscall"))
    except (ImportError, OSError, AttributeError) as exc:
        raise CloneUnavailable(f"no libc syscall() to call: {exc}") from exc
    number, get_errno = Long(SYS_CLONE3), _ctypes.get_errno

    def clone3(args: bytes) -> int:
        pid = int(function(number, args, Long(len(args))))
        if pid < 0:
            code = get_errno()
            raise OSError(code, os.strerror(code))
        return pid

    return clone3


_clone3: list[Callable[[bytes], int]] = []  # loaded once, at the first spawn


def _clone3_syscall() -> Callable[[bytes], int]:
    if not _clone3:
        _clone3.append(_load_clone3())
    return _clone3[0]


def clone3_present() -> bool:
    """Whether clone3 can be called here: asked with an empty struct, a kernel that has it
    answers EINVAL before doing anything; one without it (before 5.3), or a seccomp filter
    (containers' default profiles), ENOSYS or EPERM. Loads _ctypes, which the spawn needs."""
    try:
        clone3 = _clone3_syscall()
    except CloneUnavailable:
        return False
    try:
        clone3(b"")
    except OSError as exc:
        return exc.errno == errno.EINVAL
    raise AssertionError("clone3 with an empty struct did not fail")  # nothing was forked


class IntoCgroup:
    """os.posix_spawnp and os.posix_spawn (the attributes run/child.py gives them: setsigmask,
    setsigdef, file_actions, setsid) for a child born in the cgroup v2 directory `path`; OSError
    and ValueError as os's for a command that cannot be executed. `on_born(cpu_s)` gets the CPU
    seconds the child spent as carbonwrap's copy, before its exec. Where the clone cannot be
    done here (CloneUnavailable: any error of clone3's, another thread running), `refused`
    says why, `on_refused` is called once (carbonwrap joins the cgroup) and os's own
    functions spawn. `clone3`: the system call (tests give a fake)."""

    def __init__(
        self,
        path: str,
        on_refused: Callable[[], None],
        on_born: Callable[[float], None],
        clone3: Callable[[bytes], int] | None = None,
    ) -> None:
        self.path = path
        self.refused: str | None = None
        self._on_refused = on_refused
        self._on_born = on_born
        self._clone3 = clone3

    def posix_spawnp(
        self, file: str, argv: Sequence[str], env: Mapping[str, str], **attributes: Any
    ) -> int:
        return self._spawn_or(os.posix_spawnp, file, argv, env, attributes)

    def posix_spawn(
        self, path: str, argv: Sequence[str], env: Mapping[str, str], **attributes: Any
    ) -> int:
        return self._spawn_or(os.posix_spawn, path, argv, env, attributes)

    def _spawn_or(
        self,
        spawn: Callable[..., int],
        file: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        attributes: dict[str, Any],
    ) -> int:
        """Cloned into the cgroup, `file` looked for along PATH as `spawn` (os's function of
        that name) would; `spawn` itself once the clone is refused."""
        if self.refused is None:
            _check(file, argv, env)
            searched = spawn is os.posix_spawnp and "/" not in file
            candidates = clonechild.along_path(file) if searched else [file]
            try:
                return self._spawn(candidates, argv, env, **attributes)
            except CloneUnavailable as exc:
                self.refuse(exc.reason)
        return spawn(file, list(argv), env, **attributes)

    def refuse(self, reason: str) -> None:
        """From now on os's functions spawn, carbonwrap having joined the cgroup (`on_refused`):
        what a refused clone does; also for a caller that starts processes some other way
        (subprocess)."""
        if self.refused is None:
            self._on_refused()
            self.refused = reason

    def _spawn(
        self,
        candidates: list[str],
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        setsigmask: Iterable[int] | None = None,
        setsigdef: Iterable[int] = (),
        file_actions: Sequence[tuple[Any, ...]] | None = None,
        setsid: bool = False,
    ) -> int:
        clone3 = self._ready()
        actions = list(file_actions or ())
        # CLONE_CLEAR_SIGHAND resets the caught ones: only the ignored are left to reset (each
        # call in the child costs its copied pages: ~45 calls were ~0.2 ms of every spawn).
        defaults = [sig for sig in setsigdef if _signal.getsignal(sig) == _signal.SIG_IGN]
        argv, env = list(argv), dict(env)  # everything the child needs, made before the clone
        mask = None if setsigmask is None else set(setsigmask)
        opened: list[int] = []
        try:
            try:
                cgroup_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                opened.append(cgroup_fd)
                report = _report_pipe(actions, opened)
            except OSError as exc:
                raise CloneUnavailable(f"cannot open {self.path} and a pipe: {exc}") from exc
            report_w = report[1]

            def child(before: set[int]) -> NoReturn:
                mine = before if mask is None else mask
                clonechild.run(candidates, argv, env, setsid, actions, defaults, mine, report_w)

            pid, code = self._clone(clone3, cgroup_fd, report[0], child)
        finally:
            for fd in opened:
                os.close(fd)
        if code is None:
            return pid
        os.waitpid(pid, 0)  # it exited at once (127): its status is nobody's
        raise OSError(code, os.strerror(code))

    def _ready(self) -> Callable[[bytes], int]:
        """clone3, where carbonwrap runs no other thread (the kernel's count, threads that C
        code started included: procfs links /proc/self/task 2 + threads)."""
        try:
            threads = os.stat("/proc/self/task").st_nlink - 2
        except OSError as exc:
            raise CloneUnavailable(f"cannot count carbonwrap's threads: {exc.strerror}") from exc
        if threads != 1:
            raise CloneUnavailable(THREADS_RUNNING)
        return self._clone3 or _clone3_syscall()

    def _clone(
        self,
        clone3: Callable[[bytes], int],
        cgroup_fd: int,
        report_r: int,
        child: Callable[[set[int]], NoReturn],
    ) -> tuple[int, int | None]:
        """The child cloned (`child` runs in it, with the signal mask from before the clone)
        and its report read: (PID, None) once it has exec'd, its copy's CPU given to
        `on_born`; (PID, errno) when it could not.

        glibc's posix_spawn blocks every signal across its clone, as here: Python runs the
        handlers pending now, and no C handler runs in between to leave one pending in the
        copy. Unblocked again once the child has exec'd or failed to."""
        before = _signal.pthread_sigmask(_signal.SIG_BLOCK, ())
        collecting = gc.isenabled()  # no collection, no finalizer, in the child
        try:
            _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
            gc.disable()
            try:
                pid = clone3(clone_args(cgroup_fd))
            except OSError as exc:
                raise CloneUnavailable(f"clone3: {exc.strerror}") from exc
            if pid == 0:
                child(before)
            # Back once the child's exec has replaced its memory, or it has exited: all it
            # will say is said (its end closes later, in exec, after the copy is torn down).
            try:
                said = os.read(report_r, 128)
            except BlockingIOError:
                said = b""
            copy_ns, code = clonechild.parse_report(said)
            if code is None:
                self._on_born(copy_ns / 1e9)
            return pid, code
        finally:
            if collecting:
                gc.enable()
            _signal.pthread_sigmask(_signal.SIG_SETMASK, before)


THREADS_RUNNING = "carbonwrap runs other threads"


def _check(file: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
    """The ValueErrors os.posix_spawn raises before it forks, raised here before the clone."""
    if not argv:
        raise ValueError("posix_spawn: argv must not be empty")
    if not argv[0]:
        raise ValueError("posix_spawn: argv first element cannot be empty")
    if any("\0" in word for word in (file, *argv)):
        raise ValueError("embedded null byte")
    for key, value in env.items():
        if not key or "=" in key:
            raise ValueError("illegal environment variable name")
        if "\0" in key or "\0" in value:
            raise ValueError("embedded null byte")


def _report_pipe(actions: list[tuple[Any, ...]], opened: list[int]) -> tuple[int, int]:
    """A close-on-exec, non-blocking pipe for the child's report (clonechild.py), its write
    end on a descriptor no file action touches: one opened or duplicated onto it would take
    the report away, and a failed exec would read as a started command. Both ends are in
    `opened` for the caller to close, as is whatever was open when something failed."""
    touched = {a[2] if a[0] == os.POSIX_SPAWN_DUP2 else a[1] for a in actions}
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    opened += (read_end, write_end)
    spares = []
    while write_end in touched:  # held until the end: the next number is a new one
        spares.append(write_end)
        write_end = os.dup(write_end)  # also close-on-exec
        opened.append(write_end)
    for fd in spares:
        opened.remove(fd)
        os.close(fd)
    return read_end, write_end
