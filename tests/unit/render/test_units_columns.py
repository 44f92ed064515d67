"""One unit per column and per line (the typical value's), 3 significant digits for every
value, large ones written whole, no exponents."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonwrap.render import units
from carbonwrap.render.final import report_view
from carbonwrap.render.runs import render_text, runs_view
from carbonwrap.report.model import ReadStats
from carbonwrap.report.select import build_report
from carbonwrap.runlog.summary import ComponentSummary, RunSummary


def test_a_column_takes_the_unit_of_its_typical_value() -> None:
    """The report's energy column once read "250 J", "0.148 Wh" and "1.10 kWh" together."""
    assert units.energy_column([1.8e6, 3.6e6, 1.8e5, None, 3.96e6]) == [
        "0.500 kWh",
        "1.00 kWh",
        "0.0500 kWh",
        "—",
        "1.10 kWh",
    ]
    assert units.energy_column([250, 532]) == ["0.0694 Wh", "0.148 Wh"]


def test_a_total_of_many_runs_does_not_shrink_the_rows() -> None:
    """1,000 runs of 10 Wh: the rows stay "10.0 Wh" and the total is written whole, not every
    row "<0.1 MWh" because the total is large."""
    cells = units.energy_column([36e3] * 1000 + [36e6 * 1000])
    assert cells[0] == "10.0 Wh" and cells[-1] == "10,000,000 Wh"


def test_a_value_too_small_for_the_column_says_so() -> None:
    assert units.energy_column([2.0, 7.2e9, 0.0]) == ["<0.000001 MWh", "2.00 MWh", "0.00 MWh"]
    assert units.mass_column([0.004, 2500.0]) == ["0.000004 kg", "2.50 kg"]


def test_masses_in_one_unit() -> None:
    assert units.mass_column([99.0, 1.5, 0.26]) == ["99.0 g", "1.50 g", "0.260 g"]
    assert units.mass_column([None, None]) == ["—", "—"]
    assert units.mass_column([]) == []


@pytest.mark.parametrize(
    ("joules", "text"),
    [
        (8.8e-05, "88.0 µJ"),  # was "8.8e-05 J"
        (0.5, "500 mJ"),
        (1e-9, "0.00100 µJ"),
        (1e-15, "<0.000001 µJ"),
        (359.99, "360 J"),
        (999.96 * 3600, "1.00 kWh"),  # rounds up to the next unit, not "1000 Wh"
        (-5.0, "-5.00 J"),
    ],
)
def test_single_energies_never_in_exponent_form(joules: float, text: str) -> None:
    assert units.energy(joules) == text


def test_small_volumes_and_distances_never_in_exponent_form() -> None:
    assert units.volume(6.38e-10) == "0.000638 µl"
    assert units.distance(1e-13) == "<0.000001 mm"


_NUMBER = re.compile(r"^(<|>-)?-?\d{1,3}(,\d{3})*(\.\d+)? (µJ|mJ|J|Wh|kWh|MWh)$")


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e13)), min_size=1, max_size=12))
def test_any_column_has_one_unit_and_no_exponent(values: list[float | None]) -> None:
    cells = units.energy_column(values)
    shown = [cell for cell in cells if cell != "—"]
    assert len(cells) == len(values)
    assert all(_NUMBER.match(cell) for cell in shown), cells
    assert len({cell.split()[1] for cell in shown}) <= 1  # one unit
    largest = max((v for v in values if v is not None), default=0.0)
    if 1e-6 <= largest < 3.5e12:  # 1 µJ to 999 MWh: the largest shows 3 significant digits
        digits = units.energy(largest).split()[0].replace(".", "").lstrip("0")
        assert len(digits) == 3, units.energy(largest)


def test_a_line_is_written_in_the_unit_of_its_total() -> None:
    """Energy 2.00 kWh = CPU 1.50 kWh + DRAM 0.50 kWh, not 2.00 kWh = 1.50 kWh + 500 Wh."""
    write = units.energy_format([7.2e6])
    assert [write(7.2e6), write(5.4e6), write(1.8e6), write(250.0)] == [
        "2.00 kWh",
        "1.50 kWh",
        "0.500 kWh",
        "0.000069 kWh",
    ]
    assert units.mass_format([1500.0])(99.0) == "0.0990 kg"


def _run(run_id: str, energy_j: float, co2e_g: float, **extra: object) -> RunSummary:
    s = RunSummary(
        run_id=run_id,
        command=["python", "train.py", run_id],
        host="node1",
        started_at=f"2026-11-25T0{run_id}:00:00.000Z",
        duration_s=60.0,
        complete=True,
        exit_code=0,
        components={"cpu": ComponentSummary("rapl", "", energy_j, 2 * energy_j)},
        co2e_g=co2e_g,
    )
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def _cells(text: str, column: str) -> list[str]:
    """The cells of a column of the plain-text table, rows and total."""
    lines = [line for line in text.splitlines() if line and not line.startswith(("  ", "─"))]
    at = lines[0].index(column) + len(column)  # right-aligned: cells end where the name ends
    return [line[:at].split("  ")[-1].strip() for line in lines[1:]]


def test_the_report_table_has_one_unit_a_column() -> None:
    runs = [_run("1", 250.0, 0.036), _run("2", 532.0, 0.9), _run("3", 5.4e5, 25.0)]
    text = render_text(runs_view(build_report(runs, ReadStats(logs=3))))
    # Before: "250 J", "0.148 Wh", "150 Wh"; now the total's unit and decimals throughout.
    assert _cells(text, "energy") == ["0.0694 Wh", "0.148 Wh", "150 Wh", "150 Wh"]
    assert _cells(text, "CO2e") == ["36.0 mg", "900 mg", "25,000 mg", "25,936 mg"]
    grouped = render_text(runs_view(build_report(runs, ReadStats(logs=3), "host")))
    assert _cells(grouped, "energy") == ["150 Wh", "150 Wh"]


def test_the_final_report_table_has_one_unit() -> None:
    """Attributed and whole-device energy once read "250 J | 0.148 Wh" in one row."""
    s = _run("1", 250.0, 0.036)
    s.components["dram"] = ComponentSummary("estimate", "", 16.0, 16.0)
    rows = report_view(s).rows
    assert rows[0][1:3] == ("0.0694 Wh", "0.139 Wh")
    assert rows[-1][1:3] == ("0.0739 Wh", "0.143 Wh")
    assert {cell.split()[1] for row in rows for cell in row[1:3] if cell != "—"} == {"Wh"}
