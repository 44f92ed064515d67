"""CPU power estimates from the TDP table, the documented default, and cpuinfo parsing."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest

from carbonwrap.sensors.cpu_estimate import (
    DRAM_BASIS,
    DRAM_W_PER_GB,
    cpu_model_name,
    estimate_cpu_power,
    normalise_model_name,
)

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu vme de pse

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7763 64-Core Processor
"""

# As printed by an AWS Graviton2 (Neoverse-N1) guest.
ARM64_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def write_cpuinfo(tmp_path: Path, text: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(text)
    return proc


@pytest.mark.parametrize(
    ("model", "watts_per_cpu"),
    [
        ("AMD EPYC 7763 64-Core Processor", 280 / 128),
        ("AMD EPYC 7742 64-Core Processor", 225 / 128),
        ("AMD EPYC 9654 96-Core Processor", 360 / 192),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", 270 / 80),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 150 / 40),
        ("Intel(R) Xeon(R) Platinum 8480+", 350 / 112),
        ("12th Gen Intel(R) Core(TM) i9-12900K", 125 / 24),
        ("AMD Ryzen 9 5950X 16-Core Processor", 105 / 32),
    ],
)
def test_known_models(model: str, watts_per_cpu: float) -> None:
    estimate = estimate_cpu_power(model, logical_cpus=8)
    assert estimate.watts_per_cpu == pytest.approx(watts_per_cpu)
    assert not estimate.basis.startswith("default")


def test_known_model_basis_states_tdp_threads_and_source() -> None:
    basis = estimate_cpu_power("AMD EPYC 7763 64-Core Processor", 256).basis
    assert basis.startswith("estimate: AMD EPYC 7763: TDP 280 W / 128 threads = 2.19 W")
    assert "AMD product page" in basis


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "intel xeon gold 6248"),
        ("Intel® Xeon® Platinum 8480+", "intel xeon platinum 8480+"),
        ("12th Gen Intel(R) Core(TM) i9-12900K", "12th gen intel core i9-12900k"),
        ("  AMD   EPYC 7763 64-Core Processor  ", "amd epyc 7763"),
        ("AMD EPYC", "amd epyc"),
        ("", ""),
    ],
)
def test_normalise_model_name(raw: str, normalised: str) -> None:
    assert normalise_model_name(raw) == normalised


def test_matching_ignores_case_spacing_and_marks() -> None:
    assert estimate_cpu_power("intel   XEON gold 6248", 1).watts_per_cpu == pytest.approx(3.75)


def test_a_longer_model_number_is_not_matched_by_its_prefix() -> None:
    # The 6248R is a different part (24 cores, 205 W); "gold 6248" must not claim it.
    estimate = estimate_cpu_power("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 96)
    assert estimate.watts_per_cpu == 12.0
    assert estimate.basis.startswith("default estimate")


def test_longest_match_wins() -> None:
    # "AMD EPYC 7773X" and "AMD EPYC 7763" differ; the X suffix must pick its own row.
    assert "7773X" in estimate_cpu_power("AMD EPYC 7773X 64-Core Processor", 1).basis


def test_vm_reporting_only_the_family_gets_the_default() -> None:
    estimate = estimate_cpu_power("AMD EPYC", logical_cpus=2)
    assert estimate.watts_per_cpu == 12.0
    assert estimate.basis.startswith("default estimate: 12 W per busy logical CPU")
    assert "Green Algorithms" in estimate.basis
    assert "Lannelongue" in estimate.basis
    assert "'AMD EPYC' is not in carbonwrap's TDP table" in estimate.basis


def test_empty_model_gets_the_default() -> None:
    estimate = estimate_cpu_power("", logical_cpus=4)
    assert estimate.watts_per_cpu == 12.0
    assert "CPU model is unknown" in estimate.basis


def test_logical_cpus_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        estimate_cpu_power("AMD EPYC 7763", 0)


def test_dram_constant_and_basis() -> None:
    assert DRAM_W_PER_GB == 0.3725
    assert DRAM_BASIS.startswith("estimate: 0.3725 W per GB")
    assert "Green Algorithms" in DRAM_BASIS


def test_table_rows_are_plausible_and_sourced() -> None:
    text = resources.files("carbonwrap").joinpath("data", "cpu_tdp.csv").read_text()
    rows = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))
            )
        )
    )
    assert 20 <= len(rows) <= 60
    keys = [normalise_model_name(row["match"]) for row in rows]
    assert len(set(keys)) == len(keys), "duplicate match rows"
    for row in rows:
        assert 10 <= float(row["tdp_w"]) <= 500, row
        assert 4 <= int(row["threads"]) <= 512, row
        assert row["source"].strip(), row
        assert estimate_cpu_power(row["match"], 1).watts_per_cpu == pytest.approx(
            float(row["tdp_w"]) / int(row["threads"])
        ), f"row {row['match']!r} does not find itself"


def test_cpu_model_name_x86(tmp_path: Path) -> None:
    proc = write_cpuinfo(tmp_path, X86_CPUINFO)
    assert cpu_model_name(proc) == "AMD EPYC 7763 64-Core Processor"


def test_cpu_model_name_arm64_known_core(tmp_path: Path) -> None:
    assert cpu_model_name(write_cpuinfo(tmp_path, ARM64_CPUINFO)) == "ARM Neoverse-N1"


def test_cpu_model_name_arm64_unknown_core(tmp_path: Path) -> None:
    text = ARM64_CPUINFO.replace("0x41", "0xc0").replace("0xd0c", "0xac3")
    assert cpu_model_name(write_cpuinfo(tmp_path, text)) == "ARM implementer 0xc0 part 0xac3"


def test_cpu_model_name_missing_or_empty(tmp_path: Path) -> None:
    assert cpu_model_name(tmp_path) == ""
    assert cpu_model_name(write_cpuinfo(tmp_path, "processor\t: 0\n")) == ""
