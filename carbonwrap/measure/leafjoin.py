"""The run's cgroup leaf made, and carbonwrap moving into it, on nothing but `os`, `time` and
`_thread`: where the wrapper's own cgroup is, the new leaf below it, and the join on a thread.

Moving a process into a cgroup waits for an RCU grace period when no migration happened lately
(cgroup_threadgroup_rwsem: 5-30 ms on the development VM), as long as all the rest of start-up.
A v2 leaf is joined only where the command cannot be born in it (cgroupspawn.py) or joins are
quick (`favordynmods`); such a join entry.py starts first thing (`open_early`), before the
settings, the CLI and the rest of the accounting are loaded (~2 ms sooner than CgroupLeaf
could: bench/results); `CgroupLeaf` (cgroup.py: reading, the spawn's placement, removal) takes
the leaf over (`take_early`).
"""

from __future__ import annotations

import _thread
import errno
import os
import time

from carbonwrap.sensors import SensorUnavailable

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from _thread import LockType

LEAF_PREFIX = "carbonwrap-"
# Between the early join and the spawn, how often carbonwrap writes itself into the leaf again
# (LeafJoin._keep_warm: the leave after the spawn then finds the kernel's migration state
# fast), and for how long at most. Grace periods here last 5-30 ms: each write keeps the state
# fast for about one more; each wake costs ~0.1 ms of start-up (the GIL taken from the imports).
KEEP_WARM_EVERY_S = 0.004
KEEP_WARM_FOR_S = 2.0


def read_text(path: str) -> str:
    """The whole file. os.open and os.read, not open(): read once after a 0.1 s sleep (cold, as
    the sampler reads), a leaf's cgroup.procs took ~290 µs through a text file object on the
    development VM and ~120 µs so (bench/results/2026-12-07-sampling-interval-0.1.md)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def read_fd(fd: int) -> str:
    """The whole of the file open as `fd`, from its start (pread: its offset stays)."""
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8")


class Mount(tuple[str, str, str]):
    """A cgroup filesystem mount: where it is, which cgroup path its root shows, and its super
    options ("rw,nsdelegate"). A named triple written out (lite.NamedTuple's module is not
    loaded this early)."""

    __slots__ = ()

    def __new__(cls, mount_point: str, root: str, options: str = "") -> Mount:
        return tuple.__new__(cls, (mount_point, root, options))

    @property
    def mount_point(self) -> str:
        return self[0]

    @property
    def root(self) -> str:
        return self[1]

    @property
    def options(self) -> str:
        return self[2]

    def __repr__(self) -> str:
        return f"Mount(mount_point={self[0]!r}, root={self[1]!r}, options={self[2]!r})"


def parse_mountinfo(text: str, fstype: str, option: str | None = None) -> Mount | None:
    """First mount of `fstype` (whose super options include `option`, if given)."""
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] != fstype:
            continue
        if option is not None and option not in tail[2].split(","):
            continue
        return Mount(_unescape(fields[4]), _unescape(fields[3]), tail[2])
    return None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 …)."""
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def parse_proc_cgroup(text: str, controller: str | None) -> str | None:
    """A process's cgroup path for a v1 controller, or its v2 path when `controller` is None."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if controller is None and hierarchy == "0" and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def own_cgroup_dir(version: int, proc_root: str = "/proc") -> str:
    """The directory of the wrapper's own cgroup in the v2 (or v1 cpuacct) hierarchy."""
    return own_cgroup(version, proc_root)[0]


def own_cgroup(version: int, proc_root: str = "/proc") -> tuple[str, str, str]:
    """`own_cgroup_dir`, the directory of the hierarchy's root cgroup as mounted (the real
    root, or a cgroup namespace's: `sensors/rootcpu.py` tells them apart; "" where the mount
    shows a subtree only), and the mount's super options."""
    controller = None if version == 2 else "cpuacct"
    fstype = "cgroup2" if version == 2 else "cgroup"
    try:
        mountinfo = read_text(os.path.join(proc_root, "self", "mountinfo"))
        proc_cgroup = read_text(os.path.join(proc_root, "self", "cgroup"))
    except OSError as exc:
        raise SensorUnavailable(f"cannot read /proc/self cgroup information: {exc}") from exc
    mount = parse_mountinfo(mountinfo, fstype, controller)
    path = parse_proc_cgroup(proc_cgroup, controller)
    if mount is None or path is None:
        what = "cgroup v2" if version == 2 else "cgroup v1 cpuacct"
        raise SensorUnavailable(f"no {what} hierarchy mounted")
    # With a cgroup namespace or a bind mount the mount's root is a prefix of our path.
    root = mount.root.rstrip("/")
    if root and path.startswith(root):
        path = path[len(root) :]
    top = mount.mount_point if not root else ""  # a bind mount of a subtree shows no root
    return os.path.join(mount.mount_point, path.lstrip("/")), top, mount.options


def joins_quick(version: int, options: str) -> bool:
    """Whether moving a process into a cgroup of this hierarchy is quick, by its mount's
    super options: v1, or v2 mounted `favordynmods` (the kernel keeps its migration lock
    ready: no grace period to wait)."""
    return version == 1 or "favordynmods" in options.split(",")


STALE_AFTER_S = 60.0


def remove_stale_leaves(parent: str, now_s: float | None = None) -> list[str]:
    """Remove leaves that SIGKILLed runs left behind: named carbonwrap-*, empty, and older than
    a minute (a live run's leaf is empty only between its creation and the spawn, milliseconds).
    The kernel refuses to remove a cgroup that still has processes, so this cannot race one."""
    now_s = time.time() if now_s is None else now_s
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(LEAF_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if now_s - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S:
                continue
            groups = cgroup_dirs(entry.path)  # with the groups a killed run's tree made below
            if any(read_text(os.path.join(g, "cgroup.procs")).strip() for g in groups):
                continue
            for group in reversed(groups):
                os.rmdir(group)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def cgroup_dirs(top: str) -> list[str]:
    """`top` and every cgroup below it, parents before children."""
    found = [top]
    for group in found:  # grows as it goes: breadth first
        try:
            # A directory's link count is 2 + its subdirectories (kernfs, like most file
            # systems; btrfs says 1): 2 means none, seen without listing it (half the cost).
            if os.stat(group).st_nlink == 2:
                continue
            with os.scandir(group) as entries:
                found.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return found


def remove_dir(path: str) -> None:
    """Remove a cgroup; a process that has just left or exited may hold it for a moment
    (EBUSY): retried for up to 0.1 s."""
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
            time.sleep(0.002)


class LeafJoin:
    """A fresh cgroup leaf below the wrapper's own cgroup, its files open (`fds`: its
    cgroup.procs read-write, the parent's cgroup.procs, its CPU count), and carbonwrap's moves
    into it (`start`, `joined`) and out again (`leave`). SensorUnavailable if it cannot be had.
    """

    def __init__(
        self,
        version: int,
        name: str,
        parent: str | os.PathLike[str] | None = None,
        *,
        quick_joins: bool | None = None,
    ) -> None:
        self.version = version
        # The v2 hierarchy's root directory ("" where unknown): the root cgroup's cpu.stat has
        # the machine's busy time (`sensors/rootcpu.py`), cheaper to read than /proc/stat.
        self.hierarchy_root = ""
        # Whether moving a process in is quick here (`joins_quick`: from the mount of our own
        # cgroup, or as given with `parent`). Elsewhere the command is born in the v2 leaf
        # (cgroupspawn.py: `clones`) and nothing joins early where it can be.
        if parent is None:
            self.parent, root, options = own_cgroup(version)
            self.hierarchy_root = root if version == 2 else ""
        else:
            self.parent, options = os.fspath(parent), ""
        self.quick_joins = joins_quick(version, options) if quick_joins is None else quick_joins
        self.clones = version == 2 and not self.quick_joins
        self.path = os.path.join(self.parent, name)
        # Before the new leaf (stale ones may be what keeps it from being made) and before the
        # join (a removal waits for the cgroup lock the join holds through its grace period).
        self.removed_stale = remove_stale_leaves(self.parent)
        try:
            os.mkdir(self.path)
        except OSError as exc:
            raise SensorUnavailable(f"cannot create {self.path}: {exc.strerror}") from exc
        usage = "cpu.stat" if version == 2 else "cpuacct.usage"
        opened: list[int] = []
        try:
            for path, flags in (
                (os.path.join(self.path, "cgroup.procs"), os.O_RDWR),  # read: `pids`
                (os.path.join(self.parent, "cgroup.procs"), os.O_WRONLY),
                (os.path.join(self.path, usage), os.O_RDONLY),
            ):
                opened.append(os.open(path, flags | os.O_CLOEXEC))
        except OSError as exc:
            for fd in opened:
                os.close(fd)
            remove_dir(self.path)
            raise SensorUnavailable(f"cannot use {self.path}: {exc.strerror}") from exc
        self.fds = (opened[0], opened[1], opened[2])
        self.inside = False
        self.error: OSError | None = None
        self._thread_done: LockType | None = None  # held while the join's thread runs
        self._spawning = _thread.allocate_lock()  # held while that thread keeps it warm
        self._warm_stopped = False

    def start(self) -> None:
        """Start moving carbonwrap into the leaf now, on a thread, so that the kernel's wait
        overlaps the rest of start-up. The first migration of a process waits for an RCU grace
        period (cgroup_threadgroup_rwsem): 6–30 ms on the development VM, most of the start-up
        budget if waited for in line. `joined` waits for it.

        Returns once the thread is about to write: a new thread needs the GIL to start, and
        the main thread, busy importing, would hold it for up to the switch interval (5 ms),
        so the kernel's wait would begin that much later."""
        writing = _thread.allocate_lock()
        writing.acquire()
        self._spawning.acquire()  # released when the spawn comes, or the leaf is given up
        done = self._thread_done = _thread.allocate_lock()
        done.acquire()

        def join() -> None:
            try:
                self._join(writing)
            finally:
                done.release()

        try:
            _thread.start_new_thread(join, ())
        except BaseException:  # no thread (RuntimeError: can't start new thread)
            self._thread_done = None
            self._spawning.release()
            raise
        writing.acquire()  # released by the thread just before its write

    def will_join(self) -> bool:
        """Whether carbonwrap will join the leaf for the spawn, and so should start now: v1, a
        v2 mounted favordynmods, or a v2 where clone3 cannot be called at all (a seccomp
        filter, a kernel before 5.3: `cgroupspawn.clone3_present`), whose join then overlaps
        start-up as before. A clone refused only at the spawn (another thread running, a
        kernel before 5.7) joins there, in line."""
        if self.clones:
            from carbonwrap.measure.cgroupspawn import clone3_present

            self.clones = clone3_present()
        return not self.clones

    @property
    def started(self) -> bool:
        """`start` was called: the early join is under way or done."""
        return self._thread_done is not None

    @property
    def joining(self) -> bool:
        """The early join still waits for the kernel (`joined` will wait for it)."""
        return self._thread_done is not None and not self.inside and self.error is None

    def _join(self, writing: LockType | None = None) -> None:
        if writing is not None:
            writing.release()
        try:
            os.write(self.fds[0], b"0")  # "0" = the writing process, all its threads
            self.inside = True
        except OSError as exc:
            self.error = exc
            return
        if writing is not None:
            self._keep_warm()

    def _keep_warm(self) -> None:
        """Until the spawn, write ourselves into the leaf again every KEEP_WARM_EVERY_S.

        Leaving after the spawn is a migration too, and waits for a grace period of its own
        (up to 30 ms here) unless another migration ended less than about one grace period
        before: the kernel's rcu_sync stays in its fast state that long. A join that ended
        early (it is quick while another run's migrations keep that state) would otherwise
        leave the spawn that second wait. Writing a process into the cgroup it is in moves
        nothing; each write keeps the state fast. At most KEEP_WARM_FOR_S."""
        deadline = time.monotonic() + KEEP_WARM_FOR_S
        while not self._spawning.acquire(True, KEEP_WARM_EVERY_S):
            if time.monotonic() > deadline:
                return
            try:
                os.write(self.fds[0], b"0")
            except OSError:
                return

    def stop(self) -> None:
        """The join's thread ended: its keeping warm stopped, waited for (the spawn is due, or
        the leaf is given up)."""
        if self._thread_done is None:
            return
        if not self._warm_stopped:
            self._warm_stopped = True
            self._spawning.release()
        self._thread_done.acquire()
        self._thread_done.release()

    def joined(self) -> None:
        """In the leaf, having waited for an early join or joined now; SensorUnavailable if not."""
        if self._thread_done is None:
            self._join()
        else:
            self.stop()
        if self.error is not None:
            exc = self.error
            raise SensorUnavailable(f"cannot join {self.path}: {exc.strerror}") from exc

    def leave(self) -> None:
        if self.inside:
            os.write(self.fds[1], b"0")
            self.inside = False

    def close(self) -> None:
        """A leaf nobody took over (its join could not start): out of it, closed, removed."""
        self.stop()
        try:  # noqa: SIM105 (contextlib is not loaded this early)
            self.leave()
        except OSError:
            pass
        for fd in self.fds:
            os.close(fd)
        remove_dir(self.path)


# `carbonwrap run` without --cpu-accounting makes its leaf and starts the join first thing
# (entry.py), before the CLI is even imported; the accounting takes it up
# (`accounting.take_early`): the join's wait then overlaps all of start-up.
_early: list[tuple[str, LeafJoin, list[str]]] = []


def new_run_id() -> str:
    """12 random hex digits: name the run's log and cgroup leaf; the child gets it as
    CARBONWRAP_RUN_ID."""
    return os.urandom(6).hex()


def first_leaf(name: str, notes: list[str]) -> LeafJoin | None:
    """The auto accounting's leaf `name`: cgroup v2, else v1, each that cannot be had said in
    `notes`; None if neither can."""
    for version in (2, 1):
        try:
            return LeafJoin(version, name)
        except SensorUnavailable as exc:
            notes.append(f"cgroup{version} unavailable: {exc.reason}")
    return None


def open_early() -> None:
    """A leaf under a new run id, as the auto accounting makes it (`first_leaf`), for
    `take_early`: its join started where carbonwrap will join it (`LeafJoin.will_join`;
    elsewhere the command is born in the v2 leaf, cgroupspawn.py); nothing if no leaf can be
    had here (the run opens its accounting again and says why)."""
    run_id = new_run_id()
    notes: list[str] = []
    try:
        leaf = first_leaf(f"{LEAF_PREFIX}{run_id}", notes)
    except Exception:
        return
    if leaf is None:
        return
    if leaf.will_join():
        try:
            leaf.start()
        except Exception:
            leaf.close()
            return
    _early.append((run_id, leaf, notes))


def take_early() -> tuple[str, LeafJoin, list[str]] | None:
    """The run id, leaf and notes `open_early` made, once; None if it did not."""
    return _early.pop() if _early else None


def give_up_early() -> None:
    """What no run took up (the line was help, or an error): left and removed."""
    while _early:
        _early.pop()[1].close()
