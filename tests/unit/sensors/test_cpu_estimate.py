"""CPU power estimates from the TDP table, the documented default, and cpuinfo parsing."""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

import pytest
from sysfs_tree import write_dmi

from carbonwrap.sensors.cpu_estimate import (
    DRAM_BASIS,
    DRAM_W_PER_GB,
    CloudInstance,
    cloud_instance,
    cpu_model_name,
    cpu_vendor,
    cpuinfo_fields,
    estimate_cpu_power,
    instance_cpu_model,
    lookup_model,
    model_name,
    normalise_model_name,
    table_rows,
)

MODEL_NAMES = Path(__file__).parents[2] / "cpuinfo" / "model_names.txt"

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
    assert "amd.com specifications via CodeCarbon" in basis


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "intel xeon gold 6248"),
        ("Intel® Xeon® Platinum 8480+", "intel xeon platinum 8480+"),
        ("12th Gen Intel(R) Core(TM) i9-12900K", "12th gen intel core i9-12900k"),
        ("  AMD   EPYC 7763 64-Core Processor  ", "amd epyc 7763"),
        ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "intel xeon e5-2680 v4"),
        ("AMD FX(tm)-8350 Eight-Core Processor", "amd fx-8350"),
        ("AMD Ryzen Threadripper PRO 5995WX 64-Cores", "amd ryzen threadripper pro 5995wx"),
        ("AMD EPYC", "amd epyc"),
        ("", ""),
    ],
)
def test_normalise_model_name(raw: str, normalised: str) -> None:
    assert normalise_model_name(raw) == normalised


def test_matching_ignores_case_spacing_and_marks() -> None:
    assert estimate_cpu_power("intel   XEON gold 6248", 1).watts_per_cpu == pytest.approx(3.75)


def test_a_longer_model_number_is_not_matched_by_its_prefix() -> None:
    # The 6248R is a different part (24 cores, 205 W); "gold 6248" (20 cores, 150 W) must not
    # claim it: it gets its own row.
    estimate = estimate_cpu_power("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 96)
    assert estimate.watts_per_cpu == pytest.approx(205 / 48)
    assert estimate.basis.startswith("estimate: Intel Xeon Gold 6248R: TDP 205 W / 48 threads")


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


def test_table_rows_are_plausible_sourced_and_find_themselves() -> None:
    text = resources.files("carbonwrap").joinpath("data", "cpu_tdp.csv").read_text()
    rows = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))
            )
        )
    )
    assert len(rows) >= 1000
    keys = [normalise_model_name(row["match"]) for row in rows]
    assert len(set(keys)) == len(keys), "duplicate match rows"
    for row, key in zip(rows, keys, strict=True):
        assert 1 <= float(row["tdp_w"]) <= 600, row
        assert 1 <= int(row["threads"]) <= 512, row
        assert row["source"].strip(), row
        # The lookup lower-cases the label only: the table must hold names already normalised.
        assert key == " ".join(row["match"].lower().split()), row
        assert any(c.isdigit() for c in key), f"{row['match']!r} has no model number to find"
        found = lookup_model(row["match"])
        assert found is not None, f"row {row['match']!r} does not find itself"
        assert found.key == key
    assert [r.label for r in table_rows()] == [row["match"] for row in rows]


def test_table_covers_the_families() -> None:
    labels = [row.label for row in table_rows()]
    for family in (
        "Intel Xeon Gold",
        "Intel Xeon Platinum",
        "AMD EPYC",
        "AMD Ryzen 9",
        "AMD Ryzen Threadripper",
        "Neoverse-",
    ):
        assert sum(label.startswith(family) for label in labels) >= 2, family


def model_names() -> list[tuple[str, str, str]]:
    lines = MODEL_NAMES.read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def test_model_name_fixtures_are_many_and_sourced() -> None:
    names = model_names()
    assert len(names) >= 30
    for model, expected, source in names:
        assert model.strip() and expected and source.strip(), (model, expected, source)


@pytest.mark.parametrize(("model", "expected", "source"), model_names())
def test_real_model_names_match_their_row(model: str, expected: str, source: str) -> None:
    row = lookup_model(model)
    assert (row.label if row else "-") == expected, source


@pytest.mark.parametrize(
    ("model", "neighbour"),
    [
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Intel Xeon Gold 6248R"),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248"),
        ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7773X"),
        ("AMD Ryzen 9 7950X 16-Core Processor", "AMD Ryzen 9 7950X3D"),
        ("AMD Ryzen 9 7950X3D 16-Core Processor", "AMD Ryzen 9 7950X"),
        ("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", "Intel Xeon Platinum 8480"),
    ],
)
def test_a_model_never_takes_its_neighbours_row(model: str, neighbour: str) -> None:
    row = lookup_model(model)
    assert row is not None
    assert row.label != neighbour


def test_a_made_up_suffix_is_not_claimed_by_the_base_model() -> None:
    # "7763X" does not exist; the 7763's row must not claim it by prefix.
    assert lookup_model("AMD EPYC 7763X 64-Core Processor") is None


def test_arm_core_names_match_as_lscpu_and_carbonwrap_write_them() -> None:
    row = lookup_model("ARM Neoverse-N1")
    assert row is not None
    assert row.label == "Neoverse-N1"
    assert lookup_model("Neoverse-N1") == row


def test_generic_model_with_known_instance_type_takes_the_instance_cpu() -> None:
    estimate = estimate_cpu_power("AMD EPYC Processor", 2, CloudInstance("aws", "m6a.large"))
    row = lookup_model("AMD EPYC 7R13")
    assert row is not None
    assert estimate.watts_per_cpu == pytest.approx(row.tdp_w / row.threads)
    assert estimate.basis.startswith("estimate: AMD EPYC 7R13: TDP")
    assert "aws m6a.large runs on it" in estimate.basis
    assert "cpuinfo says 'AMD EPYC Processor'" in estimate.basis


def test_known_model_wins_over_the_instance_type() -> None:
    estimate = estimate_cpu_power(
        "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", 2, CloudInstance("aws", "m5.large")
    )
    assert estimate.basis.startswith("estimate: Intel Xeon Platinum 8259CL:")
    assert "runs on it" not in estimate.basis


def test_unknown_instance_family_falls_back_to_the_default() -> None:
    estimate = estimate_cpu_power("AMD EPYC Processor", 2, CloudInstance("aws", "x9z.large"))
    assert estimate.watts_per_cpu == 12.0
    assert estimate.basis.startswith("default estimate")


@pytest.mark.parametrize(
    ("instance", "model"),
    [
        (CloudInstance("aws", "m5.large"), "Intel Xeon Platinum 8175M"),
        (CloudInstance("aws", "c6g.4xlarge"), "Neoverse-N1"),
        (CloudInstance("aws", "M6A.48XLARGE"), "AMD EPYC 7R13"),
        (CloudInstance("gcp", "n2d-standard-8"), "AMD EPYC 7B12"),
    ],
)
def test_instance_families(instance: CloudInstance, model: str) -> None:
    found = instance_cpu_model(instance)
    assert found is not None
    assert found[0] == model


def test_every_instance_row_names_a_table_row() -> None:
    text = resources.files("carbonwrap").joinpath("data", "cloud_instance_cpus.csv").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert len(rows) >= 10
    for row in rows:
        found = lookup_model(row["cpu_model"])
        assert found is not None and found.label == row["cpu_model"], row
        assert row["source"].strip(), row


def test_cloud_instance_from_ec2_nitro_dmi(tmp_path: Path) -> None:
    write_dmi(tmp_path, "Amazon EC2", "m5.large")
    assert cloud_instance(tmp_path) == CloudInstance("aws", "m5.large")


@pytest.mark.parametrize(
    ("vendor", "product"),
    [
        ("Xen", "HVM domU"),  # an EC2 instance on Xen: no type in DMI
        ("Google", "Google Compute Engine"),
        ("Microsoft Corporation", "Virtual Machine"),
        ("Amazon EC2", "not a type"),
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)"),
    ],
)
def test_cloud_instance_unknown_elsewhere(tmp_path: Path, vendor: str, product: str) -> None:
    write_dmi(tmp_path, vendor, product)
    assert cloud_instance(tmp_path) is None


def test_cloud_instance_without_dmi(tmp_path: Path) -> None:
    assert cloud_instance(tmp_path) is None


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


def test_cpu_vendor(tmp_path: Path) -> None:
    assert cpu_vendor(write_cpuinfo(tmp_path, X86_CPUINFO)) == "AuthenticAMD"


def test_cpu_vendor_arm64_and_missing(tmp_path: Path) -> None:
    assert cpu_vendor(tmp_path) == ""
    assert cpu_vendor(write_cpuinfo(tmp_path, ARM64_CPUINFO)) == ""


def test_x86_fields_come_from_the_first_block_only(tmp_path: Path) -> None:
    """The kernel makes cpuinfo a CPU at a time, each block costing an interrupt of its CPU:
    on x86 only the start of the first block is read (whole lines), never the 127 others."""
    block = X86_CPUINFO.split("\n\n")[0] + " " + "sse " * 300 + "\n\n"  # ~1.4 KiB, as on x86
    later = "".join(block.replace("processor\t: 0", f"processor\t: {i}") for i in range(1, 128))
    proc = write_cpuinfo(tmp_path, block + later + "late field\t: after every CPU\n")
    fields = cpuinfo_fields(proc)
    assert fields["model name"] == "AMD EPYC 7763 64-Core Processor"
    assert fields["vendor_id"] == "AuthenticAMD" and fields["processor"] == "0"
    assert "late field" not in fields and "flags" not in fields  # cut mid-line: not kept


def test_arm_fields_are_read_to_the_end(tmp_path: Path) -> None:
    """Arm has no model name: the whole file, for a "Hardware" line after the last CPU."""
    blocks = "\n".join(
        ARM64_CPUINFO.replace("processor\t: 0", f"processor\t: {i}") for i in range(64)
    )
    proc = write_cpuinfo(tmp_path, blocks + "\nHardware\t: BCM2835\n")
    fields = cpuinfo_fields(proc)
    assert fields["Hardware"] == "BCM2835" and model_name(fields) == "ARM Neoverse-N1"


def test_this_machines_cpuinfo_reads_as_the_whole_file_does() -> None:
    """On the real kernel: the fields of the first block's start are those of the whole file
    (its first value of each), for every field the estimate uses."""
    whole: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in whole:
            whole[key.strip()] = value.strip()
    fields = cpuinfo_fields()
    for key in ("vendor_id", "model name", "CPU implementer", "CPU part", "Hardware"):
        assert fields.get(key) == whole.get(key), key
    assert cpu_model_name() == model_name(whole)
