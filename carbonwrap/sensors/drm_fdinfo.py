"""Per-process GPU use without a vendor library: the DRM clients in /proc/PID/fdinfo, per card.

The keys are the kernel's "DRM client usage stats"
(https://docs.kernel.org/gpu/drm-usage-stats.html, Documentation/gpu/drm-usage-stats.rst):
drm-driver, drm-pdev (PCI slot), drm-client-id (one per open `struct drm_file`: a dup'd or
inherited fd shows the same id), drm-engine-<engine>: <ns> ns (amdgpu, i915, msm, panfrost…),
drm-cycles-<engine> beside drm-total-cycles-<engine> (xe: busy as GPU cycles, no ns; see
https://docs.kernel.org/gpu/xe/xe-drm-usage-stats.html) and drm-resident-<region> /
drm-memory-<region> (amdgpu's older alias of resident) in bytes, KiB or MiB.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from typing import NamedTuple

from carbonwrap.sensors.gpu import EMPTY, busy_deltas

# Finding DRM fds costs a readlink per open fd of every process: 3.6 µs per fd on real procfs,
# 0.39 s for 2,000 processes × 50 fds (bench/results/2026-12-07-fdinfo-scan.md). So a read walks
# every new PID (the run's own processes are found at once) and, beyond those, re-walks the PIDs
# walked longest ago until this many fds were looked at: the whole table is covered every
# fds / WALK_FDS_PER_READ reads. A process that already existed and opens the GPU later is
# found when its turn comes; its counters are cumulative, so its busy time is not lost, only
# counted in the interval in which it is found. Known DRM fds are re-read at every read.
WALK_FDS_PER_READ = 3000

BUSY_NS = "ns"  # drm-engine-<engine>: <ns> ns, summed over engines
BUSY_CYCLES = "cycles"  # drm-cycles-<engine>, summed over engines (xe)

_DRI_PREFIX = "/dev/dri/"
_UNIT_BYTES = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_READ_SIZE = 16384  # an xe fdinfo with every region and engine is about 1.2 kB


class FdinfoClient(NamedTuple):
    """One DRM fd's usage stats, as its fdinfo text gives them."""

    driver: str
    pdev: str  # PCI slot, lower case ("0000:03:00.0"); "" for a device that is not PCI
    client_id: str  # "" when the driver gives none (then dup'd fds cannot be told apart)
    engine_ns: int | None  # busy ns summed over engines; None when no drm-engine- key
    cycles: int | None  # busy cycles summed over engines; None when no drm-cycles- key
    memory_bytes: int  # resident bytes summed over regions

    @property
    def busy(self) -> tuple[str, int]:
        """(unit, busy so far): engine ns where the driver gives them, else cycles."""
        if self.engine_ns is not None:
            return BUSY_NS, self.engine_ns
        return BUSY_CYCLES, self.cycles or 0


class CardClients(NamedTuple):
    """The DRM clients of one card at one reading."""

    memory_bytes: Mapping[int, int]  # pid -> resident bytes of every process holding a client
    busy: Mapping[int, float]  # pid -> busy since the previous reading, in `busy_unit`
    busy_unit: str  # BUSY_NS or BUSY_CYCLES: only ratios within one card are meaningful


class DrmUse(NamedTuple):
    """One scan: the clients per card (by drm-pdev) and how many processes could not be read."""

    cards: Mapping[str, CardClients]
    unreadable_pids: int  # another user's processes (EACCES): their GPU use is unknown
    walked_all: bool  # every process's fd table was walked in this read


def parse_fdinfo(text: str) -> FdinfoClient | None:
    """The usage stats in one /proc/PID/fdinfo/N text; None when it is not a DRM fd."""
    driver = pdev = client_id = ""
    engine_ns: int | None = None
    cycles: int | None = None
    resident: dict[str, int] = {}
    legacy: dict[str, int] = {}  # drm-memory-<region>: amdgpu's alias of drm-resident-<region>
    for line in text.splitlines():
        key, sep, raw = line.partition(":")
        if not sep or not key.startswith("drm-"):
            continue
        value = raw.strip()
        if key == "drm-driver":
            driver = value
        elif key == "drm-pdev":
            pdev = value.lower()
        elif key == "drm-client-id":
            client_id = value
        elif key.startswith("drm-engine-") and not key.startswith("drm-engine-capacity-"):
            number = _number(value, ("ns",))
            if number is not None:
                engine_ns = (engine_ns or 0) + number
        elif key.startswith("drm-cycles-"):
            number = _number(value, ("",))
            if number is not None:
                cycles = (cycles or 0) + number
        elif key.startswith("drm-resident-"):
            _add_bytes(resident, key[len("drm-resident-") :], value)
        elif key.startswith("drm-memory-"):
            _add_bytes(legacy, key[len("drm-memory-") :], value)
    if not driver:
        return None
    # amdgpu since 6.11 prints both drm-memory-<r> and drm-resident-<r>: count each region once.
    memory_bytes = sum({**legacy, **resident}.values())
    return FdinfoClient(driver, pdev, client_id, engine_ns, cycles, memory_bytes)


class DrmClients:
    """Reads the DRM clients of every process, one scan of /proc per `read()`.

    `proc_root` is /proc or $CARBONWRAP_PROC_ROOT. Only fds whose link points into /dev/dri/
    have their fdinfo read. Busy is the increase since the previous `read()`, per client
    (drm-pdev, drm-client-id), so a client seen through several fds (dup, fork) counts once,
    for the lowest PID holding it; the first read walks every process and is the baseline (no
    busy). Processes that end mid-scan are skipped; those we may not read are counted in
    `DrmUse.unreadable_pids`. `walk_fds_per_read`: see WALK_FDS_PER_READ (None: walk every
    process at every read).
    """

    def __init__(
        self,
        proc_root: str | os.PathLike[str],
        walk_fds_per_read: int | None = WALK_FDS_PER_READ,
    ) -> None:
        self._proc = os.fspath(proc_root)
        self._budget = walk_fds_per_read
        self._first = True
        self._queue: deque[int] = deque()  # walked PIDs, the one walked longest ago first
        self._drm_fds: dict[int, list[str]] = {}  # pid -> DRM fd names, from its last walk
        self._refused: set[int] = set()  # PIDs whose fd table or fdinfo we may not read
        self._previous: dict[str, dict[tuple[str, str], tuple[int, float]]] = {}
        self._high: dict[tuple[str, str], float] = {}  # largest busy seen per client
        self.last: DrmUse | None = None  # the latest scan, for its unreadable_pids
        self._served: set[str] = set()  # cards `for_card` answered from `last`

    def for_card(self, pci_bus_id: str) -> tuple[Mapping[int, int], Mapping[int, float]] | None:
        """(pid -> bytes, pid -> busy) of one card, for a backend that reads card by card
        (amdsmi_gpu's `clients`); None when /proc cannot be scanned.

        One scan serves every card of a reading: the first card asked starts it, and a card asked
        again starts the next one (the next reading). A card without clients gives empty maps.
        """
        card = pci_bus_id.lower()
        if self.last is None or card in self._served:
            try:
                self.read()
            except OSError:
                return None
        self._served.add(card)
        assert self.last is not None
        use = self.last.cards.get(card)
        return (use.memory_bytes, use.busy) if use else (EMPTY, EMPTY)

    def read(self) -> DrmUse:
        """Scan now. OSError only when the /proc root itself cannot be listed."""
        pids = {int(name) for name in os.listdir(self._proc) if name.isdigit()}
        # Forget PIDs that ended, so a reused PID is walked afresh.
        queued = [pid for pid in self._queue if pid in pids]
        self._refused &= pids
        for pid in [p for p in self._drm_fds if p not in pids]:
            del self._drm_fds[pid]
        known = set(queued)
        fresh = sorted(pids - known)
        looked = sum(self._walk(pid) for pid in fresh)
        self._queue = deque(queued)
        self._queue.extend(fresh)
        rewalked = 0
        budget = None if self._first else self._budget
        while rewalked < len(queued) and (budget is None or looked < budget):
            pid = self._queue.popleft()
            looked += self._walk(pid)
            self._queue.append(pid)
            rewalked += 1
        first, self._first = self._first, False
        clients = self._read_clients()
        walked_all = rewalked == len(queued)
        self.last = DrmUse(self._per_card(clients, first), len(self._refused), walked_all)
        self._served = set()
        return self.last

    # -- the walk --

    def _walk(self, pid: int) -> int:
        """Find the DRM fds of one process, a readlink per fd relative to its fd directory;
        return the cost in readlinks (one more for opening and listing the directory)."""
        self._drm_fds.pop(pid, None)
        self._refused.discard(pid)
        try:
            dir_fd = os.open(f"{self._proc}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except PermissionError:
            self._refused.add(pid)
            return 1
        except OSError:
            return 1  # ended since the listing (ENOENT, ESRCH)
        names: list[str] = []
        found = []
        try:
            names = os.listdir(dir_fd)
            for name in names:
                try:
                    target = os.readlink(name, dir_fd=dir_fd)
                except OSError:
                    continue  # closed since the listing
                if target.startswith(_DRI_PREFIX):
                    found.append(name)
        except PermissionError:
            self._refused.add(pid)
        except OSError:
            pass  # ended while being walked
        finally:
            os.close(dir_fd)
        if found:
            self._drm_fds[pid] = found
        return 1 + len(names)

    def _read_clients(self) -> dict[tuple[str, str], tuple[int, FdinfoClient, list[int]]]:
        """Every DRM client once: key -> (owning PID, stats, other PIDs holding it)."""
        clients: dict[tuple[str, str], tuple[int, FdinfoClient, list[int]]] = {}
        for pid in sorted(self._drm_fds):
            for fd in self._drm_fds[pid]:
                try:
                    with open(f"{self._proc}/{pid}/fdinfo/{fd}", "rb") as file:
                        text = file.read(_READ_SIZE).decode("ascii", "replace")
                except PermissionError:
                    self._refused.add(pid)
                    continue
                except OSError:
                    continue  # the fd was closed or the process ended since the walk
                client = parse_fdinfo(text)
                if client is None or not client.pdev:
                    continue  # no longer a DRM fd, or not a PCI device
                key = (client.pdev, client.client_id or f"fd:{pid}/{fd}")
                held = clients.get(key)
                if held is None:
                    clients[key] = (pid, client, [])
                elif pid != held[0] and pid not in held[2]:
                    held[2].append(pid)  # the same drm_file through fork or SCM_RIGHTS
        return clients

    def _per_card(
        self, clients: Mapping[tuple[str, str], tuple[int, FdinfoClient, list[int]]], first: bool
    ) -> dict[str, CardClients]:
        memory: dict[str, dict[int, int]] = {}
        current: dict[str, dict[tuple[str, str], tuple[int, float]]] = {}
        units: dict[str, str] = {}
        high: dict[tuple[str, str], float] = {}
        for key, (pid, client, others) in clients.items():
            pdev = key[0]
            card_memory = memory.setdefault(pdev, {})
            card_memory[pid] = card_memory.get(pid, 0) + client.memory_bytes
            for other in others:
                card_memory.setdefault(other, 0)
            unit, busy = client.busy
            units.setdefault(pdev, unit)
            # The spec lets a counter dip briefly: stay with the larger value until it catches up.
            high[key] = max(float(busy), self._high.get(key, 0.0))
            current.setdefault(pdev, {})[key] = (pid, high[key])
        self._high = high
        cards = {}
        for pdev, card_memory in memory.items():
            busy_by_pid = (
                EMPTY if first else busy_deltas(self._previous.get(pdev, {}), current[pdev])
            )
            cards[pdev] = CardClients(card_memory, busy_by_pid, units[pdev])
        self._previous = current
        return cards


def _number(value: str, units: tuple[str, ...]) -> int | None:
    """`<uint>` followed by one of `units` ("" for none); None for anything else."""
    number, _, unit = value.partition(" ")
    if not number.isdigit() or unit.strip() not in units:
        return None
    return int(number)


def _add_bytes(regions: dict[str, int], region: str, value: str) -> None:
    number, _, unit = value.partition(" ")
    scale = _UNIT_BYTES.get(unit.strip())
    if number.isdigit() and scale is not None:
        regions[region] = regions.get(region, 0) + int(number) * scale
