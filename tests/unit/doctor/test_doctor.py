"""`carbonwrap doctor`'s checks in process: against real files, real cgroups, the fake NVML and
a real local HTTP server; the renderer and the verdict."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest
from conftest import NOBODY, call_as_nobody, cw_env, is_root
from fake_nvml import FakeGpu, FakeNvml
from intensity_server import RecordedServer, probe_while_serving
from sysfs_tree import make_sysfs, zone_file

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check, can_measure
from carbonwrap.doctor.gpu import check_gpus
from carbonwrap.doctor.grid import check_grid
from carbonwrap.doctor.host import (
    SCOPE_FIX,
    check_cgroups,
    check_estimate,
    check_proc,
    check_rapl,
    check_scope,
)
from carbonwrap.render.doctor import render_json, render_text

TOKEN = "em-test-token-4711"  # must never appear in any output
A100 = "NVIDIA A100-SXM4-80GB"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


# --- /proc ------------------------------------------------------------------------------------


def test_proc_readable() -> None:
    check = check_proc("/proc")
    assert check == Check("proc", OK, check.detail, None)
    assert "/proc/stat and /proc/meminfo readable" in check.detail


def test_proc_unreadable_is_an_error_with_the_mount_fix(tmp_path: Path) -> None:
    check = check_proc(str(tmp_path))
    assert check.status == ERROR
    assert f"cannot read {tmp_path}/stat" in check.detail
    assert check.fix == f"mount procfs: `mount -t proc proc {tmp_path}`"


# --- cgroups ----------------------------------------------------------------------------------


def fake_proc(tmp_path: Path, keep: Callable[[str], bool]) -> str:
    """A proc root whose self/mountinfo keeps only the real lines `keep` accepts."""
    self_dir = tmp_path / "proc" / "self"
    self_dir.mkdir(parents=True)
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    (self_dir / "mountinfo").write_text("".join(f"{line}\n" for line in lines if keep(line)))
    shutil.copy("/proc/self/cgroup", self_dir / "cgroup")
    return str(tmp_path / "proc")


def fstype(line: str) -> str:
    return line.partition(" - ")[2].split(" ")[0]


def own_cgroups() -> str:
    return Path("/proc/self/cgroup").read_text()


def doctor_leaves() -> list[str]:
    found = []
    for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpuacct"):
        if os.path.isdir(mount):
            found += [e for e in os.listdir(mount) if e.startswith("carbonwrap-doctor-")]
    return found


def _writable(version: int) -> bool:
    if not is_root():
        return False
    from carbonwrap.doctor.host import probe_leaf

    return probe_leaf(version, "/proc")[1] is None


needs_cgroup2 = pytest.mark.skipif(not _writable(2), reason="no writable cgroup v2 here")
needs_cgroup1 = pytest.mark.skipif(not _writable(1), reason="no writable cgroup v1 cpuacct")


@needs_cgroup2
def test_cgroup_v2_leaf_is_created_used_and_removed() -> None:
    before = own_cgroups()
    cgroup, scope = check_cgroups("/proc", {}, 0)
    assert cgroup.status == OK
    assert cgroup.detail.startswith("v2: created a leaf below /sys/fs/cgroup")
    # (doctor's own threads, if an earlier test left some running, make it join instead)
    assert "born in it (clone3" in cgroup.detail, cgroup.detail
    assert scope == Check("cgroup scope", OK, "not needed: running as root")
    assert own_cgroups() == before  # back where we started
    assert doctor_leaves() == []


@needs_cgroup1
def test_cgroup_v1_when_no_v2_is_mounted(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, lambda line: fstype(line) != "cgroup2")
    before = own_cgroups()
    cgroup, scope = check_cgroups(proc, {}, 0)
    assert cgroup.status == OK
    assert cgroup.detail.startswith("v1 cpuacct: created a leaf below ")
    assert "started a process in it and removed it: exact CPU time; carbonwrap joins it" in (
        cgroup.detail
    )
    assert "(v2: no cgroup v2 hierarchy mounted)" in cgroup.detail
    assert scope.status == MISSING
    assert "systemd.unified_cgroup_hierarchy=1" in (scope.fix or "")
    assert own_cgroups() == before
    assert doctor_leaves() == []


def test_no_cgroup_means_process_polling_with_a_fix(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, lambda line: not fstype(line).startswith("cgroup"))
    cgroup, _ = check_cgroups(proc, {}, 0)
    assert cgroup.status == WARN
    assert "none writable (v2: no cgroup v2 hierarchy mounted; v1: no cgroup v1 cpuacct" in (
        cgroup.detail
    )
    assert cgroup.detail.endswith("CPU time by polling the process tree (approximate)")
    assert cgroup.fix == "run carbonwrap as root"


def fake_v2_mount(tmp_path: Path) -> tuple[str, Path]:
    """A proc root whose only cgroup mount is a cgroup2 line for a plain directory: the leaf can
    be made there but has no cgroup.procs, so it cannot be used."""
    fake_mount = tmp_path / "notcgroup"
    fake_mount.mkdir()
    self_dir = tmp_path / "proc" / "self"
    self_dir.mkdir(parents=True)
    (self_dir / "mountinfo").write_text(f"41 31 0:38 / {fake_mount} rw - cgroup2 cgroup2 rw\n")
    (self_dir / "cgroup").write_text("0::/\n")
    return str(tmp_path / "proc"), fake_mount


def test_a_v2_mount_that_is_not_a_cgroup_is_not_writable_and_left_clean(tmp_path: Path) -> None:
    """mkdir works in a plain directory; the leaf's cgroup.procs does not exist: refused."""
    proc, fake_mount = fake_v2_mount(tmp_path)
    cgroup, scope = check_cgroups(proc, {}, 0)
    assert cgroup.status == WARN
    assert f"v2: cannot use {fake_mount}/carbonwrap-doctor-" in cgroup.detail
    assert "No such file or directory" in cgroup.detail
    assert list(fake_mount.iterdir()) == []  # the leaf was removed again
    assert scope.status == MISSING and "not writable even for root" in scope.detail


# --- delegated scope --------------------------------------------------------------------------


def cgroup_dir(tmp_path: Path, owner: int) -> Path:
    """A directory laid out as systemd leaves a cgroup it delegates (or not) to `owner`."""
    directory = tmp_path / "user.slice"
    directory.mkdir()
    for name in ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
        (directory / name).write_text("")
        os.chown(directory / name, owner, owner)
    os.chown(directory, owner, owner)
    return directory


def user_manager(tmp_path: Path) -> dict[str, str]:
    """$XDG_RUNTIME_DIR with the socket a systemd user instance listens on, systemd-run on PATH."""
    runtime = tmp_path / "run"
    (runtime / "systemd").mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(runtime / "systemd" / "private"))
    listener.close()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemd-run").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "systemd-run").chmod(0o755)
    return {"XDG_RUNTIME_DIR": str(runtime), "PATH": str(bin_dir)}


@pytest.mark.skipif(not is_root(), reason="chown needs root")
def test_a_delegated_cgroup_needs_no_scope(tmp_path: Path) -> None:
    directory = cgroup_dir(tmp_path, NOBODY)
    check = check_scope(str(directory), True, NOBODY, {})
    assert check == Check(
        "cgroup scope", OK, f"not needed: {directory} is delegated to uid {NOBODY}"
    )


def test_no_user_instance_is_missing_with_the_login_fix(tmp_path: Path) -> None:
    directory = cgroup_dir(tmp_path, os.geteuid())
    runtime = tmp_path / "empty-run"
    check = check_scope(str(directory), False, NOBODY, {"XDG_RUNTIME_DIR": str(runtime)})
    assert check.status == MISSING
    assert check.detail.startswith(f"{directory} is not delegated to uid {NOBODY}: owned by others")
    assert f"cgroup.procs (uid {os.geteuid()})" in check.detail
    assert f"no systemd user instance for uid {NOBODY} (no {runtime}/systemd/private)" in (
        check.detail
    )
    assert check.fix is not None and "loginctl enable-linger" in check.fix
    assert check.fix.endswith(SCOPE_FIX)


def test_a_user_instance_offers_a_delegated_scope(tmp_path: Path) -> None:
    directory = cgroup_dir(tmp_path, os.geteuid())
    check = check_scope(str(directory), False, NOBODY, user_manager(tmp_path))
    assert check.status == WARN
    assert "a delegated scope is available" in check.detail
    assert check.fix == "systemd-run --user --scope -p Delegate=yes carbonwrap run -- COMMAND"


def test_a_user_instance_without_systemd_run_is_missing(tmp_path: Path) -> None:
    environ = {**user_manager(tmp_path), "PATH": str(tmp_path / "nowhere")}
    check = check_scope(str(cgroup_dir(tmp_path, os.geteuid())), False, NOBODY, environ)
    assert check.status == MISSING
    assert check.detail.endswith("systemd-run is not on PATH")


def test_polling_fix_is_the_scope_where_one_is_available(tmp_path: Path) -> None:
    """A user without a writable cgroup but with a systemd user instance: use systemd-run."""
    proc, _ = fake_v2_mount(tmp_path)
    cgroup, scope = check_cgroups(proc, user_manager(tmp_path), NOBODY)
    assert cgroup.status == WARN and scope.status == WARN
    assert cgroup.fix == scope.fix == SCOPE_FIX


# --- RAPL and the estimate --------------------------------------------------------------------


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys")


def test_rapl_readable(sysfs: Path) -> None:
    checks = check_rapl(str(sysfs), "/proc")
    assert checks == [
        Check(
            "rapl",
            OK,
            f"2 package and 2 dram counter(s) readable under {sysfs}/class/powercap "
            "(intel-rapl:0, intel-rapl:0:2, intel-rapl:1, intel-rapl:1:0)",
        )
    ]


def test_rapl_without_dram_adds_the_dram_estimate(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path / "sys")
    for zone in ("intel-rapl:0:2", "intel-rapl:1:0"):
        zone_file(sysfs, zone, "name").write_text("uncore\n")
    rapl, dram = check_rapl(str(sysfs), "/proc")
    assert rapl.status == OK and rapl.detail.startswith("2 package and 0 dram counter(s)")
    assert dram.name == "dram estimate" and dram.detail.startswith("DRAM: estimate: 0.3725 W")


def test_skipped_zone_is_a_warning(sysfs: Path) -> None:
    zone_file(sysfs, "intel-rapl:0:2", "max_energy_range_uj").write_text("0\n")
    rapl = check_rapl(str(sysfs), "/proc")[0]
    assert rapl.status == WARN
    assert rapl.detail.endswith(
        "; skipped intel-rapl:0:2: max_energy_range_uj missing or invalid ('0')"
    )


def test_no_rapl_is_missing_and_the_estimate_follows(tmp_path: Path) -> None:
    proc = tmp_path / "proc"  # an Intel host: AMD ones are asked about amd_energy too
    proc.mkdir()
    (proc / "cpuinfo").write_text("vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core\n")
    rapl, estimate = check_rapl(str(tmp_path), str(proc))
    assert rapl.status == MISSING
    assert rapl.detail.startswith(f"no RAPL package zones under {tmp_path}/class/powercap")
    assert rapl.fix is not None and "`sudo modprobe intel_rapl_msr`" in rapl.fix
    assert estimate.name == "cpu estimate"
    assert estimate.detail.startswith("CPU: ") and "; DRAM: estimate" in estimate.detail


def test_estimate_of_a_known_cpu_is_ok_and_of_an_unknown_one_a_warning(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text("model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n")
    known = check_estimate(str(proc), dram=False)
    assert known.status == OK and "Gold 6248: TDP 150 W" in known.detail
    (proc / "cpuinfo").write_text("model name\t: Some Future CPU 9000\n")
    unknown = check_estimate(str(proc), dram=False)
    assert unknown.status == WARN and unknown.detail.startswith("CPU: default estimate: 12 W")


def test_counter_that_is_a_directory_is_an_error(sysfs: Path) -> None:
    counter = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    counter.unlink()
    counter.mkdir()
    rapl = check_rapl(str(sysfs), "/proc")[0]
    assert rapl.status == ERROR
    assert rapl.detail.startswith(f"cannot read {counter}") and "Is a directory" in rapl.detail


@pytest.fixture
def world_readable_sysfs() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="carbonwrap-doctor-rapl-"))
    try:
        base.chmod(0o755)
        yield make_sysfs(base / "sys")
    finally:
        shutil.rmtree(base)


def rapl_check_as_nobody(sysfs: Path) -> dict[str, Any]:
    """check_rapl in a forked child that dropped to uid nobody: the kernel refuses for real."""
    check_estimate("/proc", dram=True)  # load the TDP table now: the child may not read the repo
    result: dict[str, Any] = call_as_nobody(lambda: check_rapl(str(sysfs), "/proc")[0]._asdict())
    return result


@pytest.mark.skipif(not is_root(), reason="dropping to nobody needs root")
def test_root_only_counter_is_an_error_with_the_chmod_and_udev_fix(
    world_readable_sysfs: Path,
) -> None:
    sysfs = world_readable_sysfs
    zone_file(sysfs, "intel-rapl:1", "energy_uj").chmod(0o000)
    check = rapl_check_as_nobody(sysfs)
    powercap = sysfs / "class" / "powercap"
    assert check["status"] == ERROR
    assert check["detail"] == f"cannot read {powercap}/intel-rapl:1/energy_uj: permission denied"
    fix = check["fix"]
    assert "CVE-2020-8694" in fix
    assert f"sudo chmod o+r {powercap}/intel-rapl:*/energy_uj" in fix
    assert 'RUN+="/bin/chmod o+r /sys%p/energy_uj"' in fix
    assert check_rapl(str(sysfs), "/proc")[0].status == OK  # control: root reads it


# --- NVML -------------------------------------------------------------------------------------


class DoctorNvml(FakeNvml):
    """The fake NVML with accounting mode on for the GPUs `accounting` names."""

    def __init__(self, gpus: list[FakeGpu], accounting: tuple[int, ...] = (), **kw: Any) -> None:
        super().__init__(gpus, **kw)
        for index in accounting:
            gpus[index].accounting = True


def host_proc(tmp_path: Path, nspid: str = "4242") -> str:
    status = tmp_path / "proc" / "self" / "status"
    status.parent.mkdir(parents=True)
    status.write_text(f"Name:\tpython3\nPid:\t4242\nNSpid:\t{nspid}\n")
    return str(tmp_path / "proc")


def gpus(nvml: FakeNvml, tmp_path: Path, environ: dict[str, str] | None = None) -> list[Check]:
    checks = check_gpus(nvml, environ or {}, host_proc(tmp_path))
    assert nvml.calls["nvmlShutdown"] == nvml.calls["nvmlInit"] == 1  # everything closed
    return checks


def test_gpu_with_counter_and_utilisation_is_ok(tmp_path: Path) -> None:
    nvml = DoctorNvml([FakeGpu(A100, "GPU-0000"), FakeGpu(A100, "GPU-1111")], accounting=(1,))
    checks = by_name(gpus(nvml, tmp_path))
    assert list(checks) == ["nvml", "gpu 0", "gpu 1"]
    assert checks["nvml"] == Check("nvml", OK, "2 of 2 GPU(s) measured")
    gpu0 = checks["gpu 0"]
    assert gpu0.status == OK
    assert gpu0.detail == (
        f"{A100} GPU-0000: energy counter; per-process utilisation; accounting mode off: a "
        "process that starts and ends between two readings is missed; `sudo nvidia-smi -i 0 "
        "-am 1` turns it on until the driver unloads (at reboot, or when no process holds the "
        "GPU unless `sudo nvidia-smi -i 0 -pm 1` keeps it loaded)"
    )  # accounting off is no failure: the GPU is OK
    assert checks["gpu 1"] == Check(
        "gpu 1",
        OK,
        f"{A100} GPU-1111: energy counter; per-process utilisation; accounting mode on: "
        "processes that start and end between two readings count",
    )


@pytest.mark.parametrize(
    ("instant_power_mw", "part"),
    [
        (
            450_000,
            "Grace superchip: its energy counter includes the CPU, so the GPU's own power is "
            "sampled and integrated instead",
        ),
        (
            None,
            "Grace superchip without GPU-only power: its energy is the whole module's, CPU "
            "included",
        ),
    ],
)
def test_grace_hopper_says_what_its_energy_covers(
    tmp_path: Path, instant_power_mw: int | None, part: str
) -> None:
    gh200 = FakeGpu("NVIDIA GH200 480GB", "GPU-0000", c2c=True, instant_power_mw=instant_power_mw)
    check = gpus(DoctorNvml([gh200]), tmp_path)[1]
    assert check.status == WARN
    assert check.detail.startswith(f"NVIDIA GH200 480GB GPU-0000: {part}; ")


def test_gpu_without_energy_counter_or_utilisation_warns(tmp_path: Path) -> None:
    old = FakeGpu("Tesla P100-PCIE-16GB", "GPU-0000", energy_mj=None, util=None)
    check = gpus(DoctorNvml([old]), tmp_path)[1]
    assert check.status == WARN
    assert "no energy counter (before Volta): power sampled and integrated" in check.detail
    assert "no per-process utilisation (Not Supported): a shared GPU is split by memory" in (
        check.detail
    )


def test_mig_board_warns(tmp_path: Path) -> None:
    check = gpus(DoctorNvml([FakeGpu(A100, "GPU-0000", mig=True)]), tmp_path)[1]
    assert check.status == WARN
    assert "MIG mode: energy is the whole board's" in check.detail


def test_pid_namespace_mismatch_has_its_own_line_and_fix(tmp_path: Path) -> None:
    nvml = DoctorNvml([FakeGpu(A100, "GPU-0000")])
    checks = check_gpus(nvml, {}, host_proc(tmp_path, nspid="4242\t17"))
    pids = by_name(checks)["gpu pids"]
    assert pids.status == WARN
    assert "own PID namespace but NVML reports host PIDs" in pids.detail
    assert pids.fix is not None and "`docker run --pid=host`" in pids.fix
    assert by_name(checks)["nvml"].status == OK  # the hint is not repeated there


def test_lost_gpu_is_an_error_with_the_reset_fix(tmp_path: Path) -> None:
    nvml = DoctorNvml([FakeGpu(A100, "GPU-0000"), FakeGpu(A100, "GPU-1111", lost=True)])
    checks = by_name(gpus(nvml, tmp_path))
    assert checks["nvml"].detail == "1 of 2 GPU(s) measured"
    assert checks["gpu 0"].status == OK
    lost = checks["gpu 1"]
    assert lost.status == ERROR
    assert lost.detail.startswith("GPU is lost (fell off the bus or needs a reset)")
    assert lost.fix == "reset it as root (`nvidia-smi --gpu-reset -i 1`) or reboot"


def test_the_only_gpu_lost_is_one_line_with_the_sensor_reason(tmp_path: Path) -> None:
    (check,) = gpus(DoctorNvml([FakeGpu(A100, "GPU-0000", lost=True)]), tmp_path)
    assert check.name == "nvml" and check.status == MISSING
    assert check.detail == "no usable NVIDIA GPU (GPU 0 cannot be opened (GPU is lost): left out)"


def test_gpu_hidden_or_refused(tmp_path: Path) -> None:
    nvml = DoctorNvml(
        [
            FakeGpu(A100, "GPU-0000"),
            FakeGpu(A100, "GPU-1111"),
            FakeGpu(A100, "GPU-2", accessible=False),
        ]
    )
    checks = by_name(gpus(nvml, tmp_path, {"CUDA_VISIBLE_DEVICES": "0"}))
    assert checks["nvml"].detail == "1 of 3 GPU(s) measured"
    assert checks["gpu 1"] == Check(
        "gpu 1", OK, f"{A100} GPU-1111: not measured, CUDA_VISIBLE_DEVICES='0' hides it"
    )
    assert checks["gpu 2"].status == WARN
    assert checks["gpu 2"].detail.startswith("no permission to open it")


def test_gpu_lines_are_the_sensors_probe_answers_asked_once(tmp_path: Path) -> None:
    """Doctor reads the sensor's GpuProbe answers: NVML is asked each question once per GPU."""
    broken = FakeGpu(A100, "GPU-1111")
    broken.fail["nvmlDeviceGetTotalEnergyConsumption"] = pynvml.NVMLError_Unknown()
    broken.fail["nvmlDeviceGetAccountingMode"] = pynvml.NVMLError_NotSupported()
    nvml = DoctorNvml([FakeGpu(A100, "GPU-0000"), broken])
    checks = by_name(gpus(nvml, tmp_path))
    assert checks["nvml"] == Check("nvml", OK, "2 of 2 GPU(s) measured")
    assert checks["gpu 1"] == Check(
        "gpu 1",
        WARN,
        f"{A100} GPU-1111: energy counter unreadable (Unknown Error): power sampled and "
        "integrated; per-process utilisation; accounting mode unknown (Not Supported)",
    )
    assert nvml.calls["nvmlDeviceGetCount"] == 1
    for call in (
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetProcessUtilization",
        "nvmlDeviceGetAccountingMode",
    ):
        assert nvml.calls[call] == 2, call


def test_gpu_lost_while_it_is_opened_is_an_error_with_the_sensors_note(tmp_path: Path) -> None:
    lost = FakeGpu(A100, "GPU-1111")
    lost.fail["nvmlDeviceGetAccountingMode"] = pynvml.NVMLError_GpuIsLost()  # the last question
    checks = by_name(gpus(DoctorNvml([FakeGpu(A100, "GPU-0000"), lost]), tmp_path))
    assert checks["nvml"].detail == "1 of 2 GPU(s) measured"
    assert checks["gpu 1"] == Check(
        "gpu 1",
        ERROR,
        f"{A100} GPU-1111: not measured: GPU 1 ({A100}) cannot be read (GPU is lost): left out",
    )


def test_nvml_init_failure_is_one_line_with_the_sensor_reason(tmp_path: Path) -> None:
    nvml = DoctorNvml([], init_error=pynvml.NVMLError_LibraryNotFound())
    (check,) = check_gpus(nvml, {}, host_proc(tmp_path))
    assert check.name == "nvml" and check.status == MISSING
    assert check.detail.startswith("no NVIDIA driver: libnvidia-ml.so not found")


def test_no_driver_is_one_line_and_never_imports_pynvml(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from carbonwrap.doctor.gpu import check_gpus\n"
        f"print(repr(check_gpus(None, {{}}, '/proc', root={str(tmp_path)!r})))\n"
        "print('pynvml' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=cw_env(), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("[Check(name='nvml', status='missing', detail='no NVIDIA driver (none")
    assert out[1] == "False"


# --- region and intensity ---------------------------------------------------------------------


def grid(
    environ: dict[str, str], region: str | None = None, source: str = "auto", timeout_s: float = 3
) -> list[Check]:
    """The region line, then the intensity lines, for `environ` on top of cw_env()."""
    return check_grid(region, None, None, source, cw_env(**environ), timeout_s)


def region_line(environ: dict[str, str], region: str | None = None) -> Check:
    return grid(environ, region, "static")[0]


def test_region_line_names_code_name_and_source() -> None:
    assert region_line({}, "dk") == Check(
        "region",
        OK,
        "DK (Denmark), source flag: --region dk; Energinet price area DK1 (DK1 and DK2 values "
        "are identical)",
    )
    assert region_line({"CARBONWRAP_REGION": "US-CA"}).detail.startswith(
        "US-CA (California), source env: CARBONWRAP_REGION=US-CA"
    )
    assert region_line({"TZ": "Europe/Berlin"}).detail.startswith(
        "DE (Germany), source timezone: time zone Europe/Berlin"
    )
    assert region_line({}, "US-CAL-CISO").detail.startswith(
        "US-CAL-CISO (California Independent System Operator), source flag"
    )


def test_default_region_warns_with_the_fix() -> None:
    check = region_line({"TZ": "UTC"})
    assert check.status == WARN
    assert check.detail.startswith("WORLD (World), source default: no region given")
    assert check.fix is not None and "export CARBONWRAP_REGION=CODE" in check.fix


def test_static_when_no_provider_applies() -> None:
    _, world = grid({"TZ": "UTC"})
    assert world.status == OK and world.detail.endswith("no live provider for it")
    _, static = grid({}, "DK", "static")
    assert static.status == OK
    assert static.detail.startswith("static table: Denmark ")
    assert static.detail.endswith("; --intensity-source static")


def test_auto_without_a_token_warns_with_the_token_fix() -> None:
    _, check = grid({}, "BR")  # no source serves Brazil without a key
    assert check.status == WARN
    assert "Electricity Maps needs a token" in check.detail
    assert check.fix is not None
    assert check.fix.startswith("export CARBONWRAP_ELECTRICITYMAPS_TOKEN=TOKEN")


def test_an_explicit_provider_that_cannot_serve_is_missing() -> None:
    _, check = grid({}, "DE", "watttime")
    assert check == Check(
        "intensity",
        MISSING,
        "--intensity-source watttime needs $CARBONWRAP_WATTTIME_USERNAME and "
        "$CARBONWRAP_WATTTIME_PASSWORD",
    )


def test_a_bad_config_file_is_an_error_line(tmp_path: Path) -> None:
    (tmp_path / "carbonwrap").mkdir()
    (tmp_path / "carbonwrap" / "config.toml").write_text("[electricitymaps\n")
    _, check = grid({"XDG_CONFIG_HOME": str(tmp_path)}, "DE")
    assert check.status == ERROR and "invalid TOML" in check.detail


def test_a_region_from_a_settings_file_counts_when_the_provider_cannot_serve(
    tmp_path: Path,
) -> None:
    (tmp_path / "carbonwrap").mkdir()
    (tmp_path / "carbonwrap" / "config.toml").write_text('region = "DE"\n')
    region, intensity = grid({"XDG_CONFIG_HOME": str(tmp_path)}, source="electricitymaps")
    assert intensity.status == MISSING and intensity.detail.startswith("--intensity-source")
    assert region.detail.startswith("DE") and "config.toml:1" in region.detail


def test_reachable_provider_answers_in_time() -> None:
    def setup(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", json_file="energidataservice_co2emis.json")

    def probe(url: str) -> list[Check]:
        return grid({"CARBONWRAP_ENERGIDATASERVICE_URL": url}, "DK")[1:]

    (choice, reach), requests = probe_while_serving(setup, probe)
    assert choice.status == OK
    assert choice.detail.startswith("energidataservice (auto) for DK, no credentials needed; ")
    assert reach.name == "intensity api" and reach.status == OK
    assert reach.detail.startswith("127.0.0.1:")
    assert "answered in" in reach.detail and "68 gCO2e/kWh (latest, energidataservice:DK1)" in (
        reach.detail
    )
    assert len(requests) == 1


def test_token_is_used_and_never_shown() -> None:
    def setup(server: RecordedServer) -> None:
        server.route(
            "/carbon-intensity/latest", json_file="electricitymaps_carbon_intensity_latest.json"
        )

    def probe(url: str) -> list[Check]:
        env = {"CARBONWRAP_ELECTRICITYMAPS_URL": url, "CARBONWRAP_ELECTRICITYMAPS_TOKEN": TOKEN}
        return grid(env, "US-CAR-DUK")[1:]

    (choice, reach), requests = probe_while_serving(setup, probe)
    assert choice.detail.startswith(
        "electricitymaps (auto) for US-CAR-DUK, token from $CARBONWRAP_ELECTRICITYMAPS_TOKEN"
    )
    assert reach.status == OK and "216 gCO2e/kWh" in reach.detail
    assert requests[0].headers["auth-token"] == TOKEN
    assert TOKEN not in render_text([choice, reach], True)
    assert TOKEN not in render_json([choice, reach], True)


def test_token_from_a_readable_config_file_warns_and_is_never_shown(tmp_path: Path) -> None:
    config = tmp_path / "carbonwrap" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'[electricitymaps]\ntoken = "{TOKEN}"\n')
    config.chmod(0o644)

    def setup(server: RecordedServer) -> None:
        server.route("/carbon-intensity/latest", status=401)

    def probe(url: str) -> list[Check]:
        env = {"CARBONWRAP_ELECTRICITYMAPS_URL": url, "XDG_CONFIG_HOME": str(tmp_path)}
        return grid(env, "US-CAR-DUK")[1:]

    (credentials, choice, reach), _ = probe_while_serving(setup, probe)
    assert credentials == Check(
        "credentials",
        WARN,
        f"{config} holds a secret and others can read it",
        f"chmod 600 {config}",
    )
    assert choice.detail.startswith(f"electricitymaps (auto) for US-CAR-DUK, token from {config}")
    assert reach.status == WARN
    assert "unauthorized (HTTP 401): check the token" in reach.detail
    text = render_text([credentials, choice, reach], True)
    assert TOKEN not in text


def test_unreachable_provider_is_a_warning_not_a_failure() -> None:
    """cw_env points every provider at a closed local port."""
    _, choice, reach = grid({}, "DK")
    assert choice.status == OK
    assert reach.status == WARN
    assert reach.detail.startswith("127.0.0.1:9/dataset/CO2Emis: cannot connect")
    assert reach.fix is not None and "fall back to the static table" in reach.fix


@pytest.mark.parametrize("mode", ["slow", "hang"])
def test_slow_provider_times_out_within_the_bound(mode: str) -> None:
    def setup(server: RecordedServer) -> None:
        if mode == "slow":
            server.route("/dataset/CO2Emis", delay_s=5)
        else:
            server.route("/dataset/CO2Emis", hang=True)

    def probe(url: str) -> tuple[list[Check], float]:
        started = time.monotonic()
        checks = grid({"CARBONWRAP_ENERGIDATASERVICE_URL": url}, "DK", timeout_s=0.5)[1:]
        return checks, time.monotonic() - started

    (checks, took_s), _ = probe_while_serving(setup, probe)
    reach = checks[1]
    assert reach.status == WARN
    assert reach.detail.endswith("no answer within 0.5 s")
    assert took_s < 1.5


# --- rendering and the verdict ----------------------------------------------------------------

SAMPLE = [
    Check("proc", OK, "readable"),
    Check("cgroup", WARN, "polling", "run as root"),
    Check("rapl", MISSING, "no zones", "modprobe"),
]


def test_text_is_aligned_with_fixes_below() -> None:
    assert render_text(SAMPLE, True) == (
        "proc    ok       readable\n"
        "cgroup  warn     polling\n"
        "                 fix: run as root\n"
        "rapl    missing  no zones\n"
        "                 fix: modprobe\n"
        "\n"
        "carbonwrap can measure here (exit status 0)\n"
    )


def test_text_verdict_names_the_failed_essentials() -> None:
    checks = [Check("proc", ERROR, "gone"), Check("cgroup", ERROR, "gone"), SAMPLE[2]]
    assert render_text(checks, False).endswith(
        "carbonwrap cannot measure here: proc, cgroup (exit status 1)\n"
    )


def test_json_document() -> None:
    doc = json.loads(render_json(SAMPLE, True))
    assert doc == {
        "schema": "carbonwrap.doctor/1",
        "can_measure": True,
        "checks": [
            {"name": "proc", "status": "ok", "detail": "readable", "fix": None},
            {"name": "cgroup", "status": "warn", "detail": "polling", "fix": "run as root"},
            {"name": "rapl", "status": "missing", "detail": "no zones", "fix": "modprobe"},
        ],
    }


def test_can_measure_needs_proc_and_cgroup_ok_or_warn() -> None:
    assert can_measure(SAMPLE)
    assert not can_measure([SAMPLE[0], Check("cgroup", ERROR, "none")])
    assert not can_measure([Check("proc", ERROR, "gone"), SAMPLE[1]])
    assert not can_measure([SAMPLE[0]])  # an essential check that never ran
