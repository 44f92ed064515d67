"""Which Intel GPUs ZE_AFFINITY_MASK lets a command see, as Intel's Level Zero runtime reads it.

Sources: the Level Zero specification's environment variables
(https://oneapi-src.github.io/level-zero-spec/level-zero/latest/core/PROG.html#environment-variables),
Intel's "Flattening GPU tile hierarchy"
(https://www.intel.com/content/www/us/en/developer/articles/technical/flattening-gpu-tile-hierarchy.html)
and compute-runtime's parser, `ExecutionEnvironment::parseAffinityMask` and `sortNeoDevices` in
intel/compute-runtime shared/source/execution_environment/execution_environment.cpp: an empty
mask (or "default") shows every device; an entry naming no device is skipped, not fatal; in the
FLAT (default since late 2023) and COMBINED hierarchies each tile is a device of its own, in
COMPOSITE each card is one device and "N.M" is tile M of card N; the device order is the PCI
bus order only with ZE_ENABLE_PCI_ID_DEVICE_ORDER=1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

COMPOSITE = "COMPOSITE"


def ze_visible_cards(
    environ: Mapping[str, str], tiles: Sequence[int], notes: list[str]
) -> list[int]:
    """Positions in `tiles` of the cards the command may use, in position order.

    `tiles`: the tile count of every Intel GPU, in PCI bus order (1 for single-tile cards).
    A card counts when the mask names any of its tiles: energy is measured per card.
    Explanations are appended to `notes`.
    """
    mask = environ.get("ZE_AFFINITY_MASK", "").strip()
    if not mask or mask == "default":
        return list(range(len(tiles)))
    hierarchy = environ.get("ZE_FLAT_DEVICE_HIERARCHY", "").strip().upper() or "FLAT"
    per_tile = hierarchy != COMPOSITE
    # Device index -> card position: one device per tile (FLAT, COMBINED) or per card.
    owner = [card for card, count in enumerate(tiles) for _ in range(max(1, count))]
    if not per_tile:
        owner = list(range(len(tiles)))
    if len(tiles) > 1 and environ.get("ZE_ENABLE_PCI_ID_DEVICE_ORDER", "") != "1":
        notes.append(
            "ZE_AFFINITY_MASK uses indices on a machine with several Intel GPUs: Level Zero "
            "numbers them in PCI bus order only with ZE_ENABLE_PCI_ID_DEVICE_ORDER=1, so the "
            "indices may name other GPUs than assumed here (PCI order)"
        )
    chosen: set[int] = set()
    for raw in mask.split(","):
        entry = raw.strip()
        root, _, _sub = entry.partition(".")
        if not root.isdigit() or int(root) >= len(owner):
            notes.append(f"ZE_AFFINITY_MASK entry {entry!r} names no Intel GPU here: ignored")
            continue
        chosen.add(owner[int(root)])
    return sorted(chosen)
