"""Intel and AMD GPUs without a vendor library: DRM cards in sysfs, their hwmon energy or power,
and per-process engine busy time from DRM fdinfo (`drm_fdinfo.DrmClients`).

Sysfs shapes:
- cards: class/drm/card<N> links to the PCI device's drm/card<N>; its `device` link names the
  PCI slot, `device/vendor` and `device/device` the ids, `device/driver` the driver
  (https://docs.kernel.org/gpu/drm-internals.html, Documentation/ABI/testing/sysfs-class-drm).
- Intel hwmon, i915 (Documentation/ABI/testing/sysfs-driver-intel-i915-hwmon): energy1_input, µJ,
  "for i915 device level hwmon devices (name "i915") ... the entire device"; hwmon devices named
  i915_gt<N> give one GT each and are not used. xe (sysfs-driver-intel-xe-hwmon): energy1_input
  is the card's energy, energy2_input the GPU package's (a part of the card); the card counter is
  used, the package counter only where the card's is missing (then said in a note). Both drivers
  register hwmon for discrete cards only: an integrated GPU's energy is in RAPL's package.
- AMD hwmon, amdgpu (https://docs.kernel.org/gpu/amdgpu/thermal.html, "hwmon interfaces for GPU
  power"): no energy counter; power1_average (µW, averaged by the SMU) or, on parts whose
  firmware reports only current power (e.g. RDNA3, MI300), power1_input (µW). "On APUs this
  includes the CPU."
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.drm_fdinfo import DrmClients, DrmUse
from carbonwrap.sensors.gpu import EMPTY, SHARE_ENGINE, GpuInfo, GpuSample
from carbonwrap.sensors.ze_visible import ze_visible_cards

METHOD_HWMON_ENERGY = "hwmon-energy"  # a cumulative µJ counter
METHOD_HWMON_POWER = "hwmon-power"  # power only, integrated by the caller

_VENDORS = {"0x8086": "intel", "0x1002": "amd"}
_CARD = re.compile(r"card\d+")
_TILE = re.compile(r"tile\d+")
_MICRO = 1_000_000  # µJ per J, µW per W
_READ_SIZE = 32

# A few device ids and their marketing names, from the PCI ID database (https://pci-ids.ucw.cz/,
# vendors 8086 and 1002); any other card is named by vendor and id.
_NAMES = {
    ("intel", "0x56a0"): "Intel Arc A770",
    ("intel", "0x56a1"): "Intel Arc A750",
    ("intel", "0xe20b"): "Intel Arc B580",
    ("amd", "0x738c"): "AMD Instinct MI100",
    ("amd", "0x74a0"): "AMD Instinct MI300A",
    ("amd", "0x74a1"): "AMD Instinct MI300X",
    ("amd", "0x74a5"): "AMD Instinct MI325X",
    ("amd", "0x744c"): "AMD Radeon RX 7900 XT/XTX",
    ("amd", "0x73bf"): "AMD Radeon RX 6800/6800 XT/6900 XT",
}


class DrmCard(NamedTuple):
    """One Intel or AMD card found in sysfs, before any selection."""

    card: str  # card<N>
    pci_bus_id: str  # lower case
    vendor: str  # intel | amd
    device_id: str  # "0x56a0"
    driver: str  # i915, xe, amdgpu ("" unbound)
    hwmon: str  # the card's hwmon directory, "" if none
    tiles: int  # xe: device/tile<N> directories; 1 otherwise
    device: str  # class/drm/card<N>/device: the PCI device's directory


class _Device:
    """A chosen card: its counter and power files, opened once."""

    __slots__ = ("energy_fd", "info", "last_energy_j", "power_fd")

    def __init__(self, info: GpuInfo, energy_fd: int | None, power_fd: int | None) -> None:
        self.info = info
        self.energy_fd = energy_fd
        self.power_fd = power_fd
        self.last_energy_j: float | None = None


def discover_cards(sysfs_root: str | os.PathLike[str]) -> list[DrmCard]:
    """Intel and AMD cards under class/drm, in PCI bus order; connectors and other vendors out."""
    drm = os.path.join(sysfs_root, "class", "drm")
    try:
        entries = os.listdir(drm)
    except OSError:
        return []
    cards = []
    for entry in entries:
        if not _CARD.fullmatch(entry):
            continue  # card0-DP-1 (connectors), renderD128, version
        device = os.path.join(drm, entry, "device")
        vendor = _VENDORS.get(_read_text(os.path.join(device, "vendor")).lower())
        if vendor is None:
            continue  # NVIDIA (NVML's), a BMC's VGA, virtio: not ours
        pci_bus_id = os.path.basename(os.path.realpath(device)).lower()
        driver = _link_name(os.path.join(device, "driver"))
        cards.append(
            DrmCard(
                entry,
                pci_bus_id,
                vendor,
                _read_text(os.path.join(device, "device")).lower(),
                driver,
                _card_hwmon(device, driver),
                _tiles(device) if driver == "xe" else 1,
                device,
            )
        )
    return sorted(cards, key=lambda card: card.pci_bus_id)


class DrmSensor:
    """Energy (Intel hwmon) or power (AMD hwmon) of each visible card, with the processes using
    it and their engine busy time from DRM fdinfo where `clients` is given."""

    name = "drm"

    def __init__(
        self,
        sysfs_root: str | os.PathLike[str],
        proc_root: str | os.PathLike[str],
        environ: Mapping[str, str],
        skip_pci: frozenset[str] = frozenset(),
        select_amd: Callable[[Sequence[GpuInfo]], list[GpuInfo]] | None = None,
        clients: DrmClients | None = None,
    ) -> None:
        self.notes: list[str] = []
        self.pid_namespace_mismatch = False  # fdinfo PIDs are those of our own /proc
        self._proc_root = os.fspath(proc_root)
        self._clients = clients
        self._noted: set[str] = set()
        self._devices: list[_Device] = []
        cards = discover_cards(sysfs_root)
        if not cards:
            raise SensorUnavailable(
                f"no Intel or AMD GPU under {os.path.join(sysfs_root, 'class', 'drm')}"
            )
        visible = self._visible(cards, environ, select_amd)
        chosen = [c for c in visible if c.pci_bus_id not in skip_pci and self._measurable(c)]
        try:
            for card in chosen:
                self._devices.append(self._open(card, len(self._devices)))
        except BaseException:
            self.close()
            raise
        if not self._devices:
            detail = f" ({'; '.join(self.notes)})" if self.notes else ""
            raise SensorUnavailable("no Intel or AMD GPU with a readable power sensor" + detail)
        self.devices: tuple[GpuInfo, ...] = tuple(d.info for d in self._devices)
        if clients is None:
            self.notes.append(
                "Intel/AMD GPUs: no per-process data (DRM fdinfo not read): each GPU's energy "
                "is charged whole while it is measured, an upper bound"
            )

    def read(self) -> dict[int, GpuSample]:
        """A sample of every card, keyed by its index; a failed file read leaves that value out."""
        use = self._scan()
        samples = {}
        for device in self._devices:
            info = device.info
            energy_j = self._read_energy(device)
            power_w = None
            if device.power_fd is not None:
                power_w = self._read_micro(device, device.power_fd, "power")
            if use is None:
                samples[info.index] = GpuSample(
                    energy_j, power_w, EMPTY, EMPTY, SHARE_ENGINE, False
                )
                continue
            card = use.cards.get(info.pci_bus_id)
            processes = card.memory_bytes if card else EMPTY
            busy = card.busy if card else EMPTY
            samples[info.index] = GpuSample(energy_j, power_w, processes, busy, SHARE_ENGINE)
        return samples

    def close(self) -> None:
        """Close the counter files; safe to call twice."""
        devices, self._devices = self._devices, []
        for device in devices:
            for fd in (device.energy_fd, device.power_fd):
                if fd is not None:
                    os.close(fd)

    def __enter__(self) -> DrmSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- per read --

    def _scan(self) -> DrmUse | None:
        if self._clients is None:
            return None
        try:
            use = self._clients.read()
        except OSError as exc:
            self._note_once(
                "scan-failed",
                f"DRM fdinfo scan of {self._proc_root} failed ({exc}): that reading charges "
                "each GPU whole (device-level, an upper bound)",
            )
            return None
        if use.unreadable_pids:
            self._note_once(
                "unreadable",
                f"{use.unreadable_pids} processes could not be inspected (other users'; run as "
                "root to see them): their GPU use is unknown, so the run's share of an Intel/AMD "
                "GPU may be overstated",
            )
        return use

    def _read_energy(self, device: _Device) -> float | None:
        if device.energy_fd is None:
            return None
        energy_j = self._read_micro(device, device.energy_fd, "energy")
        if energy_j is None:
            return None
        last = device.last_energy_j
        if last is not None and energy_j < last:
            # Not unwrapped here: measure.attribution rejects decreases and jumps.
            self._note_once(
                f"{device.info.index}:went-back",
                f"GPU {device.info.index} ({device.info.name}): its energy counter went back "
                f"({last:.3f} J to {energy_j:.3f} J; a driver reload or reset): that interval "
                "uses power where there is one, else counts 0",
            )
        device.last_energy_j = energy_j
        return energy_j

    def _read_micro(self, device: _Device, fd: int, what: str) -> float | None:
        """A µJ or µW file in J or W; None (noted once) when the driver refuses the read."""
        try:
            return int(os.pread(fd, _READ_SIZE, 0)) / _MICRO
        except (OSError, ValueError) as exc:
            # amdgpu refuses (EPERM/EINVAL) while the GPU is runtime-suspended
            self._note_once(
                f"{device.info.index}:{what}-failed",
                f"GPU {device.info.index} ({device.info.name}): {what} read failed ({exc}): "
                "that reading is missing when it fails",
            )
            return None

    def _note_once(self, key: str, note: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(note)

    # -- once, at init --

    def _visible(
        self,
        cards: list[DrmCard],
        environ: Mapping[str, str],
        select_amd: Callable[[Sequence[GpuInfo]], list[GpuInfo]] | None,
    ) -> list[DrmCard]:
        """The cards the command may use: ZE_AFFINITY_MASK for Intel, `select_amd` for AMD."""
        intel = [c for c in cards if c.vendor == "intel"]
        amd = [c for c in cards if c.vendor == "amd"]
        seen = [intel[i] for i in ze_visible_cards(environ, [c.tiles for c in intel], self.notes)]
        if intel and not seen:
            self.notes.append(
                f"ZE_AFFINITY_MASK={environ.get('ZE_AFFINITY_MASK', '')!r} leaves the command "
                "no Intel GPU"
            )
        if select_amd is not None and amd:
            infos = [_amd_offer(card, i) for i, card in enumerate(amd)]
            kept = {info.pci_bus_id for info in select_amd(infos)}
            if not kept:
                self.notes.append(
                    "ROCR_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES leave the command no AMD GPU"
                )
            amd = [c for c in amd if c.pci_bus_id in kept]
        return sorted(seen + amd, key=lambda card: card.pci_bus_id)

    def _measurable(self, card: DrmCard) -> bool:
        label = f"{_name(card)} at {card.pci_bus_id}"
        if not card.hwmon:
            if card.vendor == "intel":
                self.notes.append(
                    f"{label}: no hwmon sensor (an integrated GPU, or a driver without hwmon): "
                    "left out; an integrated GPU's energy is part of RAPL's package (or psys)"
                )
            else:
                self.notes.append(f"{label}: no amdgpu hwmon sensor: left out")
            return False
        if _energy_file(card) or _power_file(card):
            return True
        self.notes.append(f"{label}: its hwmon has no energy or power reading: left out")
        return False

    def _open(self, card: DrmCard, index: int) -> _Device:
        energy = _energy_file(card)
        power = _power_file(card)
        energy_fd = _open_readable(energy) if energy else None
        power_fd = _open_readable(power) if power else None
        if energy_fd is None and power_fd is None:
            raise SensorUnavailable(
                f"cannot read {energy or power} (permission denied): no energy or power for "
                f"{_name(card)} at {card.pci_bus_id}"
            )
        method = METHOD_HWMON_ENERGY if energy_fd is not None else METHOD_HWMON_POWER
        info = _info(card, index, method)
        if energy_fd is not None and energy.endswith("energy2_input"):
            self.notes.append(
                f"GPU {index} ({info.name}): xe gives no card energy counter (energy1_input), "
                "only the GPU package's (energy2_input): the card's memory and board are not in it"
            )
        if method == METHOD_HWMON_POWER:
            self.notes.append(
                f"GPU {index} ({info.name}): power only ({os.path.basename(power)}), "
                "integrated over the sampling interval"
            )
        return _Device(info, energy_fd, power_fd)


def _info(card: DrmCard, index: int, method: str) -> GpuInfo:
    return GpuInfo(
        index=index,
        name=_name(card),
        uuid=card.pci_bus_id,
        energy_method=method,
        vendor=card.vendor,
        pci_bus_id=card.pci_bus_id,
    )


def _amd_offer(card: DrmCard, position: int) -> GpuInfo:
    """An AMD card as offered to `select_amd`: its ROCm UUID ("GPU-" and amdgpu's 16-digit
    device/unique_id, which KFD's topology passes on to ROCr) where the card has one, so that
    UUID entries in ROCR_VISIBLE_DEVICES can match; else the PCI id."""
    info = _info(card, position, METHOD_HWMON_POWER)
    unique_id = _read_text(os.path.join(card.device, "unique_id"))
    if len(unique_id) == 16 and all(c in "0123456789abcdefABCDEF" for c in unique_id):
        return GpuInfo(
            position,
            info.name,
            f"GPU-{unique_id.lower()}",
            info.energy_method,
            False,
            "amd",
            card.pci_bus_id,
        )
    return info


def _name(card: DrmCard) -> str:
    vendor = "Intel" if card.vendor == "intel" else "AMD"
    return _NAMES.get((card.vendor, card.device_id), f"{vendor} GPU {card.device_id}")


def _card_hwmon(device: str, driver: str) -> str:
    """The card-level hwmon directory: the one named after the driver (not i915_gt<N>)."""
    base = os.path.join(device, "hwmon")
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return ""
    for entry in entries:
        path = os.path.join(base, entry)
        if _read_text(os.path.join(path, "name")) == driver:
            return path
    return ""


def _energy_file(card: DrmCard) -> str:
    """Intel only: the card's counter, else (xe) the package's; "" when there is none."""
    if card.vendor != "intel" or not card.hwmon:
        return ""
    for name in ("energy1_input", "energy2_input"):
        path = os.path.join(card.hwmon, name)
        if os.path.exists(path):
            return path
    return ""


def _power_file(card: DrmCard) -> str:
    """A power reading (never a limit such as power1_max): average first, else input."""
    if not card.hwmon:
        return ""
    for name in ("power1_average", "power1_input"):
        path = os.path.join(card.hwmon, name)
        if os.path.exists(path):
            return path
    return ""


def _tiles(device: str) -> int:
    try:
        return max(1, sum(1 for entry in os.listdir(device) if _TILE.fullmatch(entry)))
    except OSError:
        return 1


def _open_readable(path: str) -> int | None:
    """An fd on `path`, checked by one read; None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        os.pread(fd, _READ_SIZE, 0)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            os.close(fd)
            return None
        # amdgpu refuses while runtime-suspended; the file is still the right one
    return fd


def _link_name(path: str) -> str:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return ""


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""
