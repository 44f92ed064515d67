"""--prometheus-textfile in real runs: the file is read during and after the command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import logs_in, records, run_cw
from prometheus_text import check_classic_format, names, parse, value

# --- real runs -----------------------------------------------------------------------------

# Busy for 2.5 s, copies the file as it is 1.5 s in, and can remove the file's directory.
CHILD = """
import os, shutil, sys, time
prom, copy, remove = sys.argv[1:4]
t = time.time()
while time.time() - t < 1.5:
    pass
shutil.copy(prom, copy)
if remove == "remove":  # renamed first: a write in flight cannot make rmtree fail
    os.rename(os.path.dirname(prom), os.path.dirname(prom) + ".gone")
    shutil.rmtree(os.path.dirname(prom) + ".gone")
while time.time() - t < 2.5:
    pass
"""


def run_with_textfile(workdir: Path, remove: str = "keep") -> tuple[Any, Path, Path]:
    textfiles = workdir / "textfiles"
    textfiles.mkdir()
    prom = textfiles / "carbonwrap.prom"
    during = workdir / "during.prom"
    result = run_cw(
        "run", "-q", "--interval", "0.1", "--log-interval", "0.3", "--json", "-",
        "--prometheus-textfile", str(prom), "--",
        sys.executable, "-c", CHILD, str(prom), str(during), remove,
        cwd=workdir,
    )  # fmt: skip
    return result, prom, during


def test_a_real_run_keeps_the_file_current_and_ends_with_the_reports_numbers(
    workdir: Path,
) -> None:
    result, prom, during = run_with_textfile(workdir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    _, mid = parse(during.read_text())
    run = {"run_id": report["run_id"], "host": report["host"]}
    assert value(mid, "carbonwrap_run_ended", **run) == 0.0
    assert value(mid, "carbonwrap_energy_joules_total", component="cpu", **run) > 0
    assert value(mid, "carbonwrap_power_watts", component="cpu", **run) > 0
    assert value(mid, "carbonwrap_cpu_seconds_total", **run) > 0
    text = prom.read_text()
    check_classic_format(text)
    _, final = parse(text)
    assert value(final, "carbonwrap_run_ended", **run) == 1.0
    assert value(final, "carbonwrap_run_exit_code", **run) == 0.0
    energy_j = sum(v for (n, _), v in final.items() if n == "carbonwrap_energy_joules_total")
    assert energy_j == pytest.approx(report["energy_kwh"]["total"] * 3.6e6, rel=1e-5)
    for name in ("cpu", "dram"):
        assert value(final, "carbonwrap_energy_joules_total", component=name) == pytest.approx(
            report["energy_kwh"][name] * 3.6e6, rel=1e-5
        )
    co2e_g = value(final, "carbonwrap_co2e_grams", **run)
    assert co2e_g == pytest.approx(report["co2e_kg"] * 1000, rel=1e-5) and co2e_g > 0
    assert value(final, "carbonwrap_cpu_seconds_total") == pytest.approx(
        report["cpu_seconds"], abs=1e-6
    )
    intensity = value(
        final, "carbonwrap_intensity_grams_per_kwh", region=report["intensity"]["region"]
    )
    assert intensity == pytest.approx(report["intensity"]["mean_g_per_kwh"], rel=1e-4)
    assert value(final, "carbonwrap_energy_joules_total", component="cpu") >= value(
        mid, "carbonwrap_energy_joules_total", component="cpu"
    )
    assert "carbonwrap_power_watts" not in names(final)
    assert CHILD.strip()[:20] not in text  # arguments never appear, the program name does
    assert f'program="{os.path.basename(sys.executable)}"' in text
    assert sorted(p.name for p in prom.parent.iterdir()) == ["carbonwrap.prom"]
    warnings = [r for r in records(logs_in(workdir)[0]) if r["type"] == "warning"]
    assert not [w for w in warnings if "prometheus" in w["message"]]


def test_a_removed_directory_never_disturbs_the_run(workdir: Path) -> None:
    result, prom, during = run_with_textfile(workdir, remove="remove")
    assert result.returncode == 0, result.stderr
    assert not prom.parent.exists()
    parse(during.read_text())
    report = json.loads(result.stdout)
    assert report["log_complete"] is True and report["energy_kwh"]["cpu"] > 0
    log = records(logs_in(workdir)[0])
    ours = [r for r in log if r["type"] == "warning" and "--prometheus-textfile" in r["message"]]
    assert len(ours) == 1 and "No such file or directory" in ours[0]["message"]
    # Sampling went on after the failure, to the end.
    later = [r for r in log if r["type"] in ("sample", "end") and r["time"] > ours[0]["time"]]
    assert len(later) >= 2 and log[-1]["type"] == "end" and report["duration_s"] >= 2.5


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("carbonwrap.txt", "only *.prom files"),
        ("missing/carbonwrap.prom", "does not exist or is not writable"),
    ],
)
def test_a_bad_path_is_one_line_and_exit_125_before_the_command_runs(
    workdir: Path, target: str, says: str
) -> None:
    marker = workdir / "ran"
    result = run_cw(
        "run", "--prometheus-textfile", target, "--",
        sys.executable, "-c", f"open({str(marker)!r}, 'w')",
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 125
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("carbonwrap: --prometheus-textfile")
    assert says in lines[0]
    assert not marker.exists()
    assert not logs_in(workdir)  # nothing left behind
