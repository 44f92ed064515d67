"""The run's own cgroup leaf: create it, let the child join it before exec, read it, remove it.

cgroup v2: `cpu.stat` `usage_usec` exists in every cgroup, with or without the cpu controller
(https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files). cgroup v1: the
`cpuacct` controller's `cpuacct.usage` in nanoseconds
(https://docs.kernel.org/admin-guide/cgroup-v1/cpuacct.html). The leaf is created below the
wrapper's own cgroup, which v2's "no internal processes" rule guarantees can hold a child group.

Both counts are hierarchical: a cgroup below the leaf (a nested run's leaf, one a job made for a
part of itself) is counted in the leaf's, also after it is removed. Its processes are the tree's
too: listed, stopped by a budget, moved out at the end, and the groups removed bottom-up.
"""

from __future__ import annotations

import errno
import os
import time

from carbonwrap.lite import Lock, NamedTuple, Thread, suppress
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.pidstat import process_stat

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from _thread import LockType

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# How often readings look for processes that left the leaf (at --interval 0.1 the walk of the
# leaf's groups and processes every reading was a third of the sampler's CPU).
DEPARTURES_EVERY_S = 0.9
# Between the early join and the spawn, how often carbonwrap writes itself into the leaf again
# (CgroupLeaf._keep_warm: the leave after the spawn then finds the kernel's migration state
# fast), and for how long at most. Grace periods here last 5-30 ms: each write keeps the state
# fast for about one more; each wake costs ~0.1 ms of start-up (the GIL taken from the imports).
KEEP_WARM_EVERY_S = 0.004
KEEP_WARM_FOR_S = 2.0
# How old a listing of the leaf's processes the memory figure and the departures walk may share.
LISTING_SHARED_S = 0.05


def _read(path: str) -> str:
    """The whole file. os.open and os.read, not open(): read once after a 0.1 s sleep (cold, as
    the sampler reads), a leaf's cgroup.procs took ~290 µs through a text file object on the
    development VM and ~120 µs so (bench/results/2026-12-07-sampling-interval-0.1.md)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int) -> str:
    """The whole of the file open as `fd`, from its start (pread: its offset stays)."""
    chunks: list[bytes] = []
    offset = 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8")


class Mount(NamedTuple):
    """A cgroup filesystem mount: where it is and which cgroup path its root shows."""

    mount_point: str
    root: str


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
        return Mount(_unescape(fields[4]), _unescape(fields[3]))
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


def own_cgroup(version: int, proc_root: str = "/proc") -> tuple[str, str]:
    """`own_cgroup_dir`, and the directory of the hierarchy's root cgroup as mounted (the real
    root, or a cgroup namespace's: `sensors/rootcpu.py` tells them apart); "" where the mount
    shows a subtree only."""
    controller = None if version == 2 else "cpuacct"
    fstype = "cgroup2" if version == 2 else "cgroup"
    try:
        mountinfo = _read(os.path.join(proc_root, "self", "mountinfo"))
        proc_cgroup = _read(os.path.join(proc_root, "self", "cgroup"))
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
    return os.path.join(mount.mount_point, path.lstrip("/")), top


LEAF_PREFIX = "carbonwrap-"
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
        with suppress(OSError):
            if now_s - entry.stat(follow_symlinks=False).st_mtime < STALE_AFTER_S:
                continue
            groups = cgroup_dirs(entry.path)  # with the groups a killed run's tree made below
            if any(_read(os.path.join(g, "cgroup.procs")).strip() for g in groups):
                continue
            for group in reversed(groups):
                os.rmdir(group)
            removed.append(entry.name)
    return removed


def cgroup_dirs(top: str) -> list[str]:
    """`top` and every cgroup below it, parents before children."""
    found = [top]
    for group in found:  # grows as it goes: breadth first
        with suppress(OSError):
            # A directory's link count is 2 + its subdirectories (kernfs, like most file
            # systems; btrfs says 1): 2 means none, seen without listing it (half the cost).
            if os.stat(group).st_nlink == 2:
                continue
        with suppress(OSError), os.scandir(group) as entries:
            found.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
    return found


def procs_in(groups: list[str], first_fd: int = -1) -> list[int]:
    """The processes in these cgroups now, each once (one moving between two of them while
    they are read may be missed). `first_fd`: the first group's cgroup.procs, open (read with
    pread: no path to look up, nothing opened)."""
    found: dict[int, None] = {}
    for i, group in enumerate(groups):
        with suppress(OSError, ValueError):
            text = (
                _read_fd(first_fd) if i == 0 and first_fd >= 0 else _read(f"{group}/cgroup.procs")
            )
            found.update(dict.fromkeys(int(p) for p in text.split()))
    return list(found)


class CgroupLeaf:
    """A fresh cgroup for one run; carbonwrap joins it to spawn the child there, then leaves."""

    def __init__(
        self, version: int, name: str, parent: str | os.PathLike[str] | None = None
    ) -> None:
        self.version = version
        self.method = f"cgroup{version}"
        self.approximate = False
        # The hierarchy's root directory ("" where unknown): the root cgroup's cpu.stat has the
        # machine's busy time (`sensors/rootcpu.py`), cheaper to read than /proc/stat.
        self.hierarchy_root = ""
        if parent is None:
            self.parent, self.hierarchy_root = own_cgroup(version)
        else:
            self.parent = os.fspath(parent)
        self.path = os.path.join(self.parent, name)
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
            self._remove_dir()
            raise SensorUnavailable(f"cannot use {self.path}: {exc.strerror}") from exc
        self._procs_fd, self._parent_procs_fd, self._usage_fd = opened
        self._final_cpu_s: float | None = None
        self._last_cpu_s = 0.0  # the count as last read, kept if the leaf is removed under us
        self._wrapper_cpu_s = 0.0  # our own CPU while we sat in the leaf to spawn the child
        self._joining: Thread | None = None
        self._spawning = Lock()  # held while the joined thread keeps the migration state warm
        self._warm_stopped = False
        self._join_error: OSError | None = None
        self._inside = False
        self._placed = False  # the child has been spawned in the leaf
        self._finished = False
        # Processes seen in the leaf or below (PID -> start time in clock ticks), and those
        # that later left for a cgroup outside it (noticed at a reading; said at the end).
        self._members: dict[int, int] = {}
        self.escaped: list[int] = []
        self.departures_every_s = DEPARTURES_EVERY_S
        self._departures_at = -DEPARTURES_EVERY_S  # when they were last looked for (monotonic)
        self.walks = 0  # how many times readings looked for departures
        self._listed: tuple[float, list[int]] = (-float("inf"), [])  # when, `pids()`' answer
        self._proc_path: str | None = None  # the leaf as /proc/PID/cgroup names it

    def join_early(self) -> None:
        """Start moving carbonwrap into the leaf now, on a thread, so that the kernel's wait
        overlaps the rest of start-up. The first migration of a process waits for an RCU grace
        period (cgroup_threadgroup_rwsem): 6–30 ms on the development VM, most of the start-up
        budget if waited for in line. `placement` waits for it and charges back everything
        carbonwrap ran in the leaf meanwhile.

        Returns once the thread is about to write: a new thread needs the GIL to start, and
        the main thread, busy importing, would hold it for up to the switch interval (5 ms),
        so the kernel's wait would begin that much later."""
        writing = Lock()
        writing.acquire()
        self._spawning.acquire()  # released when the spawn comes, or the leaf is given up
        self._joining = Thread(target=lambda: self._join(writing), name="carbonwrap-cgroup")
        self._joining.start()
        writing.acquire()  # released by the thread just before its write

    @property
    def joining(self) -> bool:
        """The early join still waits for the kernel (`placement` will wait for it)."""
        return self._joining is not None and not self._inside and self._join_error is None

    def _join(self, writing: LockType | None = None) -> None:
        if writing is not None:
            writing.release()
        try:
            os.write(self._procs_fd, b"0")  # "0" = the writing process, all its threads
            self._inside = True
        except OSError as exc:
            self._join_error = exc
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
                os.write(self._procs_fd, b"0")
            except OSError:
                return

    def _stop_keeping_warm(self) -> None:
        if not self._warm_stopped:
            self._warm_stopped = True
            self._spawning.release()

    def _joined(self) -> None:
        """In the leaf, having waited for an early join or joined now; SensorUnavailable if not."""
        if self._joining is None:
            self._join()
        else:
            self._stop_keeping_warm()
            self._joining.join()
        if self._join_error is not None:
            exc = self._join_error
            raise SensorUnavailable(f"cannot join {self.path}: {exc.strerror}") from exc

    def _leave(self) -> None:
        if self._inside:
            os.write(self._parent_procs_fd, b"0")
            self._inside = False

    def placement(self) -> _Placement:
        """Spawn inside this block and the child starts life in the leaf.

        carbonwrap is in the leaf (joined early, or now), spawns (the child inherits the cgroup
        at fork, before exec, so nothing it does can escape), and moves back out. This keeps the
        fast posix_spawn path (no Python code between fork and exec). Everything the leaf has
        counted before the spawn is ours (it was empty until we joined), and our CPU from then
        until we are out again is measured; both are subtracted from the tree's count.
        """
        return _Placement(self)

    def _enter(self) -> tuple[float, float]:
        """In the leaf; (our CPU the leaf has counted, our process time now)."""
        self._joined()
        # process_time() brings this thread's runtime, and so the leaf's count, up to date;
        # no other thread of ours runs now (the early join's thread has ended). Then the
        # leaf's count, then our clock again: what the read itself costs is in the count, and
        # our CPU from the second clock on is charged back at the exit. Clock, read, clock:
        # the read is never charged back twice (once in the count, once on the clock), which
        # took ~20 µs more than carbonwrap used off the command's count.
        time.process_time()
        ours_s = self._usage_s()
        return ours_s, time.process_time()

    def _exit(self, ours_s: float, before_s: float) -> None:
        # Our clock before the leave: the leave's own few µs in the leaf stay in the command's
        # count, rather than our CPU after it, outside the leaf, being taken off it.
        after_s = time.process_time()
        self._leave()
        self._wrapper_cpu_s += ours_s + after_s - before_s
        self._placed = True

    def started(self, pid: int) -> None:
        """Nothing to do: the child was born in the leaf."""

    def cpu_s(self, *, force: bool = False) -> float:
        """CPU seconds used by every process that ever ran in the leaf or below it, less
        carbonwrap's own. Readings also note processes that have left (`escaped`), at most
        every DEPARTURES_EVERY_S (a walk of the leaf's groups and processes), or now with
        `force`."""
        if self._final_cpu_s is not None:
            return self._final_cpu_s
        if not self._placed:
            return 0.0  # before the spawn the leaf holds only carbonwrap, joined early
        self._last_cpu_s = max(self._last_cpu_s, self._usage_s() - self._wrapper_cpu_s)
        now_s = time.monotonic()
        if force or now_s - self._departures_at >= self.departures_every_s:
            self._departures_at = now_s
            self.walks += 1
            self._note_departures(afresh=force)
        return self._last_cpu_s

    def _note_departures(self, *, afresh: bool = False) -> None:
        """Which processes seen in the leaf before are no longer in it or below it, and of
        those, which still run elsewhere: they moved themselves out (wrote their PID to another
        cgroup's cgroup.procs), and their CPU from then on, with that of processes they start
        there, is not counted. Seen at readings: one that leaves and ends between two readings
        is not noticed."""
        now = self.pids() if afresh else self._recent_pids()  # the end's walk: as it is now
        members = self._members
        for pid in now:
            if pid not in members and (stat := process_stat(pid)) is not None:
                members[pid] = stat.start_ticks
        for pid in members.keys() - set(now):
            start = members.pop(pid)
            if self._moved_out(pid, start) and pid not in self.escaped:
                self.escaped.append(pid)

    def _moved_out(self, pid: int, start_ticks: int) -> bool:
        """Whether the process is alive in a cgroup outside the leaf; False when it ended
        (zombies are no longer listed in cgroup.procs, and v1 shows them in the root)."""
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return False
        stat = process_stat(pid)  # after the read: it ran there then
        if stat is None or stat.start_ticks != start_ticks or stat.ended:
            return False
        path = parse_proc_cgroup(text, None if self.version == 2 else "cpuacct")
        leaf = self._leaf_proc_path()
        if path is None or leaf is None:
            return False
        return path != leaf and not path.startswith(leaf.rstrip("/") + "/")

    def _leaf_proc_path(self) -> str | None:
        """The leaf's path as /proc/PID/cgroup shows it: carbonwrap's own (it sits in the
        parent once the child is spawned) and the leaf's name; read when first needed."""
        if self._proc_path is None:
            with suppress(OSError):
                own = parse_proc_cgroup(
                    _read("/proc/self/cgroup"), None if self.version == 2 else "cpuacct"
                )
                if own is not None:
                    name = os.path.basename(self.path)
                    self._proc_path = f"{own.rstrip('/')}/{name}"
        return self._proc_path

    def _usage_s(self) -> float:
        """The leaf's CPU count as the kernel keeps it."""
        text = os.pread(self._usage_fd, 512, 0).decode("ascii")
        if self.version == 1:
            return int(text) / 1e9
        key, _, value = text.partition("\n")[0].partition(" ")
        if key == "usage_usec":  # the first line, as the kernel writes it
            return int(value) / 1e6
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        raise OSError(errno.EINVAL, f"no usage_usec in {self.path}/cpu.stat")

    def pids(self) -> list[int]:
        """Processes now in the leaf or in a cgroup below it."""
        # v2 lists afresh at each read from the start; v1 keeps the list it made for an open
        # file while it is read again within a second (cgroup_pidlist_start): opened each time.
        listed = procs_in(cgroup_dirs(self.path), self._procs_fd if self.version == 2 else -1)
        self._listed = (time.monotonic(), listed)
        return listed

    def _recent_pids(self) -> list[int]:
        """`pids()`, or its answer of the last LISTING_SHARED_S: the memory figure and the
        departures walk, due at the same reading every 0.9 s, list the leaf once between them
        (each listing, run cold after the sampler's sleep, ~100-200 µs here). Never for a
        budget stop or the end, which list afresh (`pids`)."""
        listed_at, listed = self._listed
        if time.monotonic() - listed_at < LISTING_SHARED_S:
            return listed
        return self.pids()

    def rss_bytes(self) -> int:
        """Resident memory of the leaf's processes (sum of RSS; shared pages count per process)."""
        total_pages = 0
        for pid in self._recent_pids():
            with suppress(OSError, ValueError, IndexError):
                fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    total_pages += int(os.read(fd, 256).split()[1])  # 7 numbers
                finally:
                    os.close(fd)
        return total_pages * _PAGE_BYTES

    def finish(self) -> list[int]:
        """Freeze the count, move processes still in the leaf or below it out (left running),
        remove the cgroups below it and the leaf, bottom-up.

        Returns the PIDs that were still running (nothing the second time).
        """
        if self._finished:
            return []
        self._finished = True
        if self._joining is not None:
            self._stop_keeping_warm()
            self._joining.join()  # setup failed before the spawn: the join may still be running
        with suppress(OSError):
            self._leave()
        try:
            self._final_cpu_s = self.cpu_s(force=True)  # the last departures, before we move any
        except OSError:  # the leaf was removed from outside (ENODEV): its last count stands
            self._final_cpu_s = self._last_cpu_s
        leftover: dict[int, None] = {}
        for _ in range(10):  # a leftover may start another process while we move them
            moving = [pid for pid in self.pids() if pid not in leftover]
            if not moving:
                break
            for pid in moving:
                with suppress(OSError):
                    os.write(self._parent_procs_fd, str(pid).encode())
            leftover.update(dict.fromkeys(moving))
        for fd in (self._procs_fd, self._parent_procs_fd, self._usage_fd):
            os.close(fd)
        self._procs_fd = self._parent_procs_fd = self._usage_fd = -1
        for group in reversed(cgroup_dirs(self.path)):  # children before parents
            self._remove_dir(group)
        return list(leftover)

    def _remove_dir(self, path: str | None = None) -> None:
        # A process that has just exited may still be listed for a moment; retry briefly.
        for _ in range(50):
            try:
                os.rmdir(self.path if path is None else path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return
                time.sleep(0.002)


class _Placement:
    """`CgroupLeaf.placement()`'s block: in the leaf on entry, out again on exit, however the
    block ends (a context manager written out: contextlib costs the run's start-up)."""

    __slots__ = ("_counted", "_leaf")

    def __init__(self, leaf: CgroupLeaf) -> None:
        self._leaf = leaf
        self._counted = (0.0, 0.0)

    def __enter__(self) -> None:
        self._counted = self._leaf._enter()

    def __exit__(self, *exc: object) -> None:
        self._leaf._exit(*self._counted)
