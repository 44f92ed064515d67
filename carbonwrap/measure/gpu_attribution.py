"""GPU attribution, pure: each device's share of one interval (sole user, busy share, memory, equal
split), counter deltas that wait through failed reads, and the counter checked against power."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from types import MappingProxyType

from carbonwrap.lite import NamedTuple
from carbonwrap.measure.attribution import EnergyModel, GpuSampleLike, Reading, estimated_energy_j

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from typing import Any

_EMPTY: Mapping[Any, Any] = MappingProxyType({})  # shared, read-only default


# GPU attribution methods, per device and interval (recorded so every number says how it was got).
GPU_NOT_IN_USE = "not-in-use"  # no process of the tree on the device: nothing charged
GPU_SOLE_USER = "sole-user"  # the tree holds every context: the whole device, idle included
GPU_SM_SHARE = "sm-share"  # share of SM-utilisation samples among all processes
GPU_ENGINE_SHARE = "engine-share"  # share of engine busy time (DRM fdinfo, amdsmi) among all
GPU_MEMORY_SHARE = "memory-share"  # no samples: share of GPU memory held
GPU_EQUAL_SPLIT = "equal-split"  # no samples, no memory figures: per process holding a context
GPU_DEVICE_LEVEL = "device-level"  # PIDs cannot be matched (PID namespace, no process list)
GPU_ACCOUNTING = "accounting"  # the tree's part came from processes NVML accounting alone saw


def gpu_share(
    tree_pids: AbstractSet[int],
    processes: Mapping[int, int],
    sm_util: Mapping[int, float],
    device_level: bool = False,
    busy_method: str = GPU_SM_SHARE,
) -> tuple[float, str]:
    """The tree's share of one GPU in one interval, and the method that gave it.

    `processes`: pid -> GPU memory bytes of every process holding a context during the interval;
    `sm_util`: pid -> busy in the interval (SM-utilisation samples summed, or engine busy time:
    `busy_method` names which; may name processes that have exited since). Follows the order in
    DESIGN.md: sole user, busy share, memory share, equal split.
    """
    if device_level:
        return 1.0, GPU_DEVICE_LEVEL
    ours = [pid for pid in processes if pid in tree_pids]
    sampled_ours = sum(u for pid, u in sm_util.items() if pid in tree_pids)
    if not ours and sampled_ours <= 0:
        return 0.0, GPU_NOT_IN_USE
    if ours and len(ours) == len(processes) and all(p in tree_pids for p in sm_util):
        return 1.0, GPU_SOLE_USER
    total_sm = sum(sm_util.values())
    if total_sm > 0:
        return sampled_ours / total_sm, busy_method
    total_bytes = sum(processes.values())
    if total_bytes > 0:
        return sum(processes[pid] for pid in ours) / total_bytes, GPU_MEMORY_SHARE
    return len(ours) / len(processes), GPU_EQUAL_SPLIT


def ended_in_tree(
    tree_pids: AbstractSet[int],
    processes: Mapping[int, int],
    sm_util: Mapping[int, float],
    ended: Mapping[int, int],
) -> frozenset[int]:
    """Which processes that held a context only between two readings were the tree's.

    `ended`: pid -> GPU memory of processes that NVML accounting mode reports ended since the
    last reading, never listed running at a reading and started after the run began (the
    sensor's part). The tree's process list holds only live processes, so two rules decide:
    - a PID the tree listed at either end of the interval (it lived there, and used the GPU
      only between the readings: a script that imports for seconds, then computes briefly);
    - all of them when no other process used the device in the interval: every process
      holding a context at either end and every PID with utilisation samples is the tree's
      or one of these. A foreign process that also lived only between the two readings then
      counts as the tree's: the rule's limit (`docs/RELIABILITY.md`).
    """
    if not ended:
        return frozenset()
    others = [pid for pid in (*processes, *sm_util) if pid not in tree_pids and pid not in ended]
    if not others:
        return frozenset(ended)
    return frozenset(pid for pid in ended if pid in tree_pids)


# More than any GPU board or module draws (a GB200 superchip module: about 2.7 kW), plus a second
# of slack for counters that step coarsely: a counter increase beyond this over an interval is a
# glitch (Intel hwmon counters have jumped by terawatt-equivalents), never energy.
MAX_GPU_POWER_W = 5000.0
GPU_COUNTER_SLACK_S = 1.0


def gpu_counter_plausible(delta_j: float, duration_s: float) -> bool:
    """Whether a GPU energy-counter increase over `duration_s` can be real: not negative (a
    driver reload resets it) and below `MAX_GPU_POWER_W` for the interval plus the slack."""
    return 0.0 <= delta_j <= (max(0.0, duration_s) + GPU_COUNTER_SLACK_S) * MAX_GPU_POWER_W


def gpu_power_j(
    prev_power_w: float | None, cur_power_w: float | None, duration_s: float
) -> float | None:
    """Energy of an interval from the power read at both its ends (trapezoid); None without."""
    if prev_power_w is None or cur_power_w is None:
        return None
    return estimated_energy_j((prev_power_w + cur_power_w) / 2, duration_s)


def gpu_device_energy_j(
    prev_energy_j: float | None,
    cur_energy_j: float | None,
    prev_power_w: float | None,
    cur_power_w: float | None,
    duration_s: float,
) -> float:
    """Energy of one GPU over an interval: counter difference, else trapezoid of power.

    The counters (NVML mJ since driver load, amdsmi's accumulator, hwmon µJ) do not wrap in
    practice; a decrease (a driver reload) or an implausible jump (`gpu_counter_plausible`) is
    not believed: that interval falls back to power where both ends have it, else counts 0.
    A counter missing at one end is `gpu_step`'s case: the next good reading holds the energy.
    """
    if prev_energy_j is not None and cur_energy_j is not None:
        delta_j = cur_energy_j - prev_energy_j
        if gpu_counter_plausible(delta_j, duration_s):
            return delta_j
    return gpu_power_j(prev_power_w, cur_power_w, duration_s) or 0.0


class GpuShare(NamedTuple):
    """One GPU in one interval: the tree's energy, the device's, and how the share was found."""

    energy_j: float
    device_energy_j: float
    method: str


class GpuCarry(NamedTuple):
    """One GPU's energy counter between intervals: its last good value and the intervals since
    it that still wait for their energy (the counter failed to read at their end).

    The counter is cumulative, so the next good reading's difference from `last_j` holds the
    energy of every waiting interval; it is shared among them by duration: the device's part
    over the intervals the tree used the device (`used_s`), the tree's by its share in each
    (`share_s`). Intervals where the tree was not on the device weigh 0 in both. Units: J, s.
    """

    last_j: float | None = None
    span_s: float = 0.0  # the waiting intervals' duration
    used_s: float = 0.0  # of it, where the tree used the device
    share_s: float = 0.0  # Σ duration × the tree's share
    power_j: float = 0.0  # power integrated over the waiting intervals the tree used
    power_share_j: float = 0.0  # the tree's part of it: what stands in if the counter never reads
    power_s: float = 0.0  # how much of `span_s` had power at both ends


class CounterRejected(NamedTuple):
    """A counter difference `gpu_counter_plausible` refused: from `before_j` to `after_j` J over
    `duration_s`; `power_used`: power readings stood in for it (else it counted 0)."""

    gpu: int  # the device's index
    before_j: float
    after_j: float
    duration_s: float
    power_used: bool


class GpuStep(NamedTuple):
    """`gpu_step`'s answer: each GPU's interval, the carries for the next, the refused counters."""

    shares: dict[int, GpuShare]
    carries: dict[int, GpuCarry]
    rejected: list[CounterRejected]


def gpu_step(
    prev: Reading, cur: Reading, model: EnergyModel, carries: Mapping[int, GpuCarry]
) -> GpuStep:
    """Per GPU present in both readings: the tree's and the device's energy of the interval.

    Device energy counts only while the tree uses the device. `carries`: the previous step's
    (empty at the first). A counter that fails to read at the interval's end leaves the interval
    waiting in the carry, charged when the counter reads again (`GpuCarry`); a counter missing
    with none before it, or not believed, gives way to power read at both ends.
    """
    duration_s = max(0.0, cur.mono_s - prev.mono_s)
    tree_pids = prev.tree_pids | cur.tree_pids
    shares: dict[int, GpuShare] = {}
    new_carries = dict(carries)
    rejected: list[CounterRejected] = []
    for index, now in cur.gpu.items():
        before = prev.gpu.get(index)
        if before is None:
            continue
        share, method = _interval_share(tree_pids, before, now, model.gpu_device_level)
        used = 0.0 if method == GPU_NOT_IN_USE else 1.0
        carry = carries.get(index)
        if carry is None or carry.span_s <= 0:
            carry = GpuCarry(before.energy_j)  # nothing waits: the interval starts at `before`
        power_j = gpu_power_j(before.power_w, now.power_w, duration_s)
        waiting = GpuCarry(
            carry.last_j,
            carry.span_s + duration_s,
            carry.used_s + duration_s * used,
            carry.share_s + duration_s * used * share,
            carry.power_j + (power_j or 0.0) * used,
            carry.power_share_j + (power_j or 0.0) * used * share,
            carry.power_s + (duration_s if power_j is not None else 0.0),
        )
        if now.energy_j is None and carry.last_j is not None:
            new_carries[index] = waiting  # charged when the counter reads again
            shares[index] = GpuShare(0.0, 0.0, method)
            continue
        new_carries[index] = GpuCarry(now.energy_j)
        if carry.last_j is None or now.energy_j is None:  # no counter to go by: power
            device_j = (power_j or 0.0) * used
            shares[index] = GpuShare(device_j * share, device_j, method)
            continue
        delta_j = now.energy_j - carry.last_j
        if gpu_counter_plausible(delta_j, waiting.span_s):
            if waiting.span_s <= 0:
                shares[index] = GpuShare(delta_j * used * share, delta_j * used, method)
            else:
                tree_j = delta_j * waiting.share_s / waiting.span_s
                shares[index] = GpuShare(tree_j, delta_j * waiting.used_s / waiting.span_s, method)
            continue
        rejected.append(
            CounterRejected(index, carry.last_j, now.energy_j, waiting.span_s, waiting.power_s > 0)
        )
        shares[index] = GpuShare(waiting.power_share_j, waiting.power_j, method)
    return GpuStep(shares, new_carries, rejected)


def _interval_share(
    tree_pids: AbstractSet[int],
    before: GpuSampleLike,
    now: GpuSampleLike,
    device_level: bool,
) -> tuple[float, str]:
    """`gpu_share` for one interval, with the processes accounting mode alone saw
    (`ended_in_tree`): labelled `accounting` where they are what the tree's share rests on."""
    processes = {**before.processes, **now.processes}
    device_level = device_level or not now.processes_known
    ended = now.ended
    if device_level or not ended:
        return gpu_share(tree_pids, processes, now.sm_util, device_level, now.busy_method)
    credited = ended_in_tree(tree_pids, processes, now.sm_util, ended)
    alone = gpu_share(tree_pids, processes, now.sm_util, False, now.busy_method)
    processes.update((pid, memory) for pid, memory in ended.items() if pid not in processes)
    share, method = gpu_share(tree_pids | credited, processes, now.sm_util, False, now.busy_method)
    if credited and (share > alone[0] or alone[1] == GPU_NOT_IN_USE):
        return share, GPU_ACCOUNTING
    return share, method


def cpu_in_gpu(model: EnergyModel, shares: Mapping[int, GpuShare]) -> bool:
    """Whether this interval's CPU and DRAM energy is already in a GPU's: the tree used a GPU
    whose figure covers its superchip module (`EnergyModel.cpu_in_gpus`). Then they count 0,
    not twice; in intervals the tree left that GPU alone they count as usual."""
    return any(
        index in shares and shares[index].method != GPU_NOT_IN_USE for index in model.cpu_in_gpus
    )


def gpu_carry_flush(carry: GpuCarry) -> GpuShare | None:
    """What stands in for intervals still waiting when the run ends (the counter never read
    again): the power readings over them. None if nothing waits."""
    if carry.span_s <= 0:
        return None
    return GpuShare(carry.power_share_j, carry.power_j, "")


def gpu_interval(prev: Reading, cur: Reading, model: EnergyModel) -> dict[int, GpuShare]:
    """`gpu_step` for one interval alone, nothing carried in or out: a counter missing at the
    interval's end charges nothing here (the sampler carries it into the next)."""
    return gpu_step(prev, cur, model, _EMPTY).shares


class PowerCheck(NamedTuple):
    """Counter energy and integrated power over the same intervals, for the cross-check."""

    counter_j: float = 0.0
    power_j: float = 0.0
    span_s: float = 0.0


# The counter is checked against power over windows this long, once the GPU draws this much on
# average (idle boards report a few watts with coarse steps), and said when they differ by more
# than this share of the integrated power. Power sampled every 10 s misses bursts between the
# samples (NVML's power is a 1 s mean on Ampere and newer), which is why the margin is wide.
CHECK_WINDOW_S = 60.0
CHECK_MIN_POWER_W = 20.0
CHECK_TOLERANCE = 0.15


def counter_power_disagree(counter_j: float, power_j: float, span_s: float) -> bool:
    """Whether counter energy and integrated power over one window differ enough to say so:
    a window of at least CHECK_WINDOW_S, a mean power of at least CHECK_MIN_POWER_W and a
    difference above CHECK_TOLERANCE of the integrated power."""
    if span_s < CHECK_WINDOW_S or power_j < CHECK_MIN_POWER_W * span_s:
        return False
    return abs(counter_j - power_j) > CHECK_TOLERANCE * power_j


def power_check_step(
    check: PowerCheck, before: GpuSampleLike, now: GpuSampleLike, duration_s: float
) -> tuple[PowerCheck, PowerCheck | None]:
    """Add one interval to the window: only where the counter (believable) and power were both
    read at both ends. A window that reaches CHECK_WINDOW_S ends: it comes back second when
    counter and power disagree (`counter_power_disagree`), and a new window starts."""
    if before.energy_j is None or now.energy_j is None:
        return check, None
    counter_j = now.energy_j - before.energy_j
    power_j = gpu_power_j(before.power_w, now.power_w, duration_s)
    if power_j is None or not gpu_counter_plausible(counter_j, duration_s):
        return check, None
    window = PowerCheck(
        check.counter_j + counter_j, check.power_j + power_j, check.span_s + duration_s
    )
    if window.span_s < CHECK_WINDOW_S:
        return window, None
    disagree = counter_power_disagree(window.counter_j, window.power_j, window.span_s)
    return PowerCheck(), window if disagree else None
