"""Doctor checks of the host: /proc, CPU-time accounting (cgroups), RAPL and the CPU estimate.

Every probe opens the real thing the run would open (a throw-away cgroup leaf with a process
started in it as a run starts its command, the RAPL counters) and closes it again.
"""

import contextlib
import os
import shutil
from collections.abc import Mapping

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check
from carbonwrap.sensors import SensorUnavailable

_SHELL = "/bin/sh"
SCOPE_FIX = "systemd-run --user --scope -p Delegate=yes carbonwrap run -- COMMAND"
_RAPL_MODULE_FIX = (
    "on bare-metal Intel, or AMD Zen with Linux 5.8+: `sudo modprobe intel_rapl_msr`; virtual "
    "machines and most clouds have no RAPL: the CPU estimate below is used"
)


def check_proc(proc_root: str) -> Check:
    """/proc/stat (busy time of all CPUs, for every share) and /proc/meminfo (memory in use)."""
    from carbonwrap.sensors.meminfo import MemInfo
    from carbonwrap.sensors.procstat import ProcStat

    try:
        stat = ProcStat(proc_root)
        try:
            stat.busy_s()
        finally:
            stat.close()
        meminfo = MemInfo(proc_root)
        try:
            meminfo.used_bytes()
        finally:
            meminfo.close()
    except (OSError, ValueError) as exc:
        return Check(
            "proc",
            ERROR,
            f"cannot read {proc_root}/stat or {proc_root}/meminfo: {exc}",
            f"mount procfs: `mount -t proc proc {proc_root}`",
        )
    return Check(
        "proc",
        OK,
        f"{proc_root}/stat and {proc_root}/meminfo readable (busy time of all CPUs, memory in use)",
    )


def check_cgroups(proc_root: str, environ: Mapping[str, str], euid: int) -> list[Check]:
    """The accounting `run --cpu-accounting auto` would get, then whether systemd could delegate
    a writable cgroup where none is writable now."""
    v2_parent, v2_error, v2_how = probe_leaf(2, proc_root)
    scope = check_scope(v2_parent, v2_error is None, euid, environ)
    if v2_error is None:
        detail = (
            f"v2: created a leaf below {v2_parent}, started a process in it and removed it: "
            f"exact CPU time; {v2_how}"
        )
        return [Check("cgroup", OK, detail), scope]
    v1_parent, v1_error, v1_how = probe_leaf(1, proc_root)
    if v1_error is None:
        detail = (
            f"v1 cpuacct: created a leaf below {v1_parent}, started a process in it and "
            f"removed it: exact CPU time; {v1_how} (v2: {v2_error})"
        )
        return [Check("cgroup", OK, detail), scope]
    tried = f"v2: {v2_error}; v1: {v1_error}"
    polling_error = probe_process_tree()
    if polling_error is not None:
        detail = f"cannot count the command's CPU time: {tried}; process polling: {polling_error}"
        return [Check("cgroup", ERROR, detail, f"mount procfs: `mount -t proc proc {proc_root}`")]
    detail = f"none writable ({tried}): CPU time by polling the process tree (approximate)"
    fix = scope.fix if scope.status == WARN else "run carbonwrap as root"
    return [Check("cgroup", WARN, detail, fix), scope]


def probe_leaf(version: int, proc_root: str) -> tuple[str | None, str | None, str]:
    """(parent directory, None, how the process got in) when a leaf can be created, a process
    started in it, the leaf read and removed, as a run does; else (parent or None, why not,
    "")."""
    from carbonwrap.measure.cgroup import CgroupLeaf
    from carbonwrap.measure.cgroupspawn import THREADS_RUNNING
    from carbonwrap.measure.leafjoin import LEAF_PREFIX, LeafJoin, joins_quick, own_cgroup

    try:
        where, _, options = own_cgroup(version, proc_root)
    except SensorUnavailable as exc:
        return None, exc.reason, ""
    parent = os.path.normpath(where)
    quick = joins_quick(version, options)  # as a run's leaf decides
    try:
        # The run's prefix: if doctor is killed mid-probe, the next run removes the leaf.
        name = f"{LEAF_PREFIX}doctor-{os.urandom(4).hex()}"
        leaf = CgroupLeaf(version, name, made=LeafJoin(version, name, parent, quick_joins=quick))
    except SensorUnavailable as exc:
        return parent, exc.reason, ""
    try:
        with leaf.placement() as into:  # as a run starts its command
            spawner = os if into is None else into
            pid = spawner.posix_spawn(_SHELL, [_SHELL, "-c", ":"], dict(os.environ))
        os.waitpid(pid, 0)
        leaf.cpu_s()
    except SensorUnavailable as exc:
        return parent, exc.reason, ""
    except (OSError, ValueError) as exc:
        return parent, f"cannot use {leaf.path}: {exc}", ""
    finally:
        with contextlib.suppress(OSError, ValueError):
            leaf.finish()
    if into is None:
        how = "carbonwrap joins it for the spawn" + (" (favordynmods)" if version == 2 else "")
    elif into.refused == THREADS_RUNNING:  # doctor's own threads, not the host's doing
        how = "a run's command is born in it (clone3; doctor's own threads made it join here)"
    elif into.refused is not None:
        how = f"carbonwrap joins it for the spawn: no clone into it ({into.refused})"
    else:
        how = "the command is born in it (clone3)"
    return parent, None, how


def probe_process_tree() -> str | None:
    """None when the polling fallback can read what it reads (/proc/PID/stat of this process,
    the list of processes in /proc), else why."""
    from carbonwrap.sensors.pidstat import process_stat

    try:
        os.listdir("/proc")
    except OSError as exc:
        return f"cannot list /proc: {exc.strerror}"
    if process_stat(os.getpid()) is None:
        return "cannot read /proc/self/stat"
    return None


def check_scope(
    v2_parent: str | None, v2_writable: bool, euid: int, environ: Mapping[str, str]
) -> Check:
    """Whether a non-root user can get a writable cgroup from systemd (a delegated scope).

    systemd delegates a unit's cgroup by giving its directory and its cgroup.procs,
    cgroup.subtree_control and cgroup.threads files to the user
    (https://systemd.io/CGROUP_DELEGATION/); `systemd-run --user` needs the user's own systemd
    instance, which listens on $XDG_RUNTIME_DIR/systemd/private.
    """
    name = "cgroup scope"
    if v2_parent is None:
        return Check(
            name,
            MISSING,
            "no cgroup v2 hierarchy: systemd can delegate only v2 cgroups to users",
            "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line",
        )
    if v2_writable:
        if euid == 0:
            return Check(name, OK, "not needed: running as root")
        owners = _owners(v2_parent)
        if owners and all(uid == euid for uid in owners.values()):
            return Check(name, OK, f"not needed: {v2_parent} is delegated to uid {euid}")
        return Check(name, OK, f"not needed: {v2_parent} is writable")
    if euid == 0:
        return Check(
            name,
            MISSING,
            f"{v2_parent} is not writable even for root (a read-only cgroup mount, as in "
            "most containers)",
            "run carbonwrap on the host, or give the container a writable cgroup "
            "(e.g. `docker run --cgroupns=private` on a cgroup v2 host)",
        )
    owners = _owners(v2_parent)
    foreign = sorted({f"{f} (uid {uid})" for f, uid in owners.items() if uid != euid})
    why = f"{v2_parent} is not delegated to uid {euid}" + (
        f": owned by others: {', '.join(foreign)}" if foreign else ""
    )
    runtime = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{euid}"
    manager = os.path.join(runtime, "systemd", "private")
    if not os.path.exists(manager):
        return Check(
            name,
            MISSING,
            f"{why}; no systemd user instance for uid {euid} (no {manager})",
            f"log in through systemd-logind (or `loginctl enable-linger`), then {SCOPE_FIX}",
        )
    if shutil.which("systemd-run", path=environ.get("PATH")) is None:
        return Check(name, MISSING, f"{why}; systemd-run is not on PATH", None)
    return Check(
        name,
        WARN,
        f"{why}; a delegated scope is available (systemd user instance at {manager})",
        SCOPE_FIX,
    )


def _owners(cgroup_dir: str) -> dict[str, int]:
    """Owner uid of the cgroup directory and the files systemd hands over when it delegates."""
    owners: dict[str, int] = {}
    for name in (".", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
        with contextlib.suppress(OSError):
            owners[name if name != "." else cgroup_dir] = os.stat(
                os.path.join(cgroup_dir, name)
            ).st_uid
    return owners


def check_rapl(sysfs_root: str, proc_root: str) -> list[Check]:
    """The RAPL counters, opened and read as a run opens them; the estimate where they fail."""
    from carbonwrap.sensors import rapl

    powercap = os.path.join(sysfs_root, "class", "powercap")
    try:
        sensor = rapl.RaplSensor(sysfs_root)
    except SensorUnavailable as exc:
        unavailable = _rapl_unavailable(exc.reason, powercap)
        amd = check_amd_energy(sysfs_root, proc_root)
        if amd is not None and amd.status == OK:
            return [unavailable, amd, check_estimate(proc_root, dram=True, cpu=False)]
        estimate = check_estimate(proc_root, dram=True, sysfs_root=sysfs_root)
        return [unavailable, *([amd] if amd else []), estimate]
    with sensor:
        sensor.read()
        zones = sensor.zones
        skipped = sensor.skipped
    packages = [z.zone_id for z in zones if z.kind == "package"]
    drams = [z.zone_id for z in zones if z.kind == "dram"]
    detail = (
        f"{len(packages)} package and {len(drams)} dram counter(s) readable under {powercap} "
        f"({', '.join(z.zone_id for z in zones)})"
    )
    checks = [
        Check("rapl", WARN if skipped else OK, detail + "".join(f"; skipped {s}" for s in skipped))
    ]
    if not drams:
        checks.append(check_estimate(proc_root, dram=True, cpu=False))
    return checks


def _rapl_unavailable(reason: str, powercap: str) -> Check:
    """The sensor's own reason, its permission fix split out as the fix."""
    from carbonwrap.sensors.rapl import PERMISSION_FIX

    fix = PERMISSION_FIX.format(powercap=powercap)
    if reason.endswith(fix):
        return Check("rapl", ERROR, reason[: -len(fix)].rstrip(". "), fix)
    if reason.startswith("no RAPL package zones"):
        return Check("rapl", MISSING, reason, _RAPL_MODULE_FIX)
    return Check("rapl", ERROR, reason)


def check_amd_energy(sysfs_root: str, proc_root: str) -> Check | None:
    """On an AMD host without readable RAPL: the amd_energy (zenergy) socket counters a run
    would use instead; None on other CPUs."""
    from carbonwrap.sensors.cpu_estimate import cpu_vendor

    if cpu_vendor(proc_root) not in ("AuthenticAMD", "HygonGenuine"):
        return None
    from carbonwrap.sensors.amd_energy import AmdEnergySensor

    try:
        sensor = AmdEnergySensor(sysfs_root)
    except SensorUnavailable as exc:
        return Check("amd_energy", MISSING, exc.reason)
    try:
        sensor.read()
    except SensorUnavailable as exc:
        return Check("amd_energy", ERROR, exc.reason)
    finally:
        sensor.close()
    return Check(
        "amd_energy",
        OK,
        f"{len(sensor.zones)} socket counter(s) readable under {sensor.hwmon_dir}: CPU energy "
        "from them in place of RAPL",
    )


def check_estimate(
    proc_root: str, *, dram: bool, cpu: bool = True, sysfs_root: str = "/sys"
) -> Check:
    """What a run estimates in place of RAPL: CPU from the TDP table, DRAM from resident memory."""
    from carbonwrap.sensors.cpu_estimate import (
        DRAM_BASIS,
        cloud_instance,
        cpu_model_name,
        estimate_cpu_power,
    )

    parts: list[str] = []
    status = OK
    if cpu:
        estimate = estimate_cpu_power(
            cpu_model_name(proc_root), os.cpu_count() or 1, cloud_instance(sysfs_root)
        )
        parts.append(f"CPU: {estimate.basis}")
        if estimate.basis.startswith("default"):
            status = WARN
    if dram:
        parts.append(f"DRAM: {DRAM_BASIS}")
    return Check("cpu estimate" if cpu else "dram estimate", status, "; ".join(parts))
