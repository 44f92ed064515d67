"""Build carbonwrap/data/cpu_tdp.csv: rated power (TDP) and threads per socket of CPU models, for
the estimate carbonwrap uses when no energy counter can be read (sensors/cpu_estimate.py).

    git clone https://github.com/quattor/template-library-standard quattor
    git clone https://github.com/mlco2/codecarbon codecarbon
    git clone https://github.com/GreenAlgorithms/green-algorithms-tool green-algorithms
    python3 bench/build_cpu_tdp.py --quattor quattor --codecarbon codecarbon \
        --green-algorithms green-algorithms

Stdlib and git only. Each input is read at its pinned commit (`git show COMMIT:PATH`), so a newer
clone rebuilds the same table; licences and what each input holds: carbonwrap/data/PROVENANCE.md
("CPU power table"). Only data is taken from them (names, watts, thread counts), never code.

Inputs, in order of precedence (a rule for every conflict, applied field by field):
  1. CodeCarbon's scrapes of the vendors' own specification pages (MIT): AMD's
     amd_cpu_server_dataset.csv and amd_cpu_desktop_dataset.csv (TDP and threads), Intel ARK's
     intel_cpu_ark_dataset.csv (TDP only: it has no thread count).
  2. quattor template-library-standard hardware/cpu/*/*.pan (Apache-2.0): the /proc/cpuinfo model
     string with cores, threads and TDP, written by the sites that run the machines.
  3. The rows written by hand for carbonwrap (HAND_ROWS below: the table as it was before this
     script, Arm server cores, thread counts of cloud-only parts), kept unless 1 or 2 disagree.
  4. CodeCarbon cpu_power.csv (MIT): TDP only, used where nothing above has one (cloud-only parts).
Green Algorithms TDP_cpu.csv (CC BY 4.0) has cores but not threads: it is a cross-check only
(disagreements are printed), never a row's figure.

A row needs both a TDP and a thread count; a model whose thread count no input gives is left out.
A name one input gives with two different figures (quattor's five Ampere Altra Max parts all read
"Ampere(R) Altra(R) Max Processor") is left out: cpuinfo could not tell them apart either.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "carbonwrap" / "data"
sys.path.insert(0, str(REPO))

from carbonwrap.sensors.cpu_estimate import normalise_model_name  # noqa: E402

QUATTOR_COMMIT = "6fa9032a527be9118c9ff384099e9da74eab1834"  # 2025-02-20
CODECARBON_COMMIT = "b05965e43b690cdc53787c7577adbe6e2caf4ed9"  # 2026-08-08 (3.3.0-3)
GREEN_ALGORITHMS_COMMIT = "30df2feead1c7f5db87a3d86ca1239470a0cd415"  # 2025-02-05
CC_DIR = "codecarbon/data/hardware"

SRC_AMD = "amd.com specifications via CodeCarbon"
SRC_ARK = "Intel ARK via CodeCarbon"
SRC_QUATTOR = "quattor template-library-standard"
SRC_CC_POWER = "CodeCarbon cpu_power.csv"

# Written by hand for carbonwrap: match, tdp_w, threads, source. The first block is the table as it
# was before this script (vendor pages, written down without re-opening each); sources 1 and 2
# above override a figure they disagree with. Cloud-only parts: the TDP is CodeCarbon's
# cpu_power.csv (tdp_w empty here), the threads per socket are the provider's largest size of
# the family divided by its sockets (AWS "CPU options" default cores x threads per core; Azure and
# Google machine-series pages). Arm: cpuinfo names only the core (Neoverse-N1 for Graviton2 and
# Ampere Altra alike), so the row for a core is the part with the highest W per thread among
# those with a published rating.
HAND_ROWS = """\
AMD EPYC 7302,155,32,AMD product page (amd.com)
AMD EPYC 7402,180,48,AMD product page (amd.com)
AMD EPYC 7452,155,64,AMD product page (amd.com)
AMD EPYC 7502,180,64,AMD product page (amd.com)
AMD EPYC 7552,200,96,AMD EPYC 7002 Series datasheet (amd.com)
AMD EPYC 7642,225,96,AMD product page (amd.com)
AMD EPYC 7702,200,128,AMD product page (amd.com)
AMD EPYC 7742,225,128,AMD product page (amd.com)
AMD EPYC 7H12,280,128,AMD product page (amd.com)
AMD EPYC 7313,155,32,AMD product page (amd.com)
AMD EPYC 7343,190,32,AMD product page (amd.com)
AMD EPYC 7443,200,48,AMD product page (amd.com)
AMD EPYC 7513,200,64,AMD product page (amd.com)
AMD EPYC 7543,225,64,AMD product page (amd.com)
AMD EPYC 7713,225,128,AMD product page (amd.com)
AMD EPYC 7763,280,128,AMD product page (amd.com)
AMD EPYC 7773X,280,128,AMD product page (amd.com)
AMD EPYC 9354,280,64,AMD product page (amd.com)
AMD EPYC 9454,290,96,AMD product page (amd.com)
AMD EPYC 9554,360,128,AMD product page (amd.com)
AMD EPYC 9654,360,192,AMD product page (amd.com)
AMD EPYC 9754,360,256,AMD product page (amd.com)
Intel Xeon Gold 6130,125,32,Intel ARK (ark.intel.com)
Intel Xeon Gold 6148,150,40,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8180,205,56,Intel ARK (ark.intel.com)
Intel Xeon Gold 6230,125,40,Intel ARK (ark.intel.com)
Intel Xeon Gold 6248,150,40,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8260,165,48,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8280,205,56,Intel ARK (ark.intel.com)
Intel Xeon Gold 6338,205,64,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8358,250,64,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8380,270,80,Intel ARK (ark.intel.com)
Intel Xeon Gold 6448Y,225,64,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8468,350,96,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8480+,350,112,Intel ARK (ark.intel.com)
Intel Xeon Platinum 8592+,350,128,Intel ARK (ark.intel.com)
Intel Core i9-12900K,125,24,Intel ARK (ark.intel.com)
Intel Core i9-13900K,125,32,Intel ARK (ark.intel.com)
AMD Ryzen 9 5950X,105,32,AMD product page (amd.com)
AMD Ryzen 9 7950X,170,32,AMD product page (amd.com)
AMD Ryzen Threadripper 3990X,280,128,AMD product page (amd.com)
Intel Xeon Platinum 8124M,,36,AWS c5.18xlarge: 72 vCPUs on 2 sockets
Intel Xeon Platinum 8151,,24,AWS z1d.12xlarge: 48 vCPUs on 2 sockets
Intel Xeon Platinum 8175M,,48,AWS m5.24xlarge: 96 vCPUs on 2 sockets
Intel Xeon Platinum 8259CL,,48,AWS m5.24xlarge: 96 vCPUs on 2 sockets
Intel Xeon Platinum 8275CL,,48,AWS c5.24xlarge: 96 vCPUs on 2 sockets
Intel Xeon Platinum 8375C,,64,AWS m6i.32xlarge: 128 vCPUs on 2 sockets
Intel Xeon E5-2686 v4,,36,AWS i3.metal: 72 vCPUs on 2 sockets
AMD EPYC 7R13,,96,AWS m6a.48xlarge: 192 vCPUs on 2 sockets
AMD EPYC 7B12,,128,Google n2d machine series: AMD EPYC Rome (64 cores per socket)
Intel Xeon Platinum 8171M,,52,Azure Dv3 series: Xeon Platinum 8171M (26 cores per socket)
Intel Xeon Platinum 8272CL,,52,Azure Dv4 series: Xeon Platinum 8272CL (26 cores per socket)
Intel Xeon Platinum 8370C,,64,Azure Dv5 series: Xeon Platinum 8370C (32 cores per socket)
Intel Xeon E5-2673 v4,,40,Azure Dv2/Dv3 series: Xeon E5-2673 v4 (20 cores per socket)
Neoverse-V2,250,72,NVIDIA Grace CPU Superchip datasheet: 500 W for 2 x 72 cores with LPDDR5X
"""
# "Neoverse-N1" is derived below from quattor's Ampere Altra Max parts (ARM_CORES). The Arm rows
# are named as lscpu names the core; carbonwrap's cpu_model_name says "ARM Neoverse-N1".
ARM_CORES = {"Ampere Altra Max": "Neoverse-N1"}


class Figure(NamedTuple):
    tdp_w: float | None
    threads: int | None
    source: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quattor", required=True, help="quattor clone")
    parser.add_argument("--codecarbon", required=True, help="clone of mlco2/codecarbon")
    parser.add_argument("--green-algorithms", required=True, help="clone of green-algorithms-tool")
    parser.add_argument("--out", default=str(DATA / "cpu_tdp.csv"))
    args = parser.parse_args()

    vendor = dict(_codecarbon_amd(args.codecarbon))
    ark = dict(_codecarbon_ark(args.codecarbon))
    quattor, arm = _quattor(args.quattor)
    hand = {label: fig for label, fig in _hand_rows()}
    cc_power = dict(_codecarbon_power(args.codecarbon))
    green = dict(_green_algorithms(args.green_algorithms))

    labels: dict[str, str] = {}  # key -> display label (first seen, by precedence)
    for source in (vendor, ark, quattor, hand):
        for label in source:
            labels.setdefault(_key(label), label)
    by_key = {
        name: {_key(label): fig for label, fig in source.items()}
        for name, source in (
            ("vendor", vendor),
            ("ark", ark),
            ("quattor", quattor),
            ("hand", hand),
            ("cc_power", cc_power),
            ("green", green),
        )
    }
    rows: list[tuple[str, float, int, str]] = []
    dropped = 0
    for key, label in sorted(labels.items()):
        found = {name: table[key] for name, table in by_key.items() if key in table}
        tdp = _first(found, ("vendor", "ark", "quattor", "hand", "cc_power"), "tdp_w")
        threads = _first(found, ("vendor", "quattor", "hand"), "threads")
        if tdp is None or threads is None:
            dropped += 1
            continue
        tdp_w, tdp_from = tdp
        threads_n, threads_from = threads
        _report_conflicts(label, found, tdp_w, int(threads_n))
        source = tdp_from if tdp_from == threads_from else f"TDP {tdp_from}; threads {threads_from}"
        rows.append((label, tdp_w, int(threads_n), source))
    for label, (tdp_w, threads_n, source) in arm.items():
        rows.append((label, tdp_w, threads_n, source))
    rows.sort(key=lambda row: row[0].lower())
    _write(Path(args.out), rows)
    print(f"{len(rows)} rows written to {args.out}; {dropped} names without TDP or threads")


def _first(
    found: dict[str, Figure], order: tuple[str, ...], field: str
) -> tuple[float, str] | None:
    for name in order:
        figure = found.get(name)
        value = getattr(figure, field) if figure else None
        if figure is not None and value is not None:
            return float(value), figure.source
    return None


def _report_conflicts(label: str, found: dict[str, Figure], tdp_w: float, threads: int) -> None:
    """Say every figure the chosen one overrides, hand-written rows and Green Algorithms first."""
    for name, figure in found.items():
        if figure.tdp_w is not None and abs(figure.tdp_w - tdp_w) > 0.5:
            print(f"  {label}: TDP {figure.tdp_w:g} W from {name} overridden by {tdp_w:g} W")
        if name != "green" and figure.threads is not None and figure.threads != threads:
            print(f"  {label}: {figure.threads} threads from {name} overridden by {threads}")


def _write(path: Path, rows: list[tuple[str, float, int, str]]) -> None:
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["match", "tdp_w", "threads", "source"])
    for label, tdp_w, threads, source in rows:
        writer.writerow([label, f"{tdp_w:g}", threads, source])
    text = out.getvalue()
    text.encode("ascii")  # the lookup lower-cases the text in one go: offsets must not move
    path.write_text(text, encoding="ascii")


HEADER = """\
# Rated power (TDP) per socket and hardware threads per socket of CPU models, for estimating CPU
# power where no energy counter can be read: carbonwrap uses tdp_w / threads as the power of one
# busy logical CPU. Generated by bench/build_cpu_tdp.py from pinned inputs; do not edit by hand.
# match: the model as normalised from /proc/cpuinfo (no (R)/(TM), "CPU", clock or "N-Core
#   Processor"); matched case-insensitively as whole words, the longest match wins.
# source: where the TDP and threads come from (carbonwrap/data/PROVENANCE.md, "CPU power table").
# Unknown CPUs: 12 W per core, the Green Algorithms default (Lannelongue, Grealey & Inouye,
#   Adv. Sci. 2021, doi:10.1002/advs.202100707).
"""


def _git_show(repo: str, commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    ).stdout


def _git_ls(repo: str, commit: str, folder: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", repo, "ls-tree", "-r", "--name-only", commit, folder],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def display_name(raw: str) -> str:
    """A vendor or cpuinfo name as the table writes it: marks, "CPU", clock, "Processor", core
    counts and "with ... Graphics" tails removed, case kept ("Intel Xeon Gold 6248R")."""
    text = re.sub(r"\s*(?:\((?:R|TM|r|tm)\)|[®™])\s*(?=-)", "", raw)  # "FX(tm)-8350" -> "FX-8350"
    text = re.sub(r"\((?:R|TM|r|tm)\)|[®™]", " ", text)
    text = re.sub(r"\s+(?:with|w/)\s.*$", "", text)
    text = re.sub(r"@\s*[\d.]+\s*[GM]Hz", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\b(?:CPU|Processor|Mobile|Integrated)\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\b[\w]+-Cores?\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"[\s,]+", " ", text).strip()
    return text.encode("ascii", "ignore").decode()


def _key(label: str) -> str:
    return normalise_model_name(label)


def _codecarbon_amd(repo: str) -> Iterator[tuple[str, Figure]]:
    for name in ("amd_cpu_server_dataset.csv", "amd_cpu_desktop_dataset.csv"):
        text = _git_show(repo, CODECARBON_COMMIT, f"{CC_DIR}/cpu_dataset_builder/{name}")
        for row in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))):
            tdp = re.match(r"\s*([\d.]+)\s*W", row.get("Default TDP", ""))
            threads = row.get("# of Threads", "").strip()
            if not tdp or not threads.isdigit():
                continue
            label = display_name(row["Name"])
            if not label.startswith("AMD"):
                label = f"AMD {label}"
            yield label, Figure(float(tdp.group(1)), int(threads), SRC_AMD)


def _codecarbon_ark(repo: str) -> Iterator[tuple[str, Figure]]:
    path = f"{CC_DIR}/cpu_dataset_builder/intel_cpu_ark_dataset.csv"
    text = _git_show(repo, CODECARBON_COMMIT, path)
    for row in csv.DictReader(io.StringIO(text)):
        try:
            tdp_w = float(row["tdp"])
        except ValueError:
            continue
        yield display_name(row["cpu_name"]), Figure(tdp_w, None, SRC_ARK)


def _codecarbon_power(repo: str) -> Iterator[tuple[str, Figure]]:
    text = _git_show(repo, CODECARBON_COMMIT, f"{CC_DIR}/cpu_power.csv")
    for row in csv.DictReader(io.StringIO(text)):
        try:
            tdp_w = float(row["TDP"])
        except ValueError:
            continue
        yield display_name(row["Name"]), Figure(tdp_w, None, SRC_CC_POWER)


def _green_algorithms(repo: str) -> Iterator[tuple[str, Figure]]:
    text = _git_show(repo, GREEN_ALGORITHMS_COMMIT, "data/latest/TDP_cpu.csv")
    lines = text.splitlines()[1:]  # the first line holds units
    for row in csv.DictReader(lines):
        try:
            tdp_w = float(row["TDP"])
        except ValueError:
            continue
        name = row["model"].strip()
        vendor = "AMD " if name.startswith(("Ryzen", "EPYC")) else ""
        vendor = "Intel " if name.startswith(("Core", "Xeon")) else vendor
        yield display_name(vendor + name), Figure(tdp_w, None, "Green Algorithms TDP_cpu.csv")


_PAN_FIELD = re.compile(r'^"(\w+)"\s*=\s*"?([^";]*)"?;', re.MULTILINE)


def _quattor(repo: str) -> tuple[dict[str, Figure], dict[str, tuple[float, int, str]]]:
    """{label: figure} from quattor, names with two different figures left out; and the Arm core
    rows derived from the Arm parts (highest W per thread per core)."""
    seen: dict[str, set[tuple[float, int]]] = {}
    arm_parts: dict[str, list[tuple[float, int, str]]] = {}
    for path in _git_ls(repo, QUATTOR_COMMIT, "hardware/cpu"):
        if not path.endswith(".pan"):
            continue
        fields = dict(_PAN_FIELD.findall(_git_show(repo, QUATTOR_COMMIT, path)))
        try:
            tdp_w, threads = float(fields["power"].split()[0]), int(fields["max_threads"])
        except (KeyError, ValueError, IndexError):
            continue
        label = display_name(fields.get("model", ""))
        if not label or threads < 1:
            continue
        if label in ARM_CORES:
            part = Path(path).stem.replace("_", " ")
            arm_parts.setdefault(ARM_CORES[label], []).append((tdp_w, threads, part))
        seen.setdefault(label, set()).add((tdp_w, threads))
    figures = {
        label: Figure(*next(iter(values)), SRC_QUATTOR)
        for label, values in seen.items()
        if len(values) == 1 and label not in ARM_CORES
    }
    ambiguous = sorted(label for label, values in seen.items() if len(values) > 1)
    if ambiguous:
        print(f"  quattor names with two figures, left out: {', '.join(ambiguous)}")
    arm: dict[str, tuple[float, int, str]] = {}
    for core, parts in arm_parts.items():
        tdp_w, threads, part = max(parts, key=lambda p: p[0] / p[1])
        arm[core] = (tdp_w, threads, f"{SRC_QUATTOR}: {part} (the highest W per thread)")
    return figures, arm


def _hand_rows() -> Iterator[tuple[str, Figure]]:
    for row in csv.reader(HAND_ROWS.splitlines()):
        label, tdp, threads, source = row
        yield label, Figure(float(tdp) if tdp else None, int(threads), source)


if __name__ == "__main__":
    main()
