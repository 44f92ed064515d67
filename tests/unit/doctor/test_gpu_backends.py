"""doctor's lines for AMD (amdsmi), Intel/AMD cards (sysfs) and Jetson: what a run would use."""

from __future__ import annotations

from pathlib import Path

from drm_tree import i915_fdinfo, make_card, make_proc
from fake_amdsmi import FakeAmdGpu, FakeAmdSmi

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN
from carbonwrap.doctor.gpu_backends import check_other_gpus

XE_SLOT = "0000:03:00.0"
RX_SLOT = "0000:0a:00.0"
MI_SLOT = "0000:0c:00.0"


def roots(tmp_path: Path) -> dict[str, str]:
    return {
        "CARBONWRAP_SYSFS_ROOT": str(tmp_path / "sys"),
        "CARBONWRAP_PROC_ROOT": str(tmp_path / "proc"),
    }


def test_no_other_gpu_is_one_missing_line(tmp_path: Path) -> None:
    checks = check_other_gpus(roots(tmp_path), {}, str(tmp_path))
    assert [(c.name, c.status) for c in checks] == [("other gpus", MISSING)]
    assert "no AMD GPU driver" in checks[0].detail and "not a Jetson" in checks[0].detail


def test_intel_and_amd_cards_say_their_method_and_share(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    make_card(sysfs, "card1", XE_SLOT, "0x8086", "0xe20b", "xe", {"energy1_input": "5000000"})
    make_card(sysfs, "card2", RX_SLOT, "0x1002", "0x744c", "amdgpu", {"power1_average": "1"})
    make_proc(tmp_path / "proc", {42: {4: ("/dev/dri/renderD129", i915_fdinfo(1, XE_SLOT, 5))}})
    checks = {c.name: c for c in check_other_gpus(roots(tmp_path), {}, str(tmp_path))}
    intel, amd = checks["intel gpu 0"], checks["amd gpu 1"]
    assert intel.status == OK
    assert intel.detail == (
        f"Intel Arc B580 {XE_SLOT}: hwmon energy counter; per-process engine time (DRM fdinfo)"
    )
    assert amd.status == WARN  # power only: integrated
    assert amd.detail.startswith("AMD Radeon")
    assert "no energy counter: hwmon power sampled and integrated" in amd.detail


def test_amd_through_amdsmi_and_a_hidden_card(tmp_path: Path) -> None:
    make_proc(tmp_path / "proc", {})
    amdsmi = FakeAmdSmi([FakeAmdGpu("AMD Instinct MI300X", unique_id=1, bdf=MI_SLOT)])
    checks = check_other_gpus(roots(tmp_path), {}, str(tmp_path), amdsmi)
    assert [(c.name, c.status) for c in checks] == [("amd gpu 0", OK)]
    assert checks[0].detail.startswith(f"AMD Instinct MI300X {MI_SLOT}: energy counter (checked")
    assert "per-process engine time (amdsmi" in checks[0].detail
    hidden = check_other_gpus(roots(tmp_path), {"ROCR_VISIBLE_DEVICES": ""}, str(tmp_path), amdsmi)
    assert [(c.name, c.status) for c in hidden] == [("amd (amdsmi)", WARN)]
    assert hidden[0].detail.startswith("ROCR_VISIBLE_DEVICES is empty")
    amdsmi.init_error = 10  # AMDSMI_STATUS_NO_PERM
    refused = check_other_gpus(roots(tmp_path), {}, str(tmp_path), amdsmi)
    assert [(c.name, c.status) for c in refused] == [("amd (amdsmi)", ERROR)]
    assert "render" in refused[0].detail  # the groups that grant /dev/kfd and /dev/dri
