"""The CPU model name normalisation and the sysfs name parsing, written without `re` for the
run's start-up, against the regular expressions they replace: every label of the TDP table,
real /proc/cpuinfo names, and generated text made of the characters the patterns care about."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.sensors import numbered
from carbonwrap.sensors.cpu_estimate import normalise_model_name, table_rows


def by_regex(name: str) -> str:
    """The substitutions normalise_model_name stands for (its docstring lists them)."""
    text = name.lower()
    text = re.sub(r"\s*(?:\((?:r|tm)\)|[®™])\s*(?=-)", "", text)
    text = re.sub(r"\((?:r|tm)\)|[®™]", " ", text)
    text = re.sub(r"@\s*[\d.]+\s*[gm]hz", " ", text)
    text = re.sub(r"\bcpu\b", " ", text)
    text = re.sub(r"\b\w+-cores?\b", " ", text)
    text = re.sub(r"\bprocessor\b", " ", text)
    return " ".join(text.split())


CPUINFO_NAMES = [
    "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz",
    "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz",
    "Intel(R) Core(TM) i9-12900K",
    "12th Gen Intel(R) Core(TM) i7-1265U",
    "AMD EPYC 7R13 Processor",
    "AMD EPYC Processor",
    "AMD Ryzen Threadripper PRO 5995WX 64-Cores",
    "AMD Ryzen 9 7950X 16-Core Processor",
    "AMD FX(tm)-8350 Eight-Core Processor",
    "AMD Phenom(tm) II X6 1090T Processor",
    "Intel(R) Pentium(R) CPU G4560 @ 3.50GHz",
    "Intel® Xeon® Gold 6248R CPU @ 3.00GHz",
    "Neoverse-N1",
    "QEMU Virtual CPU version 2.5+",
    "Intel(R) Xeon(R) CPU @ 2.20GHz",
    "Genuine Intel(R) CPU 0000 @ 2.40GHz",
    "",
]

ALPHABET = st.sampled_from(
    ["(r)", "(tm)", "(", ")", "®", "™", "@", " ", "\t", "-", "-core", "-cores", "cpu",
     "processor", "ghz", "mhz", "2.5", ".", "8", "x", "_", "é", "٣", "s", "e"]
)  # fmt: skip


def test_every_table_label_and_real_names_normalise_as_the_regexes_do() -> None:
    labels = [row.label for row in table_rows()]
    assert len(labels) > 1000
    for name in [*labels, *CPUINFO_NAMES]:
        assert normalise_model_name(name) == by_regex(name), name


@settings(max_examples=3000, deadline=None)
@given(st.lists(ALPHABET, max_size=12).map("".join))
def test_generated_names_normalise_as_the_regexes_do(name: str) -> None:
    assert normalise_model_name(name) == by_regex(name)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["intel-rapl", ":", "0", "12", "٣", "x", "Esocket", ""]), max_size=6
    ).map("".join)
)
def test_numbered_takes_what_the_regexes_take(name: str) -> None:
    for prefix, parts, pattern in (
        ("intel-rapl:", 1, r"intel-rapl:(\d+)"),
        ("intel-rapl:", 2, r"intel-rapl:(\d+):(\d+)"),
        ("Esocket", 1, r"Esocket(\d+)"),
    ):
        match = re.fullmatch(pattern, name)
        expected = tuple(int(group) for group in match.groups()) if match else None
        assert numbered(name, prefix, parts) == expected, (name, prefix, parts)
