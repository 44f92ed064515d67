"""RAPL package and DRAM energy counters (Intel, AMD Zen) read through Linux powercap (J)."""

from __future__ import annotations

import os

from carbonwrap.lite import NamedTuple
from carbonwrap.sensors import SensorUnavailable, numbered

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Literal

# Kernel docs: https://docs.kernel.org/power/powercap/powercap.html
# Top-level zones are packages (or psys); subzones are core, uncore, dram. The intel-rapl-mmio
# zones repeat the package counter through MMIO, so the regexes below never match them.
# AMD Zen (family 17h, 19h, 1Ah) and Hygon (18h) are served by the same intel_rapl_msr driver
# since Linux 5.11 (Victor Ding, "powercap: Add AMD Fam17h RAPL support", 2020; 1Ah: Dhananjay
# Ugwekar, 2024) with the same layout: one "package-N" zone per socket (the kernel adds a package
# as its first CPU comes online) and one "core" subzone (MSR_AMD_CORE_ENERGY_STATUS, read on one
# CPU: a single core, not all cores), both wrapping at max_energy_range_uj = 65532610987 (32 bits
# of 15.3 uJ). drivers/powercap/intel_rapl_msr.c, rapl_msr_priv_amd, names only these two
# domains: there is no dram (nor psys, uncore) zone on AMD.
_ZONE = "intel-rapl:"  # intel-rapl:N a package, intel-rapl:N:M its subzones

_UJ_PER_J = 1_000_000
_READ_SIZE = 64  # energy_uj is a decimal u64 plus newline: at most 21 bytes

PERMISSION_FIX = (
    "energy_uj is readable only by root since the fix for CVE-2020-8694 (Linux 5.10, backported; "
    "kernel commit 949dd0104c49). Run as root, or allow reads until reboot with "
    "`sudo chmod o+r {powercap}/intel-rapl:*/energy_uj` and persist it with a udev rule in "
    "/etc/udev/rules.d/99-carbonwrap-rapl.rules: "
    'ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", '
    'RUN+="/bin/chmod o+r /sys%p/energy_uj"'
)


# cpuinfo vendor_id of the CPUs whose RAPL has no DRAM domain (AMD Zen and Hygon Dhyana).
_NO_DRAM_DOMAIN = ("AuthenticAMD", "HygonGenuine")


def dram_missing_note(cpu_vendor: str) -> str:
    """Why DRAM is estimated although RAPL reads: by design on AMD, a missing zone elsewhere.

    `cpu_vendor` is cpuinfo's vendor_id (`cpu_estimate.cpu_vendor`).
    """
    if cpu_vendor in _NO_DRAM_DOMAIN:
        return (
            "AMD Zen CPUs have no DRAM RAPL domain: DRAM energy is estimated from resident memory"
        )
    return "RAPL has no dram zone here; DRAM estimated from resident memory"


class RaplZone(NamedTuple):
    """One RAPL counter: a CPU package or the DRAM attached to it."""

    zone_id: str
    name: str
    kind: Literal["package", "dram"]
    energy_path: str
    max_energy_range_j: float


def sysfs_root_from_env(environ: Mapping[str, str]) -> str:
    """The sysfs root: $CARBONWRAP_SYSFS_ROOT (for tests and containers), else /sys."""
    return environ.get("CARBONWRAP_SYSFS_ROOT", "") or "/sys"


class RaplSensor:
    """Raw RAPL counters in joules, keyed by zone id; the caller unwraps and subtracts."""

    name = "rapl"

    def __init__(self, sysfs_root: str | os.PathLike[str]) -> None:
        powercap = os.path.join(sysfs_root, "class", "powercap")
        self.zones: tuple[RaplZone, ...]
        self.skipped: tuple[str, ...]  # zones left out, each with the reason, for `doctor`
        self.zones, self.skipped = _discover(powercap)
        if not any(zone.kind == "package" for zone in self.zones):
            detail = f"; skipped: {'; '.join(self.skipped)}" if self.skipped else ""
            raise SensorUnavailable(
                f"no RAPL package zones under {powercap} "
                f"(no intel_rapl driver, a VM, or not Intel/AMD){detail}"
            )
        self._counters: tuple[tuple[str, int], ...] = ()  # (zone_id, open fd on energy_uj)
        fds: list[int] = []
        try:
            for zone in self.zones:
                fds.append(_open_counter(zone, powercap))
        except SensorUnavailable:
            for fd in fds:
                os.close(fd)
            raise
        self._counters = tuple((zone.zone_id, fd) for zone, fd in zip(self.zones, fds, strict=True))

    def read(self) -> dict[str, float]:
        """Current counter of every zone in J, not unwrapped."""
        if not self._counters:
            raise SensorUnavailable("RAPL sensor read after close()")
        try:
            return {
                zone_id: int(os.pread(fd, _READ_SIZE, 0)) / _UJ_PER_J
                for zone_id, fd in self._counters
            }
        except (OSError, ValueError) as exc:
            raise SensorUnavailable(f"RAPL counter read failed: {exc}") from exc

    def close(self) -> None:
        """Close the counter files; safe to call twice."""
        counters, self._counters = self._counters, ()
        for _, fd in counters:
            os.close(fd)

    def __enter__(self) -> RaplSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _discover(powercap: str) -> tuple[tuple[RaplZone, ...], tuple[str, ...]]:
    """Package zones and their DRAM subzones, in zone order, plus notes on zones skipped."""
    try:
        entries = sorted(os.listdir(powercap), key=_zone_sort_key)
    except OSError:
        return (), ()
    zones: list[RaplZone] = []
    skipped: list[str] = []
    for entry in entries:
        if numbered(entry, _ZONE) is None:
            continue  # subzone symlinks, intel-rapl-mmio:*, other powercap drivers
        package_dir = os.path.join(powercap, entry)
        if not _read_text(os.path.join(package_dir, "name")).startswith("package"):
            continue  # psys: the whole platform, would double count the packages
        _add_zone(zones, skipped, package_dir, "package")
        try:
            subentries = sorted(os.listdir(package_dir), key=_zone_sort_key)
        except OSError:
            continue
        for sub in subentries:
            # core and uncore are parts of the package counter; only dram is outside it.
            sub_dir = os.path.join(package_dir, sub)
            if (
                numbered(sub, _ZONE, parts=2) is not None
                and _read_text(os.path.join(sub_dir, "name")) == "dram"
            ):
                _add_zone(zones, skipped, sub_dir, "dram")
    return tuple(zones), tuple(skipped)


def _add_zone(
    zones: list[RaplZone],
    skipped: list[str],
    zone_dir: str,
    kind: Literal["package", "dram"],
) -> None:
    """Append the zone, or a note to `skipped` when its wraparound range is unusable."""
    zone_id = os.path.basename(zone_dir)
    range_text = _read_text(os.path.join(zone_dir, "max_energy_range_uj"))
    try:
        max_range_uj = int(range_text)
    except ValueError:
        max_range_uj = 0
    if max_range_uj <= 0:
        # Without the range a wrap cannot be told from a reset: better no zone than a wrong one.
        skipped.append(f"{zone_id}: max_energy_range_uj missing or invalid ({range_text!r})")
        return
    zones.append(
        RaplZone(
            zone_id=zone_id,
            name=_read_text(os.path.join(zone_dir, "name")),
            kind=kind,
            energy_path=os.path.join(zone_dir, "energy_uj"),
            max_energy_range_j=max_range_uj / _UJ_PER_J,
        )
    )


def _open_counter(zone: RaplZone, powercap: str) -> int:
    """An fd on the zone's energy_uj, checked by one read; never a silent zero."""
    try:
        fd = os.open(zone.energy_path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError as exc:
        raise _permission_denied(zone, powercap) from exc
    except OSError as exc:
        raise SensorUnavailable(f"cannot open {zone.energy_path}: {exc.strerror}") from exc
    try:
        int(os.pread(fd, _READ_SIZE, 0))
    except PermissionError as exc:
        # Some kernels check on read rather than open.
        os.close(fd)
        raise _permission_denied(zone, powercap) from exc
    except (OSError, ValueError) as exc:
        os.close(fd)
        raise SensorUnavailable(f"cannot read {zone.energy_path}: {exc}") from exc
    return fd


def _permission_denied(zone: RaplZone, powercap: str) -> SensorUnavailable:
    """The error for a root-only counter: the cause and both fixes, never a silent zero."""
    return SensorUnavailable(
        f"cannot read {zone.energy_path}: permission denied. "
        + PERMISSION_FIX.format(powercap=powercap)
    )


def _read_text(path: str) -> str:
    """A small sysfs attribute, stripped; "" when missing or unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _zone_sort_key(entry: str) -> tuple[int, ...]:
    """Numeric order, so intel-rapl:10 comes after intel-rapl:2."""
    numbers = entry.rpartition("intel-rapl:")[2].split(":")
    return tuple(int(n) if n.isdigit() else -1 for n in numbers)
