"""`carbonwrap report --html FILE`: one self-contained page from real logs of real runs and from
logs written by the real log writer (a GPU run, intensity changes, measured history, hostile
strings); its table, charts, escaping, atomic writing, and a look at it in headless Chromium."""

from __future__ import annotations

import io
import json
import math
import os
import shlex
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw
from html_page import Page
from training_log import T0, write_log

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.render import units
from carbonwrap.report.read import summarize_log
from carbonwrap.report.series import MAX_POINTS, read_series

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"


def sample_lines(path: Path) -> int:
    return sum(r["type"] in ("sample", "end") for r in records(path))


def path_points(d: str) -> int:
    """Points of a path drawn with M/L (the CO2e line)."""
    return sum(d.count(c) for c in "ML")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs (one with a hostile command and tag), a logged GPU run with measured
    history, and a logged run whose host and command are markup."""
    cwd = tmp_path_factory.mktemp("html")
    busy = "import time; sum(range(4_000_000)); time.sleep(0.3); sum(range(4_000_000))"
    common = ["run", "-q", "--log-dir", "logs", "--intensity-source", "static", "--interval",
              "0.1", "--log-interval", "0.2"]  # fmt: skip
    procs = [
        subprocess.Popen(cw_argv(*common, "--region", "DK", "--pue", "1.2", "--tag", "exp=a",
                                 "--", sys.executable, "-c", busy), cwd=cwd, env=cw_env()),
        subprocess.Popen(cw_argv(*common, "--tag", f"exp={HOSTILE}", "--", sys.executable, "-c",
                                 f"print({HOSTILE!r})", HOSTILE),
                         cwd=cwd, env=cw_env(), stdout=subprocess.DEVNULL),
    ]  # fmt: skip
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    write_log(cwd / "logs", "00000000gpu1", tags={"exp": "a"})
    write_log(cwd / "logs", "0000000evil1", t0=T0 + 9000, samples=5,
              argv=["sh", "-c", f"</code>{HOSTILE}"], host='"><img src=x onerror=alert(2)>',
              tags={"exp": "<b>x</b>"}, measured=False)  # fmt: skip
    assert len(logs_in(cwd / "logs")) == 4
    return cwd / "logs"


def html_report(logs: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """The page for `report LOGS ARGS --html`, and the JSON document of the same report."""
    out = logs.parent / "out"
    out.mkdir(exist_ok=True)
    target = out / "report.html"
    result = run_cw("report", str(logs), *args, "--html", str(target), cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    document = run_cw("report", str(logs), *args, "--json", cwd=logs.parent)
    return target.read_text(encoding="utf-8"), json.loads(document.stdout)


# ── the page ─────────────────────────────────────────────────────────────────────────────────


def test_the_page_is_whole_self_contained_and_lists_every_run(logs: Path) -> None:
    text, document = html_report(logs)
    page = Page(text)
    assert page.errors == []
    assert text.startswith("<!DOCTYPE html>")
    # Nothing to fetch, nothing to run: no URLs, scripts, external resources or handlers.
    assert "http://" not in text and "https://" not in text
    assert not page.all("script") and not page.all("link") and not page.all("img")
    assert all(not k.startswith("on") for _, attrs in page.elements for k in attrs)
    assert all(a["href"].startswith("#") for a in page.all("a"))
    rows = [a for t, a in page.elements if t == "tr"]
    runs = document["runs"]
    assert len(runs) == 4
    assert len(rows) == 1 + len(runs) + 1  # header, one per run, total
    titles = [a["title"] for a in page.all("td") if "title" in a]
    assert titles == [shlex.join(r["command"]) for r in runs]
    total = units.mass(document["totals"]["co2e_kg"] * 1000)
    assert total in "".join(page.text)
    # Every run charted, each with an anchor the table links to.
    sections = page.all("section")
    assert [s["id"] for s in sections] == [f"run-{i}" for i in range(4)]
    links = sorted(a["href"] for a in page.all("a"))
    assert links == ["#charts"] + [f"#run-{i}" for i in range(4)]
    assert page.all("h2", id="charts")


def test_hostile_strings_are_text(logs: Path) -> None:
    text, _ = html_report(logs)
    page = Page(text)
    assert HOSTILE not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    shown = "".join(page.text)
    assert HOSTILE in shown  # the command is shown, as text
    assert '"><img src=x onerror=alert(2)>' in shown  # the host
    assert page.errors == []


def test_charts_have_a_point_per_sample_and_end_at_the_runs_co2e(logs: Path) -> None:
    text, document = html_report(logs)
    page = Page(text)
    co2e_paths = page.all("path", class_="co2e")
    assert len(co2e_paths) == 4
    for run, co2e in zip(document["runs"], co2e_paths, strict=True):
        log = Path(run["log_path"])
        samples = sample_lines(log)
        series = read_series(log)
        assert series is not None
        if samples <= MAX_POINTS:
            assert path_points(co2e["d"]) == samples + 1  # and the start, at 0
        else:
            every = math.ceil(samples / MAX_POINTS)
            assert path_points(co2e["d"]) == samples // every + (samples % every > 0) + 1
        assert len(series.elapsed_s) == path_points(co2e["d"])
        # The last point is the run's CO2e, as the report computes it (the fast reading).
        # The JSON document's CO2e is rounded to 6 significant digits.
        assert math.isclose(float(co2e["data-co2e-g"]), run["co2e_kg"] * 1000, rel_tol=1e-5)
        end_label = units.mass(float(co2e["data-co2e-g"]))  # the JSON's is rounded
        assert end_label in text.split(co2e["d"])[1].split("</svg>")[0]
        assert math.isclose(series.co2e_g[-1], summarize_log(log).co2e_g, rel_tol=1e-9)
        assert all(b >= a for a, b in zip(series.co2e_g, series.co2e_g[1:], strict=False))
    # Power: a step line per measured component, one horizontal step per interval.
    for index, run in enumerate(document["runs"]):
        section = text.split(f'id="run-{index}"')[1].split("</section>")[0]
        lines = Page(section).all("path", class_="power")
        measured = [n for n, kwh in run["energy_kwh"].items() if n != "total" and kwh is not None]
        assert [p["data-component"] for p in lines] == measured
        points = path_points(Page(section).all("path", class_="co2e")[0]["d"])
        assert all(p["d"].count("H") == points - 1 for p in lines)


def test_estimates_and_unmeasured_components_say_so(logs: Path) -> None:
    text, document = html_report(logs)
    real = next(i for i, r in enumerate(document["runs"]) if r["tags"].get("exp") == "a"
                and r["host"] != "gpu-node-07")  # fmt: skip
    section = text.split(f'id="run-{real}"')[1].split("</section>")[0]
    cpu = document["runs"][real]["methods"]["cpu"]
    if cpu == "estimate":
        assert "CPU · estimate" in section and "stroke-dasharray" in section
        assert "estimates, not measured (dashed)" in section or "is an estimate" in section
    gpu = document["runs"][real]["methods"]["gpu"]
    if gpu.startswith("unavailable"):
        assert "GPU not measured (unavailable" in section
    gpu_run = next(i for i, r in enumerate(document["runs"]) if r["host"] == "gpu-node-07")
    section = text.split(f'id="run-{gpu_run}"')[1].split("</section>")[0]
    for label in ("CPU · rapl", "DRAM · rapl", "GPU · nvml-counter"):
        assert label in section
    assert "stroke-dasharray" not in section
    assert "720 samples drawn as 240 points" in section
    assert "sole-user 720" in section  # the GPU's attribution method, counted


def test_filters_and_groups_apply_to_the_table_and_the_charts(logs: Path) -> None:
    text, document = html_report(logs, "--tag", "exp=a")
    assert len(document["runs"]) == 2
    page = Page(text)
    assert len(page.all("section")) == 2
    assert [a["title"] for a in page.all("td") if "title" in a] == [
        shlex.join(r["command"]) for r in document["runs"]
    ]
    assert "tags exp=a" in "".join(page.text)
    text, document = html_report(logs, "--group-by", "host")
    page = Page(text)
    keys = [g["key"] for g in document["groups"]]
    cells = [c for c in page.text if c in keys]
    assert cells == keys
    assert len(page.all("tr")) == 1 + len(keys) + 1
    assert len(page.all("section")) == 4  # runs are still charted
    text, _ = html_report(logs, "--since", "2099-01-01")
    assert "No runs." in text and Page(text).errors == []


def test_html_to_stdout(logs: Path) -> None:
    result = run_cw("report", str(logs), "--html", "-", cwd=logs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>") and Page(result.stdout).errors == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--html", "x.html", "--json"], "choose one output format, not html and json"),
        (["--html", "x.html", "--format", "csv"], "choose one output format, not html and csv"),
        (["--html", "no/such/dir/x.html"], "--html no/such/dir/x.html: directory "),
        (["--html", "."], "is a directory"),
    ],
)
def test_bad_targets_are_one_line_and_exit_125(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cw("report", str(tmp_path), *args, cwd=tmp_path)
    assert result.returncode == 125
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


def test_the_file_is_replaced_whole_keeping_its_mode(logs: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    target.chmod(0o640)
    options = ReportOptions(paths=[logs], html=str(target))
    stdout, stderr = io.StringIO(), io.StringIO()
    assert report(options, {}, stdout, stderr) == 0
    assert stdout.getvalue() == ""
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary left
    new = tmp_path / "new.html"
    report(ReportOptions(paths=[logs], html=str(new)), {}, stdout, stderr)
    umask = os.umask(0)
    os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask


# ── a look in a real browser ─────────────────────────────────────────────────────────────────


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the filtered scanlines of a PNG (enough to see it is not blank)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no Chromium at /usr/bin/chromium")
def test_chromium_draws_the_page(logs: Path, tmp_path: Path) -> None:
    text, _ = html_report(logs)
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", page.as_uri()],
        capture_output=True, timeout=60, check=True, env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert shot.stat().st_size > 30_000  # text, lines and axes, not a blank page
    assert len(set(pixels)) > 64
