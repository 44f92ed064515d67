"""Which GPUs CUDA_VISIBLE_DEVICES lets a command see, as CUDA reads it: indices, unique UUID
prefixes and MIG ids, up to the first entry that names no device.

https://docs.nvidia.com/cuda/cuda-programming-guide/05-appendices/environment-variables.html
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def visible_indices(
    visible: str,
    uuids: Mapping[int, str],
    mig_parent_uuid: Callable[[str], str | None],
    notes: list[str],
) -> list[int]:
    """NVML indices named by `visible`, in its order, without repeats.

    `uuids`: NVML index -> GPU UUID of the GPUs that could be opened; `mig_parent_uuid`: the UUID
    of the GPU holding a MIG device (None if unknown). Explanations are appended to `notes`.
    """
    chosen: list[int] = []
    by_uuid = {uuid: index for index, uuid in uuids.items()}
    for raw in visible.split(","):
        entry = raw.strip()
        index: int | None = None
        if entry.isdigit():
            index = int(entry) if int(entry) in uuids else None
        elif entry.startswith("GPU-"):
            matches = [i for u, i in by_uuid.items() if u.startswith(entry)]
            index = matches[0] if len(matches) == 1 else None  # CUDA wants a unique prefix
        elif entry.startswith("MIG-"):
            index = _mig_index(entry, by_uuid, mig_parent_uuid, notes)
        if index is None:
            # CUDA makes only the devices before the first invalid entry visible.
            if chosen or entry:
                notes.append(
                    f"CUDA_VISIBLE_DEVICES entry {entry!r} names no GPU here: CUDA ignores it "
                    "and every entry after it"
                )
            break
        if index not in chosen:
            chosen.append(index)
    return chosen


def _mig_index(
    entry: str,
    by_uuid: Mapping[str, int],
    mig_parent_uuid: Callable[[str], str | None],
    notes: list[str],
) -> int | None:
    if entry.startswith("MIG-GPU-") and "/" in entry:
        parent_uuid: str | None = entry[len("MIG-") :].split("/", 1)[0]  # MIG-<GPU>/<GI>/<CI>
    else:
        parent_uuid = mig_parent_uuid(entry)  # MIG-<UUID>, R470 and newer
    index = by_uuid.get(parent_uuid) if parent_uuid else None
    if index is not None:
        notes.append(
            f"CUDA_VISIBLE_DEVICES entry {entry} is a MIG instance of GPU {index}: measured "
            "as the whole board"
        )
    return index
