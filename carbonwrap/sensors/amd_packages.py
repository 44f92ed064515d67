"""Which AMD GPU dies share one package: an MI250 or MI250X is two dies (GCDs) that amdsmi lists
as two GPUs, but only one of them reports the package's power and energy.

The kernel reports power and energy on the primary die only and 0 on the secondary
("drm/amd/pm: Only primary die supports power data",
https://lists.freedesktop.org/archives/amd-gfx/2021-June/065161.html); rocm-smi prints
"N/A (Secondary die)" for it and says the primary die is "usually one above or below"
(ROCm/rocm_smi_lib python_smi_tools/rocm_smi.py, checkIfSecondaryDie, showPower). So a
package is measured as one device: the sum of its dies (the secondary adds 0), shared by the
processes of both dies. The two dies of a package are found by their board serial (both read
the one FRU EEPROM of the OAM module: amdsmi_get_gpu_board_info "product_serial", from
/sys/class/drm/cardN/device/serial_number), else by amdsmi's order, in pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# PCI device id of Aldebaran, the MI250 and MI250X (both 1002:740c:
# https://instinct.docs.amd.com/projects/system-acceptance/en/latest/gpus/mi250.html).
DUAL_DIE_DEVICE_IDS = frozenset({0x740C})
DUAL_DIE_NAMES = ("MI250",)


class DieFacts(NamedTuple):
    """What amdsmi says of one GPU it lists."""

    amdsmi_index: int
    name: str
    device_id: int | None
    board_serial: str  # "" where unknown


def is_dual_die(die: DieFacts) -> bool:
    """One die of a two-die package (MI250, MI250X)."""
    if die.device_id is not None:
        return die.device_id in DUAL_DIE_DEVICE_IDS
    return any(model in die.name.upper() for model in DUAL_DIE_NAMES)


def packages(dies: Sequence[DieFacts], notes: list[str]) -> list[tuple[int, ...]]:
    """The dies grouped by package, each group's indices ascending, groups by first index.

    Single-die GPUs are groups of one. Dual-die dies pair by a board serial exactly two of
    them share; the rest pair in amdsmi's order (noted: the serial could not tell); a die left
    without a partner (its twin not listed, e.g. hidden from a container) stays alone, noted.
    """
    groups: list[tuple[int, ...]] = [(d.amdsmi_index,) for d in dies if not is_dual_die(d)]
    dual = sorted((d for d in dies if is_dual_die(d)), key=lambda d: d.amdsmi_index)
    by_serial: dict[str, list[int]] = {}
    for die in dual:
        if die.board_serial:
            by_serial.setdefault(die.board_serial, []).append(die.amdsmi_index)
    paired = {i for pair in by_serial.values() if len(pair) == 2 for i in pair}
    groups += [tuple(pair) for pair in by_serial.values() if len(pair) == 2]
    rest = [d.amdsmi_index for d in dual if d.amdsmi_index not in paired]
    by_order = [tuple(rest[i : i + 2]) for i in range(0, len(rest) - 1, 2)]
    if by_order:
        notes.append(
            "two-die GPUs without a board serial to pair them by: taken in amdsmi's order as "
            f"packages {', '.join('+'.join(map(str, pair)) for pair in by_order)}"
        )
    groups += by_order
    if len(rest) % 2:
        lone = rest[-1]
        notes.append(
            f"GPU {lone} is one die of a two-die package whose other die is not listed here: "
            "if it is the secondary die its power and energy read 0 (the package's are reported "
            "on the other die)"
        )
        groups.append((lone,))
    return sorted(groups)
