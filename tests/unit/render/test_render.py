"""Renderers: pure functions of a summary; golden text output and scaling units."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from carbonwrap.intensity.table import defaults
from carbonwrap.render import units
from carbonwrap.render.final import render_rich, render_text, report_view
from carbonwrap.render.json import run_document
from carbonwrap.run.outputs import equivalents
from carbonwrap.runlog.summary import ComponentSummary, RunSummary


@pytest.mark.parametrize(
    ("joules", "text"),
    [(0, "0 J"), (12.345, "12.3 J"), (3600, "1.00 Wh"), (5.4e6, "1.50 kWh"), (7.2e9, "2.00 MWh")],
)
def test_energy_units_scale(joules: float, text: str) -> None:
    assert units.energy(joules) == text


@pytest.mark.parametrize(
    ("grams", "text"), [(0.0123, "12.3 mg"), (5, "5.00 g"), (2500, "2.50 kg"), (3.2e6, "3.20 t")]
)
def test_mass_units_scale(grams: float, text: str) -> None:
    assert units.mass(grams) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.23, "1.2 s"),
        (42, "42 s"),
        (245, "4 min 05 s"),
        (7380, "2 h 03 min"),
        (273600, "3 d 04 h"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert units.duration(seconds) == text


EQUIVALENTS = equivalents(defaults())


def summary() -> RunSummary:
    return RunSummary(
        run_id="0123456789ab",
        command=["python", "train.py", "--epochs", "3"],
        host="node1",
        started_at="2026-11-27T06:00:00.000Z",
        ended_at="2026-11-27T07:02:03.000Z",
        duration_s=3723.0,
        cpu_s=7000.5,
        cpu_accounting="cgroup2",
        exit_code=0,
        complete=True,
        components={
            "cpu": ComponentSummary("rapl", "2 package zone(s)", 1.8e6, 3.6e6),
            "dram": ComponentSummary("rapl", "", 1.8e5, 3.6e5),
            "gpu": ComponentSummary("unavailable: no NVIDIA driver"),
        },
        pue=1.2,
        region={"code": "DK", "source": "flag", "detail": "--region DK"},
        intensity_mean_g_per_kwh=150.0,
        intensity_min_g_per_kwh=150.0,
        intensity_max_g_per_kwh=150.0,
        intensity_sources=["static table: Denmark 2024"],
        co2e_g=99.0,
        notes=["RAPL zone skipped: intel-rapl:2: psys"],
        log_path="logs/carbonwrap-x.jsonl",
    )


GOLDEN = """\
carbonwrap: python train.py --epochs 3 · exit 0 · 1 h 02 min
         attributed  whole device  method
  CPU     0.500 kWh      1.00 kWh  rapl
  DRAM   0.0500 kWh     0.100 kWh  rapl
  GPU             —             —  unavailable: no NVIDIA driver
  Total   0.550 kWh      1.10 kWh
  CPU basis  2 package zone(s)
  CPU time   7000.50 s of CPU by the tree, counted by cgroup2 (exact, whole tree)
  PUE        1.20
  Intensity  150.0 g/kWh, region DK (--region DK); static table: Denmark 2024
  CO2e       99.0 g CO2e
  ≈          927 m driven by an average new car (106.8 g/km, EEA 2024 new cars)
  ≈          42.2 ml of petrol burned (2.35 kg CO2/l, US EPA equivalencies)
  Log        logs/carbonwrap-x.jsonl
  note: RAPL zone skipped: intel-rapl:2: psys
"""


def test_plain_text_report_golden() -> None:
    assert render_text(report_view(summary(), EQUIVALENTS)) == GOLDEN


def test_rich_report_has_the_same_content() -> None:
    console = Console(record=True, width=120, color_system=None)
    console.print(render_rich(report_view(summary(), EQUIVALENTS)))
    text = console.export_text()
    for fragment in (
        "0.500 kWh",  # one unit for the table, 3 significant digits each
        "1.00 kWh",
        "unavailable: no NVIDIA driver",
        "99.0 g CO2e",
        "927 m",
        "42.2 ml",
    ):
        assert fragment in text


def test_json_document_units_and_nulls() -> None:
    doc = run_document(summary())
    assert doc["schema"] == "carbonwrap.run/2"
    assert doc["status"] == "ok" and doc["log_complete"] is True
    assert doc["energy_kwh"] == {"cpu": 0.5, "dram": 0.05, "gpu": None, "total": 0.55}
    assert doc["device_energy_kwh"]["total"] == pytest.approx(1.1)
    assert doc["methods"]["gpu"] == "unavailable: no NVIDIA driver"
    assert doc["co2e_kg"] == pytest.approx(0.099)
    assert doc["signal"] is None and doc["exit_code"] == 0
    json.dumps(doc, allow_nan=False)  # serialisable, no NaN
