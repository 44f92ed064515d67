"""Fake DRM sysfs, procfs and Jetson trees of real files, laid out as the kernel lays them out.

Sysfs: a card's directory sits under its PCI device (devices/pci0000:00/.../<slot>/drm/card<N>),
class/drm/card<N> links to it, its `device` link points back at the PCI device, whose `driver`
link points into bus/pci/drivers/. Procfs: /proc/PID/fd/N are symlinks (to /dev/dri/renderD128,
pipe:[…]) beside /proc/PID/fdinfo/N text files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# -- DRM fdinfo texts: the kernel doc's examples (Documentation/gpu/drm-usage-stats.rst and the
# i915/xe pages), with the values the tests vary as parameters --


def amdgpu_fdinfo(
    client_id: int, pdev: str, gfx_ns: int, compute_ns: int = 0, vram_kib: int = 0
) -> str:
    """amdgpu as in drivers/gpu/drm/amd/amdgpu/amdgpu_fdinfo.c (6.2-6.10): drm-memory-*."""
    return (
        f"pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1202\npasid:\t32782\n"
        f"drm-driver:\tamdgpu\ndrm-pdev:\t{pdev}\ndrm-client-id:\t{client_id}\n"
        f"drm-memory-vram:\t{vram_kib} KiB\ndrm-memory-gtt: \t2048 KiB\ndrm-memory-cpu: \t0 KiB\n"
        "amd-memory-visible-vram:\t0 KiB\namd-evicted-vram:\t0 KiB\n"
        "amd-evicted-visible-vram:\t0 KiB\namd-requested-vram:\t0 KiB\n"
        "amd-requested-visible-vram:\t0 KiB\namd-requested-gtt:\t2048 KiB\n"
        f"drm-engine-gfx:\t{gfx_ns} ns\ndrm-engine-compute:\t{compute_ns} ns\n"
    )


def amdgpu_fdinfo_611(client_id: int, pdev: str, gfx_ns: int, vram_kib: int) -> str:
    """amdgpu since 6.11: drm_print_memory_stats' keys beside the deprecated drm-memory-*."""
    return (
        f"pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1202\ndrm-driver:\tamdgpu\n"
        f"drm-client-id:\t{client_id}\ndrm-pdev:\t{pdev}\npasid:\t32782\n"
        f"drm-memory-vram:\t{vram_kib} KiB\ndrm-memory-gtt: \t0 KiB\n"
        f"drm-total-vram:\t{vram_kib} KiB\ndrm-shared-vram:\t0\ndrm-active-vram:\t0\n"
        f"drm-resident-vram:\t{vram_kib} KiB\ndrm-purgeable-vram:\t0\n"
        f"drm-total-gtt:\t0\ndrm-resident-gtt:\t0\n"
        f"drm-engine-gfx:\t{gfx_ns} ns\n"
    )


def i915_fdinfo(client_id: int, pdev: str, render_ns: int, copy_ns: int = 0) -> str:
    """i915 as in the kernel's i915 usage-stats example (with memory stats, 6.5+)."""
    return (
        f"pos:\t0\nflags:\t02100002\nmnt_id:\t26\nino:\t284\ndrm-driver:\ti915\n"
        f"drm-client-id:\t{client_id}\ndrm-pdev:\t{pdev}\n"
        "drm-total-system0:\t6044 KiB\ndrm-shared-system0:\t0\ndrm-active-system0:\t0\n"
        "drm-resident-system0:\t6044 KiB\ndrm-purgeable-system0:\t1688 KiB\n"
        "drm-total-stolen-system0:\t0\ndrm-shared-stolen-system0:\t0\n"
        "drm-active-stolen-system0:\t0\ndrm-resident-stolen-system0:\t0\n"
        "drm-purgeable-stolen-system0:\t0\n"
        f"drm-engine-render:\t{render_ns} ns\ndrm-engine-copy:\t{copy_ns} ns\n"
        "drm-engine-video:\t0 ns\ndrm-engine-capacity-video:\t2\n"
        "drm-engine-video-enhance:\t0 ns\n"
    )


def xe_fdinfo(client_id: int, pdev: str, rcs_cycles: int, total_cycles: int) -> str:
    """xe as in https://docs.kernel.org/gpu/xe/xe-drm-usage-stats.html: busy in GPU cycles."""
    return (
        f"pos:\t0\nflags:\t0100002\nmnt_id:\t26\nino:\t685\ndrm-driver:\txe\n"
        f"drm-client-id:\t{client_id}\ndrm-pdev:\t{pdev}\n"
        "drm-total-system:\t0\ndrm-shared-system:\t0\ndrm-active-system:\t0\n"
        "drm-resident-system:\t0\ndrm-purgeable-system:\t0\n"
        "drm-total-gtt:\t192 KiB\ndrm-shared-gtt:\t0\ndrm-active-gtt:\t0\n"
        "drm-resident-gtt:\t192 KiB\ndrm-total-vram0:\t23992 KiB\ndrm-shared-vram0:\t16 MiB\n"
        "drm-active-vram0:\t0\ndrm-resident-vram0:\t23992 KiB\ndrm-total-stolen:\t0\n"
        "drm-shared-stolen:\t0\ndrm-active-stolen:\t0\ndrm-resident-stolen:\t0\n"
        f"drm-cycles-rcs:\t{rcs_cycles}\ndrm-total-cycles-rcs:\t{total_cycles}\n"
        f"drm-cycles-bcs:\t0\ndrm-total-cycles-bcs:\t{total_cycles}\n"
        f"drm-cycles-vcs:\t0\ndrm-total-cycles-vcs:\t{total_cycles}\n"
        "drm-engine-capacity-vcs:\t2\n"
        f"drm-cycles-ccs:\t0\ndrm-total-cycles-ccs:\t{total_cycles}\n"
        "drm-engine-capacity-ccs:\t4\n"
    )


PLAIN_FDINFO = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n"  # a pipe, a regular file

# -- procfs --


def write_fd(proc: Path, pid: int, fd: int, target: str, fdinfo: str) -> None:
    """/proc/<pid>/fd/<fd> -> target and /proc/<pid>/fdinfo/<fd>."""
    fd_dir = proc / str(pid) / "fd"
    info_dir = proc / str(pid) / "fdinfo"
    fd_dir.mkdir(parents=True, exist_ok=True)
    info_dir.mkdir(parents=True, exist_ok=True)
    (fd_dir / str(fd)).symlink_to(target)
    (info_dir / str(fd)).write_text(fdinfo)


def make_proc(proc: Path, processes: Mapping[int, Mapping[int, tuple[str, str]]]) -> Path:
    """A /proc with `processes`: pid -> {fd: (link target, fdinfo text)}, plus the files every
    /proc has beside the PID directories."""
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text("cpu  1 0 1 100 0 0 0 0 0 0\n")
    (proc / "sys").mkdir(exist_ok=True)
    for pid, fds in processes.items():
        (proc / str(pid) / "fd").mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "fdinfo").mkdir(parents=True, exist_ok=True)
        for fd, (target, text) in fds.items():
            write_fd(proc, pid, fd, target, text)
    return proc


def set_fdinfo(proc: Path, pid: int, fd: int, text: str) -> None:
    (proc / str(pid) / "fdinfo" / str(fd)).write_text(text)


# -- sysfs: DRM cards --


def make_card(
    sysfs: Path,
    card: str,
    slot: str,
    vendor: str,
    device_id: str,
    driver: str,
    hwmon: Mapping[str, str] | None = None,
    gt_hwmon: bool = False,
    tiles: int = 0,
) -> Path:
    """One PCI GPU with its DRM card, a connector and a render node; returns the PCI directory.

    `hwmon`: the card-level hwmon files (name is the driver's); `gt_hwmon`: also an i915_gt0
    hwmon (i915 registers one per GT beside the device one); `tiles`: xe's tile<N> directories.
    """
    bridge = "pci0000:00" if slot.startswith("0000:00:") else "pci0000:00/0000:00:01.0"
    pci = sysfs / "devices" / bridge / slot
    pci.mkdir(parents=True)
    (pci / "vendor").write_text(f"{vendor}\n")
    (pci / "device").write_text(f"{device_id}\n")
    drivers = sysfs / "bus" / "pci" / "drivers" / driver
    drivers.mkdir(parents=True, exist_ok=True)
    (pci / "driver").symlink_to(os.path.relpath(drivers, pci))
    number = int(card.removeprefix("card"))
    card_dir = pci / "drm" / card
    card_dir.mkdir(parents=True)
    (card_dir / "device").symlink_to(os.path.relpath(pci, card_dir))
    (card_dir / "dev").write_text(f"226:{number}\n")
    connector = card_dir / f"{card}-DP-1"
    connector.mkdir()
    (connector / "status").write_text("disconnected\n")
    render = pci / "drm" / f"renderD{128 + number}"
    render.mkdir()
    if hwmon is not None:
        write_hwmon(pci / "hwmon" / f"hwmon{2 + 2 * number}", driver, hwmon)
    if gt_hwmon:  # numbered before the device's own: only its name tells them apart
        gt = pci / "hwmon" / f"hwmon{1 + 2 * number}"
        write_hwmon(gt, f"{driver}_gt0", {"energy1_input": "7"})
    for tile in range(tiles):
        (pci / f"tile{tile}" / "gt0").mkdir(parents=True)
    classes = sysfs / "class" / "drm"
    classes.mkdir(parents=True, exist_ok=True)
    (classes / "version").write_text("drm 1.1.0 20060810\n")
    for entry in (card_dir, connector, render):
        (classes / entry.name).symlink_to(os.path.relpath(entry, classes))
    return pci


def write_hwmon(path: Path, name: str, files: Mapping[str, str]) -> None:
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    for file, value in files.items():
        (path / file).write_text(f"{value}\n")


def hwmon_file(pci: Path, file: str) -> Path:
    """The card-level hwmon file of the card at `pci` (its hwmon named after the driver)."""
    driver = (pci / "driver").resolve().name
    for hwmon in (pci / "hwmon").iterdir():
        if (hwmon / "name").read_text().strip() == driver:
            return hwmon / file
    raise FileNotFoundError(file)


# -- sysfs: Jetson power monitors --


def make_jetson_hwmon(
    sysfs: Path, address: str, channels: Mapping[int, tuple[str, int, int]]
) -> Path:
    """JetPack 5/6: the mainline ina3221 driver's hwmon; channel -> (label, mV, mA)."""
    device = sysfs / "devices" / "platform" / "c240000.i2c" / "i2c-1" / address
    hwmon = device / "hwmon" / "hwmon1"
    hwmon.mkdir(parents=True)
    (hwmon / "name").write_text("ina3221\n")
    for channel, (label, millivolts, milliamps) in channels.items():
        (hwmon / f"in{channel}_label").write_text(f"{label}\n")
        (hwmon / f"in{channel}_input").write_text(f"{millivolts}\n")
        (hwmon / f"curr{channel}_input").write_text(f"{milliamps}\n")
        (hwmon / f"in{channel}_enable").write_text("1\n")
    driver = sysfs / "bus" / "i2c" / "drivers" / "ina3221"
    driver.mkdir(parents=True, exist_ok=True)
    (driver / address).symlink_to(os.path.relpath(device, driver))
    return hwmon


def make_jetson_iio(sysfs: Path, address: str, rails: Mapping[int, tuple[str, int]]) -> Path:
    """JetPack 4: NVIDIA's ina3221x iio driver; channel -> (rail name, mW)."""
    device = sysfs / "devices" / "7000c400.i2c" / "i2c-1" / address
    iio = device / "iio:device0"
    iio.mkdir(parents=True)
    (iio / "name").write_text("ina3221x\n")
    for channel, (name, milliwatts) in rails.items():
        (iio / f"rail_name_{channel}").write_text(f"{name}\n")
        (iio / f"in_power{channel}_input").write_text(f"{milliwatts}\n")
    driver = sysfs / "bus" / "i2c" / "drivers" / "ina3221x"
    driver.mkdir(parents=True, exist_ok=True)
    (driver / address).symlink_to(os.path.relpath(device, driver))
    return iio


def write_device_tree(sysfs: Path, model: str, compatible: tuple[str, ...]) -> None:
    """firmware/devicetree/base/{model,compatible}: NUL-terminated strings, as the kernel has."""
    base = sysfs / "firmware" / "devicetree" / "base"
    base.mkdir(parents=True, exist_ok=True)
    (base / "model").write_bytes(model.encode() + b"\0")
    (base / "compatible").write_bytes(b"".join(c.encode() + b"\0" for c in compatible))
