"""Pure arithmetic: counter deltas, wraparound, busy-time shares, joules and CO2e."""

from __future__ import annotations

from carbonwrap.lite import NamedTuple, Protocol

MappingProxyType = type(type.__dict__)  # types.MappingProxyType, without importing types
TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_EMPTY: Mapping[Any, Any] = MappingProxyType({})  # shared, read-only default


# More than any CPU package or its DRAM draws: a "wrap" that implies more went backwards.
MAX_ZONE_POWER_W = 2000.0


def counter_delta(
    previous: float, current: float, max_range: float, max_increase: float = float("inf")
) -> float:
    """Increase of a monotonic energy counter that wraps to zero after `max_range`.

    RAPL's `energy_uj` wraps at `max_energy_range_uj`
    (https://www.kernel.org/doc/html/latest/power/powercap/powercap.html). A current value below
    the previous one means exactly one wrap in between: the sampling interval is far shorter than
    the time a counter needs to wrap (minutes to hours). Unless that wrap would mean an increase
    above `max_increase`: then the counter jumped backwards (a reset, a glitch) and the interval
    counts 0, never the ~range a wrap would add (`is_wrap`).
    """
    if current >= previous:
        return current - previous
    if not is_wrap(previous, current, max_range, max_increase):
        return 0.0
    return max_range - previous + current


def is_wrap(previous: float, current: float, max_range: float, max_increase: float) -> bool:
    """Whether a decrease from `previous` to `current` can be one wrap at `max_range`."""
    return max_range > 0 and max_range - previous + current <= max_increase


def counters_delta(
    previous: Mapping[str, float],
    current: Mapping[str, float],
    max_range: Mapping[str, float],
    max_increase: float = float("inf"),
) -> dict[str, float]:
    """Per-key `counter_delta` for keys present in both readings."""
    return {
        key: counter_delta(previous[key], current[key], max_range[key], max_increase)
        for key in current
        if key in previous
    }


def busy_share(tree_cpu_s: float, busy_all_s: float) -> float:
    """The tree's share of all CPUs' busy time in an interval, clamped to [0, 1].

    Both counters are sampled at slightly different instants and at different resolutions
    (cgroup µs, /proc/stat clock ticks), so a short interval can show the tree busier than the
    whole machine; the clamp keeps the attributed energy within the device energy.
    """
    if tree_cpu_s <= 0:
        return 0.0
    if busy_all_s <= 0:
        return 1.0
    return min(1.0, tree_cpu_s / busy_all_s)


def attribute_by_share(device_energy_j: float, share: float) -> float:
    """Energy charged to the tree: the device energy times its share."""
    return device_energy_j * min(1.0, max(0.0, share))


def estimated_energy_j(power_w: float, duration_s: float) -> float:
    """Energy of a constant power over a duration."""
    return max(0.0, power_w) * max(0.0, duration_s)


class GpuSampleLike(Protocol):
    """One GPU at one instant, as every GPU backend reads it (sensors.gpu.GpuSample)."""

    @property
    def energy_j(self) -> float | None: ...
    @property
    def power_w(self) -> float | None: ...
    @property
    def processes(self) -> Mapping[int, int]: ...
    @property
    def sm_util(self) -> Mapping[int, float]: ...
    @property
    def busy_method(self) -> str: ...
    @property
    def processes_known(self) -> bool: ...
    @property
    def ended(self) -> Mapping[int, int]: ...


class Reading(NamedTuple):
    """Counters read at one instant. Units: seconds and joules; raw RAPL counters by zone id."""

    mono_s: float
    tree_cpu_s: float
    busy_all_s: float
    rapl_j: Mapping[str, float] = _EMPTY
    tree_rss_bytes: int = 0
    used_memory_bytes: int = 0
    tree_pids: frozenset[int] = frozenset()  # read only when GPUs are measured
    gpu: Mapping[int, GpuSampleLike] = _EMPTY  # device index -> sample


class EnergyModel(NamedTuple):
    """How CPU and DRAM energy are obtained for this run (fixed at start)."""

    cpu_method: str  # "rapl" | "estimate"
    dram_method: str  # "rapl" | "estimate"
    zone_kind: Mapping[str, str] = _EMPTY  # zone id -> "package" | "dram"
    zone_max_j: Mapping[str, float] = _EMPTY
    cpu_w_per_cpu: float = 0.0  # estimate: W per busy logical CPU
    dram_w_per_gb: float = 0.0  # estimate: W per GB resident
    gpu: bool = False  # GPUs are measured
    gpu_device_level: bool = False  # PIDs cannot be matched: charge whole devices
    # GPUs whose energy covers a superchip module, its Grace CPU and memory included
    # (GpuInfo.module_scope): while the tree uses one, CPU and DRAM are in its figure
    cpu_in_gpus: frozenset[int] = frozenset()


class Share(NamedTuple):
    """Energy of one component in one interval: the tree's part and the whole device's."""

    energy_j: float
    device_energy_j: float


_BYTES_PER_GB = 1e9


def interval_energy(prev: Reading, cur: Reading, model: EnergyModel) -> dict[str, Share]:
    """Attributed and whole-device CPU and DRAM energy between two readings.

    RAPL: the package (and DRAM) energy of the interval times the tree's share of all CPUs' busy
    time. Estimate: CPU-seconds times rated W per CPU; DRAM: resident GB times W/GB times time.
    """
    tree_cpu_s = max(0.0, cur.tree_cpu_s - prev.tree_cpu_s)
    busy_all_s = max(0.0, cur.busy_all_s - prev.busy_all_s)
    duration_s = max(0.0, cur.mono_s - prev.mono_s)
    share = busy_share(tree_cpu_s, busy_all_s)
    # Counters only where a component is measured by them (the sampler calls this every
    # --interval: no deltas worked out for nothing)
    deltas = (
        counters_delta(prev.rapl_j, cur.rapl_j, model.zone_max_j, duration_s * MAX_ZONE_POWER_W)
        if "rapl" in (model.cpu_method, model.dram_method)
        else {}
    )

    def rapl_sum(kind: str) -> float:
        return sum(j for zone, j in deltas.items() if model.zone_kind.get(zone) == kind)

    result: dict[str, Share] = {}
    if model.cpu_method == "rapl":
        device_j = rapl_sum("package")
        result["cpu"] = Share(attribute_by_share(device_j, share), device_j)
    else:
        w = model.cpu_w_per_cpu
        result["cpu"] = Share(tree_cpu_s * w, max(busy_all_s, tree_cpu_s) * w)
    if model.dram_method == "rapl":
        device_j = rapl_sum("dram")
        result["dram"] = Share(attribute_by_share(device_j, share), device_j)
    elif model.dram_method == "estimate":
        w_per_gb = model.dram_w_per_gb
        tree_gb = (prev.tree_rss_bytes + cur.tree_rss_bytes) / 2 / _BYTES_PER_GB
        used_gb = (prev.used_memory_bytes + cur.used_memory_bytes) / 2 / _BYTES_PER_GB
        tree_j = estimated_energy_j(tree_gb * w_per_gb, duration_s)
        result["dram"] = Share(
            tree_j, max(tree_j, estimated_energy_j(used_gb * w_per_gb, duration_s))
        )
    return result
