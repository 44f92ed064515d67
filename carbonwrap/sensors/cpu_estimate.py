"""CPU and DRAM power estimates (W) for when no energy counter can be read."""

from __future__ import annotations

import os

from carbonwrap.lite import NamedTuple, cache
from carbonwrap.packagedata import csv_rows

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping

# Green Algorithms (Lannelongue, Grealey & Inouye, Adv. Sci. 2021, doi:10.1002/advs.202100707):
# 12 W per core for an unknown CPU (TDP_cpu.csv, row "Any") and 0.3725 W per GB of memory
# (referenceValues.csv, memoryPower), github.com/GreenAlgorithms/green-algorithms-tool.
_GREEN_ALGORITHMS = "Green Algorithms, Lannelongue, Grealey & Inouye, Adv. Sci. 2021"
DEFAULT_W_PER_CPU = 12.0
DRAM_W_PER_GB = 0.3725
DRAM_BASIS = f"estimate: {DRAM_W_PER_GB} W per GB of resident memory ({_GREEN_ALGORITHMS})"

# Arm's MIDR part numbers for implementer 0x41 (Arm Ltd), from the Arm technical reference manuals
# (the same numbers as ARM_CPU_PART_* in the kernel's arch/arm64/include/asm/cputype.h). arm64
# cpuinfo has no "model name": Graviton2 and Ampere Altra both read as Neoverse-N1.
_ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd08": "Cortex-A72",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}
AMD_VENDORS = ("AuthenticAMD", "HygonGenuine")  # cpuinfo vendor_id of AMD Zen and Hygon Dhyana

_TABLE = "cpu_tdp.csv"
_INSTANCES = "cloud_instance_cpus.csv"
_INSTANCES_HEADER = ["provider", "family", "cpu_model", "microarchitecture", "source"]
# A cloud instance type: AWS "m5.large", Google "n2d-standard-8" (compiled on first use).
_INSTANCE_TYPE = r"[a-z][a-z0-9]*(?:[.-][a-z0-9-]+)+"


class PowerEstimate(NamedTuple):
    """Power of one busy logical CPU; times the tree's CPU-seconds gives joules."""

    watts_per_cpu: float
    basis: str


class CloudInstance(NamedTuple):
    """A cloud VM's provider ("aws", "gcp") and instance type ("m5.large")."""

    provider: str
    instance_type: str


class _TdpRow(NamedTuple):
    label: str
    key: str  # normalised model name, matched as whole space-separated words
    tdp_w: float
    threads: int
    source: str


# Bytes of /proc/cpuinfo read first: its first CPU's block names the model near its top on x86
# (~1.5 KiB a block). The kernel makes the file a CPU at a time, and each CPU's block costs an
# interrupt of that CPU for its current frequency (~0.1 ms each on the development VM): a read
# this short makes only the first block.
_CPUINFO_FIRST = 1024


def cpu_model_name(proc_root: str | os.PathLike[str] = "/proc") -> str:
    """The CPU model from cpuinfo: x86 "model name", else the Arm core name; "" if unknown."""
    return model_name(cpuinfo_fields(proc_root))


def model_name(fields: Mapping[str, str]) -> str:
    """`cpu_model_name` from cpuinfo's fields (`cpuinfo_fields`)."""
    if fields.get("model name"):
        return fields["model name"]
    implementer = fields.get("CPU implementer", "").lower()
    part = fields.get("CPU part", "").lower()
    if implementer == "0x41" and part in _ARM_PARTS:
        return f"ARM {_ARM_PARTS[part]}"
    if implementer and part:
        return f"ARM implementer {implementer} part {part}"
    return fields.get("Hardware", "")


def cpu_vendor(proc_root: str | os.PathLike[str] = "/proc") -> str:
    """cpuinfo's vendor_id ("GenuineIntel", "AuthenticAMD", "HygonGenuine"); "" if none (Arm)."""
    return cpuinfo_fields(proc_root).get("vendor_id", "")


def cpuinfo_fields(proc_root: str | os.PathLike[str] = "/proc") -> dict[str, str]:
    """The first value of each field of cpuinfo (the first CPU's block); {} if unreadable.

    x86 names the model in every CPU's block: the start of the first is enough (_CPUINFO_FIRST),
    where the whole file costs ~0.1 ms of the kernel's time per CPU at every run's start.
    Elsewhere (Arm: "Hardware" may come after the last CPU) the whole file is read. Read once
    per question: a caller that needs two fields asks once (measure/meters.py)."""
    try:
        fd = os.open(os.path.join(proc_root, "cpuinfo"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        first = os.read(fd, _CPUINFO_FIRST)
        head = first.partition(b"\n\n")[0]
        if b"\nmodel name" in b"\n" + head:
            text = first[: first.rfind(b"\n") + 1]  # whole lines only
        else:
            chunks = [first]
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            text = b"".join(chunks)
    except OSError:
        return {}
    finally:
        os.close(fd)
    fields: dict[str, str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key not in fields:
            fields[key] = value.strip()
    return fields


def cloud_instance(sysfs_root: str | os.PathLike[str] = "/sys") -> CloudInstance | None:
    """The instance type where the VM's firmware names it; None elsewhere.

    Only AWS does: on Nitro instances the DMI system vendor is "Amazon EC2" and the product name
    the instance type ("m5.large"); Xen-based ones say "Xen"/"HVM domU" (AWS, "Identify EC2
    Linux instances": /sys/devices/virtual/dmi/id/; systemd src/basic/virt.c lists the vendor).
    Google ("Google Compute Engine") and Azure ("Virtual Machine") name only themselves there:
    their machine type is in the metadata server, which this read-only probe does not ask.
    """
    dmi = os.path.join(sysfs_root, "class", "dmi", "id")
    vendor = _read_text(os.path.join(dmi, "sys_vendor"))
    product = _read_text(os.path.join(dmi, "product_name")).lower()
    if vendor == "Amazon EC2":
        import re  # only on AWS (start-up)

        if re.fullmatch(_INSTANCE_TYPE, product):
            return CloudInstance("aws", product)
    return None


def estimate_cpu_power(
    model_name: str, logical_cpus: int, instance: CloudInstance | None = None
) -> PowerEstimate:
    """W per busy logical CPU: the model's TDP / threads; where cpuinfo's model is generic or
    unknown ("AMD EPYC Processor" in a VM), the CPU of the cloud instance type; else the
    documented default."""
    if logical_cpus < 1:
        raise ValueError(f"logical_cpus must be at least 1, got {logical_cpus}")
    row = lookup_model(model_name)
    via = ""
    if row is None and instance is not None:
        known = instance_cpu_model(instance)
        if known is not None:
            row = lookup_model(known[0])
            seen = f"cpuinfo says {model_name.strip()!r}" if model_name.strip() else "no cpuinfo"
            via = f"; {instance.provider} {instance.instance_type} runs on it ({known[1]}; {seen})"
    if row is not None:
        watts = row.tdp_w / row.threads
        return PowerEstimate(
            watts_per_cpu=watts,
            basis=(
                f"estimate: {row.label}: TDP {row.tdp_w:g} W / {row.threads} threads = "
                f"{watts:.2f} W per busy logical CPU ({row.source}){via}"
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
    """Lower case, no (R)/(TM)/"CPU"/clock/"N-Core Processor", single spaces.

    Written with str methods, not `re` (every run on a host without RAPL looks its CPU up at
    start-up); tests/unit/sensors/test_cpu_model_names.py holds it to these substitutions:
    `\\s*(?:\\((?:r|tm)\\)|[®™])\\s*(?=-)` → "" ("fx(tm)-8350": one word), then
    `\\((?:r|tm)\\)|[®™]` → " ", `@\\s*[\\d.]+\\s*[gm]hz` → " ", `\\bcpu\\b` → " ",
    `\\b\\w+-cores?\\b` → " " ("64-Core", "Eight-Core", "64-Cores") and `\\bprocessor\\b` → " ".
    """
    text = name.lower()
    if "(" in text or "®" in text or "™" in text:
        text = _drop_marks(text)
    if "@" in text:
        text = _drop_clock(text)
    if "cpu" in text:
        text = _drop_word(text, "cpu")
    if "-core" in text:
        text = _drop_core_counts(text)
    if "processor" in text:
        text = _drop_word(text, "processor")
    return " ".join(text.split())


_MARKS = ("(r)", "(tm)", "®", "™")


def _is_word(ch: str) -> bool:
    """A character of \\w: a letter or digit of any script, or "_"."""
    return ch.isalnum() or ch == "_"


def _mark_at(text: str, at: int) -> int:
    """The length of the trademark sign at `at`, 0 if none."""
    for mark in _MARKS:
        if text.startswith(mark, at):
            return len(mark)
    return 0


def _drop_marks(text: str) -> str:
    """(r), (tm), ® and ™ gone with the white space around them before a "-" (first, over
    the whole text), then each one left a space."""
    out: list[str] = []
    at = 0
    while at < len(text):
        size = _mark_at(text, at)
        after = at + size
        while size and after < len(text) and text[after].isspace():
            after += 1
        if size and after < len(text) and text[after] == "-":
            while out and out[-1].isspace():  # the white space before it goes too
                out.pop()
            at = after
        else:
            out.append(text[at : at + max(size, 1)])
            at += max(size, 1)
    text = "".join(out)
    for mark in _MARKS:
        text = text.replace(mark, " ")
    return text


def _drop_clock(text: str) -> str:
    """ "@ 2.50ghz" (or mhz) → a space; an "@" not followed by a clock stays."""
    out: list[str] = []
    at = 0
    while (found := text.find("@", at)) >= 0:
        end = found + 1
        while end < len(text) and text[end].isspace():
            end += 1
        digits = end
        while end < len(text) and (text[end].isdecimal() or text[end] == "."):
            end += 1
        if end > digits:
            while end < len(text) and text[end].isspace():
                end += 1
            if text.startswith(("ghz", "mhz"), end):
                out.append(text[at:found] + " ")
                at = end + 3
                continue
        out.append(text[at : found + 1])
        at = found + 1
    out.append(text[at:])
    return "".join(out)


def _drop_word(text: str, word: str) -> str:
    """Each `word` standing alone (no letter, digit or "_" on either side) → a space."""
    out: list[str] = []
    at = 0
    while (found := text.find(word, at)) >= 0:
        end = found + len(word)
        alone = (found == 0 or not _is_word(text[found - 1])) and (
            end == len(text) or not _is_word(text[end])
        )
        out.append(text[at:found] + (" " if alone else word))
        at = end
    out.append(text[at:])
    return "".join(out)


def _drop_core_counts(text: str) -> str:
    """Each "N-core" or "N-cores" word (N: letters or digits) → a space."""
    out: list[str] = []
    at = 0
    while (found := text.find("-core", at)) >= 0:
        start = found
        while start > at and _is_word(text[start - 1]):
            start -= 1
        end = found + len("-core")
        if text.startswith("s", end) and (end + 1 == len(text) or not _is_word(text[end + 1])):
            end += 1
        alone = end == len(text) or not _is_word(text[end])
        if start < found and alone:
            out.append(text[at:start] + " ")
            at = end
        else:
            out.append(text[at : found + 1])
            at = found + 1
    out.append(text[at:])
    return "".join(out)


def lookup_model(model_name: str) -> _TdpRow | None:
    """The longest table row found as whole words in the normalised name, else None.

    The table (~1,700 rows) is not parsed: each word of the name that holds a digit (every
    model number does: "6248r", "7b12", "i9-12900k", "neoverse-n1") is searched in the
    lower-cased text, and only the lines it is found in are parsed (~0.2 ms cold, against ~5 ms
    for parsing every row). A name without such a word ("AMD EPYC Processor") matches nothing.
    """
    padded = f" {normalise_model_name(model_name)} "
    text, lower = _table_text()
    best: _TdpRow | None = None
    for word in {w for w in padded.split() if any(c.isdigit() for c in w)}:
        # As a whole word of a match field: after a space or a line's start, before a space or
        # the first comma (a match field never holds a comma: the build script removes them).
        for needle in (f" {word} ", f" {word},", f"\n{word} ", f"\n{word},"):
            start = lower.find(needle)
            while start >= 0:
                line_start = lower.rfind("\n", 0, start + 1) + 1
                line_end = lower.find("\n", start + 1)
                line_end = len(lower) if line_end < 0 else line_end
                comma = lower.find(",", line_start, line_end)
                key = lower[line_start:comma]
                longer = best is None or len(key) > len(best.key)
                if start < comma and longer and f" {key} " in padded:
                    best = _row(text[line_start:line_end])
                start = lower.find(needle, line_end)
    return best


def table_rows() -> list[_TdpRow]:
    """Every row of the table, parsed (tests and the build script check them all)."""
    text, _ = _table_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return [_row(line) for line in lines[1:]]


def _row(line: str) -> _TdpRow:
    label, tdp_w, threads, source = csv_rows(line)[0]
    return _TdpRow(label, " ".join(label.lower().split()), float(tdp_w), int(threads), source)


@cache
def _table_text() -> tuple[str, str]:
    """The packaged cpu_tdp.csv and its lower-cased copy (ASCII: the offsets agree)."""
    from carbonwrap.packagedata import read_data

    text = read_data(_TABLE).decode("ascii")
    return text, text.lower()


def instance_cpu_model(instance: CloudInstance) -> tuple[str, str] | None:
    """(CPU model in the TDP table, source) of a known instance family, else None.

    AWS families are the type's part before the first dot ("m5" of "m5.large"); Google's the
    part before the first hyphen ("n2d" of "n2d-standard-8").
    """
    provider = instance.provider.lower()
    separator = "." if provider == "aws" else "-"
    family = instance.instance_type.lower().partition(separator)[0]
    return _instances().get((provider, family))


@cache
def _instances() -> dict[tuple[str, str], tuple[str, str]]:
    from carbonwrap.packagedata import read_data

    lines = [
        line
        for line in read_data(_INSTANCES).decode("utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    reader = iter(csv_rows("\n".join(lines)))
    header = next(reader)
    if header != _INSTANCES_HEADER:
        raise RuntimeError(f"carbonwrap/data/{_INSTANCES}: columns {header}")
    return {(row[0], row[1]): (row[2], row[4]) for row in reader}


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""
