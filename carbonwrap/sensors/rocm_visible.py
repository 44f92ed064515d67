"""Which AMD GPUs a command sees, as ROCm reads ROCR_VISIBLE_DEVICES and then HIP's
HIP_VISIBLE_DEVICES (else CUDA_VISIBLE_DEVICES) over the devices ROCr leaves.

https://rocm.docs.amd.com/en/latest/conceptual/gpu-isolation.html (what each variable is for).
The exact rules are the runtimes' own code:
- ROCr: RvdFilter in ROCm/rocm-systems projects/rocr-runtime/runtime/hsa-runtime/core/inc/
  amd_filter_device.h and core/runtime/amd_filter_device.cpp: tokens trimmed and upper-cased;
  an index (strtol, base 0) or a UUID prefix "GPU-…" that must match exactly one device; the
  first token that is out of range, repeated, unknown or ambiguous ends the list; an empty
  value shows no GPU; tokens beyond the number of GPUs are ignored.
- HIP: ROCm/clr rocclr/device/rocm/rocdevice.cpp (Device::init): HIP_VISIBLE_DEVICES when set,
  else CUDA_VISIBLE_DEVICES; an entry is a decimal index exactly as printed, or "GPU-…" found
  within a device's UUID (first match); the first invalid entry ends the list, a repeated one is
  skipped. An empty value is read as " " (rocclr/utils/flags.cpp), which is invalid: no GPU.
GPU_DEVICE_ORDINAL is read only by OpenCL (rocdevice.cpp uses it when the runtime is not HIP),
so it is not applied here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from carbonwrap.sensors.gpu import GpuInfo

ROCR = "ROCR_VISIBLE_DEVICES"
HIP = "HIP_VISIBLE_DEVICES"
CUDA = "CUDA_VISIBLE_DEVICES"

_UUID_MIN, _UUID_MAX = 5, 20  # RvdFilter::ProcessUuidToken: "GPU-" plus 1 to 16 hex digits
_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]+")


def empty_variable(environ: Mapping[str, str]) -> str | None:
    """The variable that, set but empty, leaves the command no GPU; None if there is none."""
    if not environ.get(ROCR, "x").strip():
        return ROCR
    hip_name = HIP if HIP in environ else CUDA if CUDA in environ else None
    if hip_name is not None and not environ[hip_name].strip():
        return hip_name
    return None


def visible_indices(
    environ: Mapping[str, str], devices: Sequence[tuple[int, str]], notes: list[str]
) -> list[int]:
    """The amdsmi indices the command sees, in the runtime's order, without repeats.

    `devices`: (amdsmi index, ROCr UUID "GPU-<16 hex digits>" or "" where unknown) in ROCr's
    enumeration order, taken to be amdsmi's (both list the devices the driver exposes in the
    order it probed them). Explanations are appended to `notes`.
    """
    chosen = list(devices)
    rocr = environ.get(ROCR)
    if rocr is not None:
        chosen = _rocr_filter(rocr, chosen, notes)
    hip_name = HIP if HIP in environ else CUDA if CUDA in environ else None
    if hip_name is not None:
        chosen = _hip_filter(hip_name, environ[hip_name], chosen, notes)
    indices = [index for index, _ in chosen]
    if (rocr is not None or hip_name is not None) and indices:
        named = " and ".join(f"{n}={environ[n]!r}" for n in (ROCR, hip_name) if n and n in environ)
        notes.append(f"{named}: the command sees GPU(s) {', '.join(map(str, indices))}")
    return indices


def select_amd_cards(
    cards: Sequence[GpuInfo], environ: Mapping[str, str], notes: list[str] | None = None
) -> list[GpuInfo]:
    """The AMD cards (in the runtime's enumeration order: the driver's, by PCI bus) that the
    command sees; a card's UUID counts where it is ROCr's form ("GPU-" and 16 hex digits)."""
    if empty_variable(environ) is not None:
        return []
    listed = [(i, c.uuid if _is_rocr_uuid(c.uuid) else "") for i, c in enumerate(cards)]
    return [cards[i] for i in visible_indices(environ, listed, [] if notes is None else notes)]


def _is_rocr_uuid(uuid: str) -> bool:
    return (
        len(uuid) == 20 and uuid.upper().startswith("GPU-") and _HEX.fullmatch(uuid[4:]) is not None
    )


def _rocr_filter(
    value: str, devices: list[tuple[int, str]], notes: list[str]
) -> list[tuple[int, str]]:
    chosen: list[tuple[int, str]] = []
    if not value.strip():
        return chosen
    tokens = [t.strip().upper() for t in value.split(",")]
    for token in tokens[: len(devices)]:
        position = _rocr_position(token, devices)
        if position is None or devices[position] in chosen:
            notes.append(
                f"{ROCR} entry {token!r} names no further GPU here: ROCr ignores it and "
                "every entry after it"
            )
            break
        chosen.append(devices[position])
    return chosen


def _rocr_position(token: str, devices: list[tuple[int, str]]) -> int | None:
    if token.startswith("G"):
        if not _UUID_MIN <= len(token) <= _UUID_MAX:
            return None
        matches = [i for i, (_, uuid) in enumerate(devices) if uuid.upper().startswith(token)]
        return matches[0] if len(matches) == 1 else None
    position = _strtol(token)
    return position if position is not None and 0 <= position < len(devices) else None


def _strtol(token: str) -> int | None:
    """The whole token as C's strtol(token, &end, 0) reads it, or None if anything is left."""
    sign, digits = (-1, token[1:]) if token.startswith("-") else (1, token.removeprefix("+"))
    try:
        if digits.upper().startswith("0X"):
            return sign * int(digits[2:], 16)
        if digits.startswith("0") and len(digits) > 1:
            return sign * int(digits[1:], 8)
        return sign * int(digits, 10) if _DECIMAL.fullmatch(digits) else None
    except ValueError:
        return None


def _hip_filter(
    name: str, value: str, devices: list[tuple[int, str]], notes: list[str]
) -> list[tuple[int, str]]:
    chosen: list[tuple[int, str]] = []
    entries = (value or " ").split(",")
    if len(entries) > 1 and not entries[-1]:
        entries.pop()  # HIP stops at the end of the string: one trailing comma adds nothing
    # HSA_AMD_AGENT_INFO_UUID is "GPU-" and 16 lower-case hex digits (ROCr amd_gpu_agent.cpp);
    # HIP looks for the entry within it, case-sensitively.
    agents = [f"GPU-{uuid[4:].lower()}" if uuid else "" for _, uuid in devices]
    for entry in entries:
        position: int | None = None
        if "GPU-" in entry:
            found = [i for i, agent in enumerate(agents) if agent and entry in agent]
            position = found[0] if found else None
        elif _DECIMAL.fullmatch(entry) and str(int(entry)) == entry:
            position = int(entry) if int(entry) < len(devices) else None
        if position is None:
            notes.append(
                f"{name} entry {entry!r} names no GPU among those ROCr shows: HIP ignores it "
                "and every entry after it"
            )
            break
        if devices[position] not in chosen:
            chosen.append(devices[position])
    return chosen
