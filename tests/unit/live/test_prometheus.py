"""--prometheus-textfile: the exposition-format renderer and the atomic writer (and the file
read by a real node_exporter where one is installed)."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_text import check_classic_format, names, parse, value

from carbonwrap.errors import CarbonwrapError
from carbonwrap.live.textfile import TextfileExporter, check_target
from carbonwrap.render.prometheus import (
    ComponentPoint,
    PromSnapshot,
    escape_label,
    format_value,
    render_prometheus,
)
from carbonwrap.runlog import records as events
from carbonwrap.runlog.summary import Fold

HOSTILE = 'a"b\\c\nd\\n"e\\"} x{y="z"} 1\n# EOF é ☃'


def snapshot(**changes: Any) -> PromSnapshot:
    values: dict[str, Any] = {
        "run_id": "0123abcd",
        "host": "node7",
        "program": "python",
        "version": "0.1.0",
        "cpu_accounting": "cgroup2",
        "start_time_s": 1_800_000_000.5,
        "elapsed_s": 12.5,
        "cpu_s": 24.25,
        "components": [
            ComponentPoint("cpu", "rapl", 1500.0, 2000.0, 120.0),
            ComponentPoint("dram", "estimate", 30.5, 40.0, 2.5),
            ComponentPoint("gpu", "unavailable: no NVIDIA driver", None, None, None),
        ],
        "pue": 1.2,
        "co2e_g": 0.25,
        "intensity": (250.0, "DK-DK1", "energidataservice", "average"),
        "ended": False,
        "exit_code": None,
    }
    values.update(changes)
    return PromSnapshot(**values)


# --- the renderer --------------------------------------------------------------------------


def test_renders_every_family_with_units_in_names_and_plain_numbers() -> None:
    text = render_prometheus(snapshot())
    check_classic_format(text)
    types, series = parse(text)
    assert types == {
        "carbonwrap_run_info": "gauge",
        "carbonwrap_run_start_time_seconds": "gauge",
        "carbonwrap_run_duration_seconds": "gauge",
        "carbonwrap_run_ended": "gauge",
        "carbonwrap_cpu_seconds": "counter",
        "carbonwrap_component_info": "gauge",
        "carbonwrap_energy_joules": "counter",
        "carbonwrap_device_energy_joules": "counter",
        "carbonwrap_power_watts": "gauge",
        "carbonwrap_pue": "gauge",
        "carbonwrap_co2e_grams": "gauge",
        "carbonwrap_intensity_grams_per_kwh": "gauge",
    }
    run = {"run_id": "0123abcd", "host": "node7"}
    assert value(series, "carbonwrap_energy_joules_total", component="cpu", **run) == 1500.0
    assert value(series, "carbonwrap_energy_joules_total", component="dram") == 30.5
    assert value(series, "carbonwrap_device_energy_joules_total", component="cpu") == 2000.0
    assert value(series, "carbonwrap_power_watts", component="cpu") == 120.0
    assert value(series, "carbonwrap_cpu_seconds_total", **run) == 24.25
    assert value(series, "carbonwrap_co2e_grams", **run) == 0.25
    assert value(series, "carbonwrap_pue") == 1.2
    assert value(series, "carbonwrap_run_start_time_seconds") == 1_800_000_000.5
    assert value(series, "carbonwrap_run_duration_seconds") == 12.5
    assert value(series, "carbonwrap_run_ended") == 0.0
    assert (
        value(
            series,
            "carbonwrap_intensity_grams_per_kwh",
            region="DK-DK1",
            source="energidataservice",
            signal="average",
            **run,
        )
        == 250.0
    )
    info = value(series, "carbonwrap_run_info", program="python", cpu_accounting="cgroup2")
    assert info == 1.0
    # A component that is not measured has its method, and no energy series (never a silent 0).
    assert value(series, "carbonwrap_component_info", component="gpu") == 1.0
    assert not [k for k in series if k[0].startswith("carbonwrap_energy") and "gpu" in str(k)]
    assert "carbonwrap_run_exit_code" not in names(series)
    # Every series of a family has the same label names (node_exporter compares them).
    label_names: dict[str, set[frozenset[str]]] = {}
    for name, labels in series:
        label_names.setdefault(name, set()).add(frozenset(k for k, _ in labels))
    assert all(len(sets) == 1 for sets in label_names.values())


def test_after_the_end_exit_code_and_no_power() -> None:
    _, series = parse(render_prometheus(snapshot(ended=True, exit_code=137)))
    assert value(series, "carbonwrap_run_ended") == 1.0
    assert value(series, "carbonwrap_run_exit_code") == 137.0
    assert "carbonwrap_power_watts" not in names(series)  # a finished run draws nothing
    assert value(series, "carbonwrap_energy_joules_total", component="cpu") == 1500.0


def test_at_the_start_no_power_and_no_empty_families() -> None:
    start = snapshot(
        elapsed_s=0.0,
        cpu_s=0.0,
        components=[ComponentPoint("cpu", "rapl", 0.0, 0.0, None)],
        co2e_g=0.0,
        intensity=None,
        start_time_s=None,
    )
    text = render_prometheus(start)
    _, series = parse(text)
    for absent in ("power_watts", "intensity_grams_per_kwh", "run_start_time_seconds"):
        assert f"carbonwrap_{absent}" not in text  # no HELP/TYPE without samples
    assert value(series, "carbonwrap_energy_joules_total", component="cpu") == 0.0


def test_hostile_label_values_round_trip() -> None:
    text = render_prometheus(
        snapshot(
            run_id=HOSTILE,
            host=HOSTILE,
            program=HOSTILE,
            intensity=(100.0, HOSTILE, HOSTILE, "average"),
            components=[ComponentPoint("cpu", HOSTILE, 1.0, 2.0, 3.0)],
        )
    )
    check_classic_format(text)
    # Every sample is one line: a raw newline in a label would start a new one.
    assert len(text.splitlines()) == text.count("\n")
    _, series = parse(text)
    assert value(series, "carbonwrap_run_info", host=HOSTILE, program=HOSTILE) == 1.0
    assert value(series, "carbonwrap_intensity_grams_per_kwh", region=HOSTILE, source=HOSTILE)
    assert value(series, "carbonwrap_component_info", method=HOSTILE, run_id=HOSTILE) == 1.0


def test_escaping_is_exactly_the_three_the_format_defines() -> None:
    assert escape_label('\\"\n') == '\\\\\\"\\n'
    assert escape_label("tab\there\r ok ☃") == "tab\there\r ok ☃"  # nothing else is touched
    # argv bytes that are not UTF-8 reach Python as lone surrogates; the file must be UTF-8.
    undecodable = os.fsdecode(b"train-\xff.py")
    assert escape_label(undecodable) == "train-\ufffd.py"
    text = render_prometheus(snapshot(program=undecodable))
    text.encode("utf-8")  # no UnicodeEncodeError
    _, series = parse(text)
    assert value(series, "carbonwrap_run_info", program="train-\ufffd.py") == 1.0


def test_values_read_back_exactly() -> None:
    for number in (0.0, 1.0, 0.1, 1e-05, 123456789.123, 1.5e20, 2.0**-1074):
        assert float(format_value(number)) == number
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"


# --- the writer ----------------------------------------------------------------------------


def fold_with(host: str = "node7", run_id: str = "r1") -> Fold:
    fold = Fold()
    fold.add(
        events.start(
            run_id=run_id,
            time_s=1_800_000_000.0,
            argv=["/usr/bin/python3", "train.py", "--token=SECRET"],
            cwd="/w",
            host=host,
            pid=1,
            versions={},
            cpu_accounting="cgroup2",
            components={"cpu": {"method": "rapl"}, "dram": {"method": "rapl"}},
            region={"code": "DK-DK1", "source": "flag"},
            pue=1.0,
            interval_s=1.0,
            log_interval_s=10.0,
            job={},
            tags={},
        )
    )
    fold.add(
        events.intensity(
            time_s=1_800_000_000.0,
            elapsed_s=0.0,
            intensity_g_per_kwh=300.0,
            region="DK-DK1",
            source="static",
        )
    )
    return fold


def add_sample(fold: Fold, elapsed_s: float, cpu_j: float) -> None:
    fold.add(
        events.sample(
            time_s=1_800_000_000.0 + elapsed_s,
            elapsed_s=elapsed_s,
            cpu_s=elapsed_s,
            energy_j={"cpu": cpu_j, "dram": cpu_j / 10},
            device_energy_j={"cpu": cpu_j * 2, "dram": cpu_j / 5},
        )
    )


def exporter_for(fold: Fold, path: Path, warnings: list[str]) -> TextfileExporter:
    lock = threading.Lock()

    def locked(read: Callable[[Fold], Any]) -> Any:
        with lock:
            return read(fold)

    return TextfileExporter(str(path), locked, warnings.append)


def test_power_is_over_the_interval_since_the_previous_write(tmp_path: Path) -> None:
    fold = fold_with()
    path = tmp_path / "cw.prom"
    exporter = exporter_for(fold, path, [])
    exporter.write()
    _, series = parse(path.read_text())
    assert "carbonwrap_power_watts" not in names(series)
    add_sample(fold, 10.0, 500.0)
    exporter.write()
    add_sample(fold, 20.0, 1500.0)
    exporter.write()
    _, series = parse(path.read_text())
    assert value(series, "carbonwrap_power_watts", component="cpu") == pytest.approx(100.0)
    assert value(series, "carbonwrap_energy_joules_total", component="cpu") == 1500.0
    co2e = value(series, "carbonwrap_co2e_grams")
    assert co2e == pytest.approx(1650 / 3.6e6 * 300.0)  # cpu + dram at 300 g/kWh
    assert co2e == fold.summary().co2e_g  # the fold's own number, not a second derivation
    text = path.read_text()
    assert "SECRET" not in text and "train.py" not in text  # the program name only
    assert 'program="python3"' in text
    assert os.stat(path).st_mode & 0o777 == 0o644 & ~current_umask()
    assert exporter.writes == 3 and exporter.failed is None


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    # Big label values make each write several MB, so a non-atomic write would be caught.
    fold = fold_with(host="h" * 200_000)
    path = tmp_path / "cw.prom"
    exporter = exporter_for(fold, path, [])
    exporter.write()
    stop = threading.Event()
    reads: list[int] = []
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            text = path.read_text()
            reads.append(len(text))
            if not text.endswith("\n") or "carbonwrap_intensity_grams_per_kwh{" not in text:
                bad.append(text[-200:])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 60):
            add_sample(fold, float(i), 10.0**i)  # a different length every time
            exporter.write()
    finally:
        stop.set()
        thread.join()
    assert not bad
    assert len(reads) > 10 and len(set(reads)) > 1
    parse(path.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cw.prom"]  # no temporary left


def test_a_failing_write_is_remembered_warned_once_and_retried(tmp_path: Path) -> None:
    fold = fold_with()
    directory = tmp_path / "textfiles"
    directory.mkdir()
    path = directory / "cw.prom"
    warnings: list[str] = []
    exporter = exporter_for(fold, path, warnings)
    exporter.write()
    shutil.rmtree(directory)
    exporter.write()  # no exception: the run goes on
    exporter.write()
    assert exporter.failed and "No such file or directory" in exporter.failed
    assert len(warnings) == 1
    assert "--prometheus-textfile" in warnings[0] and str(path) in warnings[0]
    directory.mkdir()  # the directory is back: the next write works
    add_sample(fold, 10.0, 5.0)
    exporter.write()
    assert exporter.failed is None and len(warnings) == 1
    _, series = parse(path.read_text())
    assert value(series, "carbonwrap_energy_joules_total", component="cpu") == 5.0


def test_check_target(tmp_path: Path) -> None:
    check_target(str(tmp_path / "cw.prom"))
    with pytest.raises(CarbonwrapError, match=r"only \*\.prom files"):
        check_target(str(tmp_path / "cw.txt"))
    with pytest.raises(CarbonwrapError, match="does not exist or is not writable"):
        check_target(str(tmp_path / "missing" / "cw.prom"))
    (tmp_path / "d.prom").mkdir()
    with pytest.raises(CarbonwrapError, match="is a directory"):
        check_target(str(tmp_path / "d.prom"))


# --- a real node_exporter, where one is installed (Debian: prometheus-node-exporter) --------

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")


@pytest.mark.skipif(NODE_EXPORTER is None, reason="node_exporter is not installed")
def test_node_exporter_reads_the_file(tmp_path: Path) -> None:
    assert NODE_EXPORTER is not None
    fold = fold_with(host=HOSTILE)
    add_sample(fold, 10.0, 500.0)
    exporter = exporter_for(fold, tmp_path / "carbonwrap.prom", [])
    exporter.write()
    add_sample(fold, 20.0, 900.0)
    exporter.write()
    # A second run on the same host, its own file: same families, other run_id.
    other = fold_with(run_id="r2")
    add_sample(other, 10.0, 70.0)
    exporter_for(other, tmp_path / "other.prom", []).write()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={tmp_path}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "node_textfile_scrape_error 0" in body, err.decode()[-2000:]
    _, series = parse(body)
    assert value(series, "carbonwrap_energy_joules_total", component="cpu", host=HOSTILE) == 900.0
    assert value(series, "carbonwrap_power_watts", component="cpu", run_id="r1") == 40.0
    assert value(series, "carbonwrap_energy_joules_total", component="cpu", run_id="r2") == 70.0
