"""The live status lines: a pure function of plain numbers, checked at several widths."""

from __future__ import annotations

import re

import pytest

from carbonwrap.render.live import LiveState, cells, live_lines

SGR = re.compile(r"\x1b\[[0-9;]*m")

CPU = ("CPU", 12.3, 4320.0, "rapl")
DRAM = ("DRAM", 2.1, 120.0, "rapl")


def state(**changes: object) -> LiveState:
    base = LiveState(
        elapsed_s=65.2,
        cpu_s=62.1,
        components=[CPU, DRAM],
        intensity_g_per_kwh=231.4,
        intensity_source="static table: GB 2023, Ember",
        co2e_g=0.52,
        prediction=None,
    )
    return base._replace(**changes)


NO_GPU = state()
GPUS = state(components=[CPU, DRAM, *((f"GPU {i}", 251.0, 12240.0, "counter") for i in range(8))])
UNKNOWN = state(intensity_g_per_kwh=None, intensity_source="")
PREDICTED = state(prediction="≈ 1.2 kg at 100 %")
CASES = {"no GPU": NO_GPU, "8 GPUs": GPUS, "unknown intensity": UNKNOWN, "predicted": PREDICTED}


@pytest.mark.parametrize("width", [40, 80, 200])
@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_line_fits_and_colour_only_when_asked(case: str, width: int, color: bool) -> None:
    lines = live_lines(CASES[case], width, color)
    assert 1 <= len(lines) <= 3
    for line in lines:
        plain = SGR.sub("", line)
        assert cells(plain) <= width, plain
        assert "\x1b" not in plain
        assert ("\x1b[" in line) == (color and line != plain)
    assert any("\x1b[" in line for line in lines) == color
    assert [SGR.sub("", line) for line in lines] == live_lines(CASES[case], width, False)


def test_at_80_columns_three_lines_drop_what_does_not_fit() -> None:
    assert live_lines(NO_GPU, 80, False) == [
        "carbonwrap · 1 min 05 s · 1.23 Wh · 520 mg CO2e · CPU time 1 min 02 s",
        "CPU 12.3 W 1.20 Wh rapl · DRAM 2.10 W 120 J rapl",
        "intensity 231 g/kWh static table: GB 2023, Ember",
    ]
    # Eight GPUs do not fit one by one: methods go first, then the GPUs are added up.
    assert live_lines(GPUS, 80, False)[1] == (
        "CPU 12.3 W 1.20 Wh · DRAM 2.10 W 120 J · 8 GPUs 2.01 kW 27.2 Wh"
    )


def test_at_200_columns_two_lines_with_everything() -> None:
    four = state(
        components=[CPU, DRAM, *((f"GPU {i}", 251.0, 12240.0, "counter") for i in range(4))]
    )
    head, components = live_lines(four, 200, False)
    assert head == (
        "carbonwrap · 1 min 05 s · 14.8 Wh · 520 mg CO2e · CPU time 1 min 02 s"
        " · 231 g/kWh static table: GB 2023, Ember"
    )
    assert components == "CPU 12.3 W 1.20 Wh rapl · DRAM 2.10 W 120 J rapl · " + " · ".join(
        f"GPU {i} 251 W 3.40 Wh counter" for i in range(4)
    )
    # Eight do not fit one by one even at 200: added up rather than cut.
    assert live_lines(GPUS, 200, False)[1].endswith(" · 8 GPUs 2.01 kW 27.2 Wh")


def test_at_40_columns_the_essentials_survive() -> None:
    head, components, intensity = live_lines(GPUS, 40, False)
    assert head == "carbonwrap · 1 min 05 s · 520 mg CO2e"
    assert components == "CPU 1.20 Wh · DRAM 120 J · GPUs 27.2 Wh"
    assert intensity == "intensity 231 g/kWh static table: GB 20…"
    assert cells(intensity) == 40


def test_unknown_intensity_and_prediction() -> None:
    assert live_lines(UNKNOWN, 80, False)[2] == "intensity unknown"
    assert live_lines(UNKNOWN, 200, False)[0].endswith(" · intensity unknown")
    assert live_lines(PREDICTED, 80, False)[0] == (
        "carbonwrap · 1 min 05 s · 1.23 Wh · 520 mg CO2e ≈ 1.2 kg at 100 %"
    )


def test_a_component_not_measured_shows_a_dash() -> None:
    lines = live_lines(state(components=[CPU, ("GPU 0", 0.0, None, "unavailable")]), 80, False)
    assert lines[1] == "CPU 12.3 W 1.20 Wh rapl · GPU 0 — unavailable"


def test_outside_text_cannot_move_the_cursor_and_wide_characters_count_double() -> None:
    lines = live_lines(state(intensity_source="evil\x1b[2J\nsource"), 80, False)
    assert lines[2] == "intensity 231 g/kWh evil\\x1b[2J\\nsource"  # escaped, as everywhere
    assert cells("電力") == 4 and cells("é") == 1 and cells("e\u0301") == 1
    wide = live_lines(state(intensity_source="電力" * 30), 40, False)
    assert all(cells(line) <= 40 for line in wide)


def test_colour_marks_the_name_and_the_co2e() -> None:
    head = live_lines(NO_GPU, 80, True)[0]
    assert head.startswith("\x1b[1;36mcarbonwrap\x1b[0m")
    assert "\x1b[1;32m520 mg CO2e\x1b[0m" in head


@pytest.mark.parametrize("width", [1, 5, 12])
def test_absurdly_narrow_still_fits(width: int) -> None:
    for line in live_lines(GPUS, width, True):
        assert cells(SGR.sub("", line)) <= width
