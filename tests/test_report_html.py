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
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.render import units
from carbonwrap.report.read import summarize_log
from carbonwrap.report.series import MAX_CHARTS, MAX_POINTS, read_series
from carbonwrap.runlog import records as events
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z
HOSTILE = "<script>alert(1)</script>"
CHROMIUM = "/usr/bin/chromium"


# ── logs ─────────────────────────────────────────────────────────────────────────────────────


def write_log(
    directory: Path,
    run_id: str,
    *,
    t0: float = T0,
    samples: int = 720,
    step_s: float = 10.0,
    argv: list[str] | None = None,
    host: str = "gpu-node-07",
    tags: dict[str, str] | None = None,
    measured: bool = True,
    end: bool = True,
) -> Path:
    """A training run as the real writer logs it: RAPL CPU and DRAM, one NVML GPU whose power
    dips during evaluation every 20 minutes, grid intensity changing every 30 minutes and (with
    `measured`) measured history for the first hour arriving at the end."""
    log = EventLog(str(directory), f"carbonwrap-{run_id}.jsonl")
    gpu = {"index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1",
           "energy_method": "nvml-counter", "mig": False}  # fmt: skip
    log.write(
        events.start(
            run_id=run_id, time_s=t0, argv=argv or ["python", "train.py", "--epochs", "3"],
            cwd="/home/ada/project", host=host, pid=4242, versions={"carbonwrap": "0.1.0"},
            cpu_accounting="cgroup2",
            components={
                "cpu": {"method": "rapl", "basis": "1 package zone(s); share = tree CPU time / "
                        "all CPUs' busy time"},
                "dram": {"method": "rapl", "basis": "dram zone(s); same CPU-time share"},
                "gpu": {"method": "nvml-counter", "basis": "per GPU and interval: sole user",
                        "devices": [gpu]},
            },
            region={"code": "DK-DK1", "kind": "zone", "source": "flag", "detail": ""},
            pue=1.2, interval_s=1.0, log_interval_s=step_s, job={}, tags=tags or {},
        )
    )  # fmt: skip
    energy = {"cpu": 0.0, "dram": 0.0, "gpu": 0.0}
    values = (180.0, 150.0, 120.0, 160.0)
    for i in range(samples + 1):
        t = i * step_s
        if t % 1800 == 0 and (t // 1800) < len(values) * 10:
            log.write(
                events.intensity(
                    time_s=t0 + t, elapsed_s=t, intensity_g_per_kwh=values[int(t // 1800) % 4],
                    region="DK-DK1", source="Energi Data Service", kind="latest",
                )
            )  # fmt: skip
        if i == 0:
            continue
        evaluating = (t % 1200) < 120
        energy["cpu"] += step_s * (18.0 if evaluating else 42.0 + 3 * math.sin(t / 300))
        energy["dram"] += step_s * 5.5
        energy["gpu"] += step_s * (85.0 if evaluating else 265.0 + 10 * math.sin(t / 97))
        last = end and i == samples
        build = events.end if last else events.sample
        extra: dict[str, Any] = {}
        if last:
            extra = {"exit_code": 0, "signal": None, "leftover_pids": [], "signals_received": []}
        log.write(
            build(
                time_s=t0 + t, elapsed_s=t, cpu_s=t * 0.9, energy_j=dict(energy),
                device_energy_j={k: 1.4 * v for k, v in energy.items()},
                gpus={0: {"energy_j": energy["gpu"], "device_energy_j": energy["gpu"],
                          "methods": {"sole-user": i}}},
                **extra,
            )
        )  # fmt: skip
        if measured and i == samples:
            log.write(
                events.intensity(
                    time_s=t0 + t, elapsed_s=t, intensity_g_per_kwh=140.0, region="DK-DK1",
                    source="Energi Data Service history", kind="measured", valid_from_s=t0,
                    valid_to_s=t0 + 3600,
                )
            )  # fmt: skip
    log.close()
    return Path(log.path)


def sample_lines(path: Path) -> int:
    return sum(r["type"] in ("sample", "end") for r in records(path))


class Page(HTMLParser):
    """What the page holds: elements in order with their attributes, text, and nesting errors."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "wbr"})  # never closed

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []
        self._open: list[str] = []
        self.feed(text)
        self.close()
        if self._open:
            self.errors.append(f"never closed: {self._open}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self._open[-1:]}")
            return
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


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
        assert math.isclose(float(co2e["data-co2e-g"]), run["co2e_kg"] * 1000, rel_tol=1e-9)
        assert units.mass(run["co2e_kg"] * 1000) in text.split(co2e["d"])[1].split("</svg>")[0]
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


def test_only_the_most_recent_runs_are_charted(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for i in range(MAX_CHARTS + 3):
        write_log(logs, f"run{i:08d}", t0=T0 + 60 * i, samples=3, measured=False,
                  argv=["python", "step.py", str(i)])  # fmt: skip
    target = tmp_path / "r.html"
    assert report(ReportOptions(paths=[logs], html=str(target)), {}, io.StringIO(),
                  io.StringIO()) == 0  # fmt: skip
    text = target.read_text()
    page = Page(text)
    assert len(page.all("tr")) == 1 + MAX_CHARTS + 3 + 1  # the table has every run
    sections = page.all("section")
    assert len(sections) == MAX_CHARTS
    assert f"The {MAX_CHARTS} most recent runs" in text and "3 earlier runs left out" in text
    assert "step.py 3</code>" in text and "step.py 2</code>" not in text  # the oldest left out
    assert len(text) < 600_000


def test_a_long_run_is_thinned_and_still_ends_at_its_co2e(tmp_path: Path) -> None:
    log = write_log(tmp_path, "long00000001", samples=5000, step_s=10)  # 14 h, measured history
    series = read_series(log)
    assert series is not None and series.samples == 5000
    assert len(series.elapsed_s) <= MAX_POINTS + 2
    assert series.elapsed_s[-1] == 50_000
    assert math.isclose(series.co2e_g[-1], summarize_log(log).co2e_g, rel_tol=1e-9)
    # Mean power over the thinned intervals still adds up to the energy.
    for name, power in series.power_w.items():
        spans = [b - a for a, b in zip(series.elapsed_s, series.elapsed_s[1:], strict=False)]
        energy = sum(p * s for p, s in zip(power, spans, strict=True))
        assert math.isclose(energy, summarize_log(log).components[name].energy_j or 0, rel_tol=1e-9)


def test_skipping_samples_prices_every_point_as_a_fold_of_every_record(tmp_path: Path) -> None:
    """The series parses only the samples the fold needs; a fold of every record (measured
    history first, as the series does) gives the same CO2e at each point drawn."""
    log = write_log(tmp_path, "every0000001", samples=2000, step_s=9)  # buckets split points
    series = read_series(log)
    assert series is not None
    everything = records(log)
    fold = Fold()
    for r in [everything[0], *(r for r in everything if r.get("kind") == "measured")]:
        fold.add(r)
    at_samples = []
    for r in everything[1:]:
        if r.get("kind") != "measured":
            fold.add(r)
        if r["type"] in ("sample", "end"):
            at_samples.append((fold.s.duration_s, fold.summary().co2e_g))
    every = math.ceil(len(at_samples) / MAX_POINTS)
    drawn = [at_samples[i] for i in range(len(at_samples))
             if i % every == every - 1 or i == len(at_samples) - 1]  # fmt: skip
    assert [t for t, _ in drawn] == series.elapsed_s[1:]
    for (_, expected), got in zip(drawn, series.co2e_g[1:], strict=True):
        assert math.isclose(got, expected, rel_tol=1e-9)


def test_a_killed_run_is_drawn_to_its_last_sample(tmp_path: Path) -> None:
    log = write_log(tmp_path, "killed000001", samples=30, end=False, measured=False)
    series = read_series(log)
    assert series is not None and series.elapsed_s[-1] == 300
    target = tmp_path / "r.html"
    report(ReportOptions(paths=[tmp_path], html=str(target)), {}, io.StringIO(), io.StringIO())
    assert "No end record (killed, or still running)" in target.read_text()


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
