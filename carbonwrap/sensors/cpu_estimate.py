"""CPU and DRAM power estimates (W) for when no energy counter can be read."""

import csv
import functools
import io
import os
import re
from typing import NamedTuple

# Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021, doi:10.1002/advs.202100707):
# 12 W per core for an unknown CPU (TDP_cpu.csv, row "Any") and 0.3725 W per GB of memory
# (referenceValues.csv, memoryPower), github.com/GreenAlgorithms/green-algorithms-tool.
_GREEN_ALGORITHMS = "Green Algorithms, Lannelongue, Grealey & Inouye, Adv. Sci. 2021"
DEFAULT_W_PER_CPU = 12.0
DRAM_W_PER_GB = 0.3725
DRAM_BASIS = f"estimate: {DRAM_W_PER_GB} W per GB of resident memory ({_GREEN_ALGORITHMS})"

# Arm's MIDR part numbers for implementer 0x41 (Arm Ltd), from the Arm technical reference manuals.
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}


class PowerEstimate(NamedTuple):
    """Power of one busy logical CPU; times the tree's CPU-seconds gives joules."""

    watts_per_cpu: float
    basis: str


class _TdpRow(NamedTuple):
    label: str
    key: str  # normalised model name, matched as whole space-separated words
    tdp_w: float
    threads: int
    source: str


def cpu_model_name(proc_root: str | os.PathLike[str] = "/proc") -> str:
    """The CPU model from cpuinfo: x86 "model name", else the Arm core name; "" if unknown."""
    try:
        with open(os.path.join(proc_root, "cpuinfo"), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in fields:
            fields[key] = value.strip()
    if fields.get("model name"):
        return fields["model name"]
    implementer = fields.get("CPU implementer", "").lower()
    part = fields.get("CPU part", "").lower()
    if implementer == "0x41" and part in _ARM_PARTS:
        return f"ARM {_ARM_PARTS[part]}"
    if implementer and part:
        return f"ARM implementer {implementer} part {part}"
    return fields.get("Hardware", "")


def estimate_cpu_power(model_name: str, logical_cpus: int) -> PowerEstimate:
    """W per busy logical CPU: the model's TDP / threads, else the documented default."""
    if logical_cpus < 1:
        raise ValueError(f"logical_cpus must be at least 1, got {logical_cpus}")
    row = _lookup(normalise_model_name(model_name))
    if row is not None:
        watts = row.tdp_w / row.threads
        return PowerEstimate(
            watts_per_cpu=watts,
            basis=(
                f"estimate: {row.label}: TDP {row.tdp_w:g} W / {row.threads} threads = "
                f"{watts:.2f} W per busy logical CPU ({row.source})"
            ),
        )
    why = (
        f"CPU model {model_name.strip()!r} is not in carbonwrap's TDP table"
        if model_name.strip()
        else "the CPU model is unknown"
    )
    return PowerEstimate(
        watts_per_cpu=DEFAULT_W_PER_CPU,
        basis=(
            f"default estimate: {DEFAULT_W_PER_CPU:g} W per busy logical CPU, the value for an "
            f"unknown CPU ({_GREEN_ALGORITHMS}, 12 W per core); {why} "
            f"({logical_cpus} logical CPUs)"
        ),
    )


def normalise_model_name(name: str) -> str:
    """Lower case, no (R)/(TM)/clock/"N-Core Processor", single spaces."""
    text = name.lower()
    # Each pattern needs its marker; testing for it first skips the regex for the table's own
    # names (~40 at start-up), which have none.
    if "(" in text or "®" in text or "™" in text:
        text = re.sub(r"\((?:r|tm)\)|[®™]", " ", text)
    if "@" in text:
        text = re.sub(r"(?:\bcpu\s*)?@\s*[\d.]+\s*[gm]hz", " ", text)
    if "processor" in text:
        text = re.sub(r"\b\d+-core processor\b|\bprocessor\b", " ", text)
    return " ".join(text.split())


def _lookup(normalised: str) -> _TdpRow | None:
    """The longest table entry found as whole words in the normalised name."""
    for row in _table():
        if f" {row.key} " in f" {normalised} ":
            return row
    return None


@functools.cache
def _table() -> tuple[_TdpRow, ...]:
    """The packaged cpu_tdp.csv, longest match first."""
    from carbonwrap.packagedata import read_data

    text = read_data("cpu_tdp.csv").decode("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows: list[_TdpRow] = []
    for record in csv.DictReader(io.StringIO("\n".join(lines))):
        key = normalise_model_name(record["match"])
        rows.append(
            _TdpRow(
                label=record["match"],
                # Whole words only: "gold 6248" must not match "gold 6248r", a different part.
                key=key,
                tdp_w=float(record["tdp_w"]),
                threads=int(record["threads"]),
                source=record["source"],
            )
        )
    rows.sort(key=lambda row: len(row.key), reverse=True)
    return tuple(rows)
