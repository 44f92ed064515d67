"""AMD socket and core energy counters from the amd_energy (or zenergy) hwmon driver (units: J).

Where it helps: AMD hosts whose powercap RAPL cannot be read (no zone: a kernel before 5.11 or
without the CPU family; or energy_uj root-only) but whose hwmon counters can. The ABI, from
Documentation/hwmon/amd_energy.rst (kernel 5.8-5.12) and the out-of-tree driver AMD maintains
since mainline removed it in 5.13 ("hwmon: Remove amd_energy driver", 2021-04-20;
https://github.com/amd/amd_energy, families 17h/19h/1Ah):

- /sys/class/hwmon/hwmonN/name is "amd_energy"; energyN_input is a decimal count of uJ and
  energyN_label says whose: "Ecore000", "Ecore001", ... (one per physical core, SMT siblings
  left out), then "Esocket0", "Esocket1", ... (one per socket).
- The hardware registers are 32 bits of 15.3 uJ and wrap within minutes at full power; the driver
  adds them into 64-bit accumulators (a kernel thread every ~100 s, and on every read), so the
  file only ever grows, until the driver's own arithmetic overflows: it reports
  (raw x 10^6 mod 2^64) / 2^ESU uJ, which wraps at 2^(64 - ESU) uJ, 2^48 uJ = 281 MJ with AMD's
  default energy unit (ESU 16) — days at full power, so wraps are handled as for RAPL.
- The counters are mode 0440 (root) since 5.10 ("hwmon: (amd_energy) modify the visibility of
  the counters", 60268b0e8258, Cc stable; the out-of-tree driver too): the timing side channel of
  CVE-2020-12912. The zenergy fork (https://github.com/NiLuJe/zenergy, name "zenergy") keeps the
  same files world-readable, rate-limited to about one new value a second.

Per-core attribution (each core's energy times the tree's share of that core) would need the
tree's CPU time per CPU, which cgroup v2's cpu.stat does not give (one usage_usec for all CPUs);
so only the socket counters stand in for RAPL's package zones, and `read_cores` is left for a
later per-CPU accounting.
"""

from __future__ import annotations

import os

from carbonwrap.lite import NamedTuple
from carbonwrap.sensors import SensorUnavailable, numbered

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from typing import Literal

DRIVER_NAMES = ("amd_energy", "zenergy")
_UJ_PER_J = 1_000_000
_READ_SIZE = 32  # a decimal long plus newline
# 2^48 uJ: where the driver's (raw x 10^6) overflows u64 with AMD's default 15.3 uJ unit (ESU 16).
MAX_ENERGY_RANGE_J = 2**48 / _UJ_PER_J

PERMISSION_FIX = (
    "amd_energy's counters are readable only by root since Linux 5.10 (the CVE-2020-12912 fix). "
    "Run as root, or `sudo chmod o+r {hwmon}/energy*_input` until the module reloads, or use the "
    "zenergy module (github.com/NiLuJe/zenergy), which keeps them readable"
)


class EnergyZone(NamedTuple):
    """One socket counter, shaped as rapl.RaplZone so that meters can use either."""

    zone_id: str  # "amd_energy:socket0"
    name: str  # the driver's label, "Esocket0"
    kind: Literal["package"]
    energy_path: str
    max_energy_range_j: float


class AmdEnergySensor:
    """Raw socket counters in joules keyed by zone id, as RaplSensor's; the caller unwraps."""

    name = "amd_energy"

    def __init__(self, sysfs_root: str | os.PathLike[str]) -> None:
        hwmon_class = os.path.join(sysfs_root, "class", "hwmon")
        self.hwmon_dir = _find_driver(hwmon_class)
        sockets, cores = _channels(self.hwmon_dir)
        if not sockets:
            raise SensorUnavailable(f"{self.hwmon_dir} has no Esocket energy counters")
        self.zones: tuple[EnergyZone, ...] = tuple(
            EnergyZone(
                zone_id=f"{self.name}:socket{n}",
                name=label,
                kind="package",
                energy_path=path,
                max_energy_range_j=MAX_ENERGY_RANGE_J,
            )
            for n, label, path in sockets
        )
        self.skipped: tuple[str, ...] = ()  # as RaplSensor's; nothing is skipped here
        self.core_paths: dict[int, str] = {n: path for n, _, path in cores}
        self._sockets: tuple[tuple[str, int], ...] = ()
        self._cores: tuple[tuple[int, int], ...] = ()
        fds: list[int] = []
        try:
            for zone in self.zones:
                fds.append(_open_counter(zone.energy_path, self.hwmon_dir))
        except SensorUnavailable:
            for fd in fds:
                os.close(fd)
            raise
        self._sockets = tuple((z.zone_id, fd) for z, fd in zip(self.zones, fds, strict=True))

    def read(self) -> dict[str, float]:
        """Current counter of every socket in J, not unwrapped."""
        if not self._sockets:
            raise SensorUnavailable("amd_energy sensor read after close()")
        try:
            return {zone_id: _read_j(fd) for zone_id, fd in self._sockets}
        except (OSError, ValueError) as exc:
            raise SensorUnavailable(f"amd_energy counter read failed: {exc}") from exc

    def read_cores(self) -> dict[int, float]:
        """Every physical core's counter in J, keyed by the label's core number (not unwrapped).

        Opened on first use; not wired into attribution (see the module docstring).
        """
        if not self._sockets:
            raise SensorUnavailable("amd_energy sensor read after close()")
        if not self._cores and self.core_paths:
            opened: list[tuple[int, int]] = []
            try:
                for n, path in sorted(self.core_paths.items()):
                    opened.append((n, _open_counter(path, self.hwmon_dir)))
            except SensorUnavailable:
                for _, fd in opened:
                    os.close(fd)
                raise
            self._cores = tuple(opened)
        try:
            return {n: _read_j(fd) for n, fd in self._cores}
        except (OSError, ValueError) as exc:
            raise SensorUnavailable(f"amd_energy core counter read failed: {exc}") from exc

    def close(self) -> None:
        """Close the counter files; safe to call twice."""
        sockets, self._sockets = self._sockets, ()
        cores, self._cores = self._cores, ()
        for _, fd in (*sockets, *cores):
            os.close(fd)

    def __enter__(self) -> AmdEnergySensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _find_driver(hwmon_class: str) -> str:
    """The first hwmonN whose name is one of DRIVER_NAMES, in numeric order."""
    try:
        entries = os.listdir(hwmon_class)
    except OSError:
        entries = []
    for entry in sorted(entries, key=lambda e: (len(e), e)):
        if _read_text(os.path.join(hwmon_class, entry, "name")) in DRIVER_NAMES:
            return os.path.join(hwmon_class, entry)
    raise SensorUnavailable(
        f"no amd_energy hwmon device under {hwmon_class} (the driver left mainline in Linux 5.13: "
        "install AMD's out-of-tree module, github.com/amd/amd_energy, or zenergy)"
    )


def _channels(
    hwmon_dir: str,
) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """(socket, core) channels as (number, label, energyN_input path), sorted by number."""
    sockets: list[tuple[int, str, str]] = []
    cores: list[tuple[int, str, str]] = []
    try:
        entries = os.listdir(hwmon_dir)
    except OSError:
        entries = []
    for entry in entries:
        if not (entry.startswith("energy") and entry.endswith("_label")):
            continue
        label = _read_text(os.path.join(hwmon_dir, entry))
        path = os.path.join(hwmon_dir, entry.removesuffix("_label") + "_input")
        if socket := numbered(label, "Esocket"):
            sockets.append((socket[0], label, path))
        elif core := numbered(label, "Ecore"):
            cores.append((core[0], label, path))
    return sorted(sockets), sorted(cores)


def _open_counter(path: str, hwmon_dir: str) -> int:
    """An fd on one energyN_input, checked by one read; never a silent zero."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError as exc:
        raise _permission_denied(path, hwmon_dir) from exc
    except OSError as exc:
        raise SensorUnavailable(f"cannot open {path}: {exc.strerror}") from exc
    try:
        _read_j(fd)
    except PermissionError as exc:
        os.close(fd)
        raise _permission_denied(path, hwmon_dir) from exc
    except (OSError, ValueError) as exc:
        os.close(fd)
        raise SensorUnavailable(f"cannot read {path}: {exc}") from exc
    return fd


def _read_j(fd: int) -> float:
    return int(os.pread(fd, _READ_SIZE, 0)) / _UJ_PER_J


def _permission_denied(path: str, hwmon_dir: str) -> SensorUnavailable:
    return SensorUnavailable(
        f"cannot read {path}: permission denied. " + PERMISSION_FIX.format(hwmon=hwmon_dir)
    )


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
