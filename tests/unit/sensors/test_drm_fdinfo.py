"""DRM fdinfo: the pure parser on amdgpu, i915 and xe texts, and DrmClients on fake /proc trees."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import call_as_nobody
from drm_tree import (
    PLAIN_FDINFO,
    amdgpu_fdinfo,
    amdgpu_fdinfo_611,
    i915_fdinfo,
    make_proc,
    set_fdinfo,
    write_fd,
    xe_fdinfo,
)

from carbonwrap.sensors.drm_fdinfo import (
    BUSY_CYCLES,
    BUSY_NS,
    DrmClients,
    FdinfoClient,
    parse_fdinfo,
)

AMD = "0000:0a:00.0"
INTEL = "0000:03:00.0"
RENDER = "/dev/dri/renderD128"
KIB = 1024


# -- the parser --


def test_amdgpu_engines_summed_memory_regions_in_bytes() -> None:
    text = amdgpu_fdinfo(460, "0000:0A:00.0", gfx_ns=25_123_456_789, compute_ns=7, vram_kib=524288)
    assert parse_fdinfo(text) == FdinfoClient(
        driver="amdgpu",
        pdev="0000:0a:00.0",  # lower case, as sysfs names the slot
        client_id="460",
        engine_ns=25_123_456_796,
        cycles=None,
        memory_bytes=(524288 + 2048) * KIB,  # vram + gtt + cpu; amd-* keys are not drm-*
    )


def test_amdgpu_611_counts_each_region_once() -> None:
    """drm-memory-vram is amdgpu's deprecated alias of drm-resident-vram: not added twice."""
    client = parse_fdinfo(amdgpu_fdinfo_611(7, AMD, gfx_ns=10, vram_kib=1000))
    assert client is not None
    assert client.memory_bytes == 1000 * KIB
    assert client.busy == (BUSY_NS, 10)


def test_i915_capacity_is_not_an_engine() -> None:
    client = parse_fdinfo(i915_fdinfo(39, "0000:00:02.0", render_ns=346_249, copy_ns=1))
    assert client is not None
    assert client.engine_ns == 346_250  # drm-engine-capacity-video: 2 is a count, not ns
    assert client.memory_bytes == 6044 * KIB  # resident only: total/shared/purgeable left out


def test_xe_busy_is_cycles_and_total_cycles_are_not_memory() -> None:
    client = parse_fdinfo(xe_fdinfo(3, INTEL, rcs_cycles=28_257_900, total_cycles=7_655_183_225))
    assert client is not None
    assert client.engine_ns is None
    assert client.busy == (BUSY_CYCLES, 28_257_900)  # drm-total-cycles-* are timestamps
    assert client.memory_bytes == (192 + 23992) * KIB  # drm-shared-vram0: 16 MiB left out


def test_text_without_drm_driver_is_not_a_client() -> None:
    assert parse_fdinfo(PLAIN_FDINFO) is None
    assert parse_fdinfo("") is None


def test_mib_units_and_a_malformed_line() -> None:
    text = "drm-driver:\tpanfrost\ndrm-resident-memory:\t3 MiB\ndrm-engine-fragment:\tlots ns\n"
    client = parse_fdinfo(text)
    assert client is not None
    assert client.memory_bytes == 3 * 1024 * KIB
    assert client.engine_ns is None
    assert client.pdev == ""  # not a PCI device


# -- DrmClients on a fake /proc --


def test_engine_busy_deltas_across_two_reads(tmp_path: Path) -> None:
    proc = make_proc(
        tmp_path / "proc",
        {
            100: {3: ("pipe:[4411]", PLAIN_FDINFO), 5: (RENDER, amdgpu_fdinfo(1, AMD, 1000))},
            200: {7: (RENDER, amdgpu_fdinfo(2, AMD, 5000, vram_kib=4))},
            300: {0: ("/dev/null", PLAIN_FDINFO)},
        },
    )
    clients = DrmClients(proc)
    first = clients.read()
    assert first.walked_all
    assert first.unreadable_pids == 0
    card = first.cards[AMD]
    assert dict(card.busy) == {}  # the first read is the baseline
    assert dict(card.memory_bytes) == {100: 2048 * KIB, 200: (4 + 2048) * KIB}
    assert card.busy_unit == BUSY_NS
    set_fdinfo(proc, 100, 5, amdgpu_fdinfo(1, AMD, 1000 + 300))
    set_fdinfo(proc, 200, 7, amdgpu_fdinfo(2, AMD, 5000 + 900))
    second = clients.read()
    assert dict(second.cards[AMD].busy) == {100: 300.0, 200: 900.0}


def test_xe_cycles_deltas(tmp_path: Path) -> None:
    proc = make_proc(tmp_path / "proc", {42: {9: (RENDER, xe_fdinfo(3, INTEL, 100, 10_000))}})
    clients = DrmClients(proc)
    clients.read()
    set_fdinfo(proc, 42, 9, xe_fdinfo(3, INTEL, 160, 12_000))
    card = clients.read().cards[INTEL]
    assert card.busy_unit == BUSY_CYCLES
    assert dict(card.busy) == {42: 60.0}


def test_dup_and_fork_count_one_client_once(tmp_path: Path) -> None:
    """A client seen through a dup'd fd and through a forked child is one drm_file."""
    proc = make_proc(
        tmp_path / "proc",
        {
            100: {5: (RENDER, amdgpu_fdinfo(1, AMD, 0, vram_kib=8)), 6: (RENDER, "")},
            101: {5: (RENDER, "")},  # the child inherited fd 5
        },
    )
    set_fdinfo(proc, 100, 6, amdgpu_fdinfo(1, AMD, 0, vram_kib=8))
    set_fdinfo(proc, 101, 5, amdgpu_fdinfo(1, AMD, 0, vram_kib=8))
    clients = DrmClients(proc)
    first = clients.read().cards[AMD]
    assert dict(first.memory_bytes) == {100: (8 + 2048) * KIB, 101: 0}  # memory once
    for pid, fd in ((100, 5), (100, 6), (101, 5)):
        set_fdinfo(proc, pid, fd, amdgpu_fdinfo(1, AMD, 700, vram_kib=8))
    assert dict(clients.read().cards[AMD].busy) == {100: 700.0}  # not 2,100


def test_two_cards_kept_apart(tmp_path: Path) -> None:
    proc = make_proc(
        tmp_path / "proc",
        {
            10: {4: (RENDER, amdgpu_fdinfo(1, AMD, 0))},
            11: {4: ("/dev/dri/renderD129", i915_fdinfo(1, INTEL, 0))},  # same client id
        },
    )
    clients = DrmClients(proc)
    clients.read()
    set_fdinfo(proc, 10, 4, amdgpu_fdinfo(1, AMD, 50))
    set_fdinfo(proc, 11, 4, i915_fdinfo(1, INTEL, 80))
    use = clients.read()
    assert dict(use.cards[AMD].busy) == {10: 50.0}
    assert dict(use.cards[INTEL].busy) == {11: 80.0}


def test_counter_dip_waits_for_the_previous_high(tmp_path: Path) -> None:
    """The spec: on a value lower than before, stay with the larger one until it catches up."""
    proc = make_proc(tmp_path / "proc", {7: {3: (RENDER, amdgpu_fdinfo(1, AMD, 1000))}})
    clients = DrmClients(proc)
    clients.read()
    set_fdinfo(proc, 7, 3, amdgpu_fdinfo(1, AMD, 990))
    assert dict(clients.read().cards[AMD].busy) == {}
    set_fdinfo(proc, 7, 3, amdgpu_fdinfo(1, AMD, 1500))
    assert dict(clients.read().cards[AMD].busy) == {7: 500.0}


def test_new_client_counts_everything_it_has(tmp_path: Path) -> None:
    proc = make_proc(tmp_path / "proc", {7: {3: (RENDER, amdgpu_fdinfo(1, AMD, 10))}})
    clients = DrmClients(proc)
    clients.read()
    write_fd(proc, 8, 3, RENDER, amdgpu_fdinfo(2, AMD, 400))  # a new process, new PID
    use = clients.read()
    assert use.walked_all  # a small table is walked whole at every read
    assert dict(use.cards[AMD].busy) == {8: 400.0}


def test_process_ending_mid_scan_is_skipped(tmp_path: Path) -> None:
    """Its fd link was listed but its fdinfo is gone; another has no fd directory at all."""
    proc = make_proc(
        tmp_path / "proc",
        {7: {3: (RENDER, amdgpu_fdinfo(1, AMD, 10))}, 8: {3: (RENDER, amdgpu_fdinfo(2, AMD, 5))}},
    )
    (proc / "8" / "fdinfo" / "3").unlink()
    (proc / "9").mkdir()  # a PID directory whose fd/ vanished with the process
    use = DrmClients(proc).read()
    assert dict(use.cards[AMD].memory_bytes) == {7: 2048 * KIB}
    assert use.unreadable_pids == 0


def test_rolling_walk_finds_a_late_opener_in_its_turn(tmp_path: Path) -> None:
    """With a small budget each read re-walks only the PIDs walked longest ago."""
    plain = ("/dev/null", PLAIN_FDINFO)
    proc = make_proc(tmp_path / "proc", {7: {0: plain}, 8: {0: plain}, 9: {0: plain}})
    clients = DrmClients(proc, walk_fds_per_read=2)  # one PID (open + one fd) per read
    assert clients.read().walked_all  # the first read walks everything: the baseline
    # PID 9 already existed: its new DRM fd is found when its turn comes.
    write_fd(proc, 9, 4, RENDER, amdgpu_fdinfo(1, AMD, 10))
    second, third = clients.read(), clients.read()  # PIDs 7, then 8
    assert (second.walked_all, second.cards, third.cards) == (False, {}, {})
    fourth = clients.read()  # PID 9
    assert dict(fourth.cards[AMD].busy) == {9: 10.0}  # all it has: it began after the baseline
    set_fdinfo(proc, 9, 4, amdgpu_fdinfo(1, AMD, 25))
    assert dict(clients.read().cards[AMD].busy) == {9: 15.0}  # known DRM fds: every read


def test_new_pid_walked_at_once_despite_the_budget(tmp_path: Path) -> None:
    proc = make_proc(tmp_path / "proc", {7: {0: ("/dev/null", PLAIN_FDINFO)}})
    clients = DrmClients(proc, walk_fds_per_read=1)
    clients.read()
    write_fd(proc, 8, 3, RENDER, amdgpu_fdinfo(2, AMD, 400))
    assert dict(clients.read().cards[AMD].busy) == {8: 400.0}


def test_missing_proc_root_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        DrmClients(tmp_path / "nowhere").read()


@pytest.fixture
def world_readable_proc() -> Iterator[Path]:
    """A fake /proc an unprivileged user can traverse (pytest's tmp_path is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="carbonwrap-drm-"))
    try:
        base.chmod(0o755)
        yield make_proc(
            base / "proc",
            {
                100: {5: (RENDER, amdgpu_fdinfo(1, AMD, 10))},
                300: {5: (RENDER, amdgpu_fdinfo(2, AMD, 99))},  # another user's process
            },
        )
    finally:
        for path in base.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base)


def test_unreadable_process_is_counted_not_fatal(world_readable_proc: Path) -> None:
    proc = world_readable_proc
    # The kernel gives another user's /proc/PID/fd mode 0500 owner-only; 000 also locks out a
    # non-root test user who owns the directory.
    (proc / "300" / "fd").chmod(0o000)

    def scan() -> tuple[int, list[int]]:
        use = DrmClients(proc).read()
        return use.unreadable_pids, sorted(use.cards[AMD].memory_bytes)

    unreadable, pids = scan() if os.geteuid() != 0 else call_as_nobody(scan)
    assert (unreadable, pids) == (1, [100])


def test_unreadable_control_everything_readable(world_readable_proc: Path) -> None:
    """Control for the test above: the same tree and child with every directory readable."""

    def scan() -> tuple[int, list[int]]:
        use = DrmClients(world_readable_proc).read()
        return use.unreadable_pids, sorted(use.cards[AMD].memory_bytes)

    unreadable, pids = scan() if os.geteuid() != 0 else call_as_nobody(scan)
    assert (unreadable, pids) == (0, [100, 300])


def test_for_card_one_scan_per_reading(tmp_path: Path) -> None:
    """amdsmi_gpu asks card by card: one scan serves a reading, asking a card again is the next."""
    proc = make_proc(
        tmp_path / "proc",
        {
            10: {4: (RENDER, amdgpu_fdinfo(1, AMD, 100))},
            11: {4: ("/dev/dri/renderD129", amdgpu_fdinfo(1, "0000:0b:00.0", 0))},
        },
    )
    clients = DrmClients(proc)
    assert clients.for_card("0000:0A:00.0") == ({10: 2048 * KIB}, {})  # the baseline scan
    set_fdinfo(proc, 10, 4, amdgpu_fdinfo(1, AMD, 150))
    set_fdinfo(proc, 11, 4, amdgpu_fdinfo(1, "0000:0b:00.0", 40))
    memory, busy = clients.for_card("0000:0b:00.0") or ({}, {})
    assert (dict(memory), dict(busy)) == ({11: 2048 * KIB}, {})  # same scan as card 0a
    _, busy_a = clients.for_card(AMD) or ({}, {})
    assert dict(busy_a) == {10: 50.0}  # card 0a again: a new scan
    assert clients.for_card("0000:0c:00.0") == ({}, {})  # a card nobody uses
    assert clients.last is not None
    assert clients.last.unreadable_pids == 0


def test_for_card_without_proc_is_none(tmp_path: Path) -> None:
    assert DrmClients(tmp_path / "nowhere").for_card(AMD) is None
