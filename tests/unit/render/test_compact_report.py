"""Issue 14, "a report worth reading": the compact final report and --verbose, equivalents that
say something, the outcome of each run for scripts with numbers rounded to what was measured,
the table fitted to 60 and 80 columns, filtered notes, and doctor wrapped to the terminal."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.console import Console

from carbonwrap.doctor.checks import Check
from carbonwrap.intensity.table import defaults
from carbonwrap.render import doctor as doctor_render
from carbonwrap.render.exports import report_document, runs_csv
from carbonwrap.render.final import (
    compact_view,
    render_rich,
    render_text,
    report_view,
    warnings_of,
)
from carbonwrap.render.json import OUTCOMES, rounded, run_document
from carbonwrap.render.runs import render_rich as table_rich
from carbonwrap.render.runs import render_text as table_text
from carbonwrap.render.runs import runs_view
from carbonwrap.report.model import ReadStats
from carbonwrap.report.select import build_report
from carbonwrap.run.options import RunOptions
from carbonwrap.run.outputs import equivalents
from carbonwrap.runlog.summary import ComponentSummary, GpuSummary, RunSummary
from carbonwrap.settings.resolve import Config

EQUIVALENTS = equivalents(defaults())
NO_RAPL = (
    "RAPL unavailable, CPU energy estimated: no RAPL package zones under /sys/class/powercap "
    "(no intel_rapl driver, a VM, or not Intel/AMD)"
)
NO_DRIVER = "unavailable: no NVIDIA driver (none of /proc/driver/nvidia/version exist)"


def summary(**changes: Any) -> RunSummary:
    """A short run on a VM, as this development VM reports it (the issue's example)."""
    s = RunSummary(
        run_id="0123456789ab",
        command=["python3", "-c", "sum(range(10**7))"],
        host="vm",
        started_at="2026-12-07T02:00:28.000Z",
        ended_at="2026-12-07T02:00:28.300Z",
        duration_s=0.3,
        cpu_s=0.28,
        cpu_accounting="cgroup2",
        exit_code=0,
        complete=True,
        components={
            "cpu": ComponentSummary("estimate", "default estimate: 12 W per busy CPU", 3.3, 3.48),
            "dram": ComponentSummary("estimate", "0.3725 W per GB", 0.52, 0.6),
            "gpu": ComponentSummary(NO_DRIVER),
        },
        region={"code": "WORLD", "detail": "no region given"},
        intensity_mean_g_per_kwh=472.93999999999994,
        intensity_min_g_per_kwh=472.94,
        intensity_max_g_per_kwh=472.94,
        intensity_sources=["static table: World 2024, Ember 2024 world average (CC BY 4.0)"],
        intensity_signals=["average"],
        co2e_g=0.000436,
        notes=[NO_RAPL],
        log_path="logs/carbonwrap-x.jsonl",
    )
    for key, value in changes.items():
        setattr(s, key, value)
    return s


def rich_lines(renderable: object, width: int = 100) -> list[str]:
    console = Console(record=True, width=width, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().splitlines()


# ── the final report ────────────────────────────────────────────────────────────────────────


def test_the_default_report_is_four_lines_here() -> None:
    text = render_text(compact_view(summary()))
    assert text == (
        "carbonwrap: python3 -c 'sum(range(10**7))' · exit 0 · 0.3 s\n"
        "  Energy  3.82 J = CPU 3.30 J (estimate) + DRAM 0.520 J (estimate)\n"
        "  CO2e    436 µg at 472.9 g/kWh, region WORLD; "
        "static table: World 2024, Ember 2024 world average (CC BY 4.0)\n"
        "  Log     logs/carbonwrap-x.jsonl\n"
    )  # no GPU here, and no RAPL on a VM: nothing to warn about, the method says "estimate"
    lines = rich_lines(render_rich(compact_view(summary())), width=200)
    assert [line.strip() for line in lines] == [line.strip() for line in text.splitlines()]


def test_verbose_has_the_bases_the_devices_the_cpu_time_and_the_equivalents() -> None:
    big = summary(co2e_g=99.0)
    text = render_text(report_view(big, EQUIVALENTS))
    for part in ("whole device", "CPU basis", "default estimate: 12 W", "CPU time", "PUE",
                 "Intensity", "≈", "driven by an average new car", "of petrol burned",
                 "GPU", NO_DRIVER, "note: " + NO_RAPL):  # fmt: skip
        assert part in text, part
    compact = render_text(compact_view(big))
    for part in ("whole device", "basis", "CPU time", "≈", "note:", "GPU"):
        assert part not in compact, part


@pytest.mark.parametrize(
    ("grams", "car", "petrol"),
    [
        (0.00000265, None, None),  # 0.0248 mm and 0.00113 µl: nothing worth saying
        (0.000436, "4.08 mm", None),  # 0.186 µl of petrol: below 0.01 ml, left out
        (0.0031, "29.0 mm", None),
        (0.05, "468 mm", "0.021 ml"),  # never µl
        (99.0, "927 m", "42.2 ml"),
        (99_000.0, "927 km", "42.2 l"),
    ],
)
def test_equivalents_never_show_a_tiny_fraction(
    grams: float, car: str | None, petrol: str | None
) -> None:
    assert [e.amount(grams) for e in EQUIVALENTS] == [car, petrol]
    text = render_text(report_view(summary(co2e_g=grams), EQUIVALENTS))
    assert "µl" not in text and text.count("≈") == (car is not None) + (petrol is not None)


def test_real_warnings_stay_and_explanations_go_to_verbose() -> None:
    notes = [
        NO_RAPL,  # a VM: the method says "estimate", doctor says why
        "RAPL zone skipped: intel-rapl:2: psys",
        "RAPL has no dram zone here; DRAM estimated from resident memory",
        "removed 2 empty cgroup leaf/leaves left by killed runs",
        "CPU time counted by polling the process tree (approximate)",
        NO_RAPL + "; skipped: intel-rapl:0: cannot read energy_uj",  # there but unreadable
        "cannot read /sys/class/powercap/intel-rapl:0/energy_uj: permission denied. fix it",
        "GPU 0 (NVIDIA A100): nvmlDeviceGetTotalEnergyConsumption failed",
        "the log is incomplete: No space left on device",
    ]
    assert warnings_of(notes) == notes[5:]
    text = render_text(compact_view(summary(notes=notes)))
    assert [line for line in text.splitlines() if line.startswith("  note: ")] == [
        f"  note: {note}" for note in notes[5:]
    ]
    assert text.count("\n") == 4 + 4  # one line per real warning
    assert render_text(report_view(summary(notes=notes))).count("  note: ") == len(notes)


@pytest.mark.parametrize(
    ("changes", "ending", "alarm"),
    [
        ({}, "· exit 0 ·", False),
        ({"exit_code": 3}, "· exit 3 ·", True),
        ({"exit_code": 143, "signal": "SIGTERM"}, "· killed by SIGTERM (exit 143) ·", True),
        (
            {"exit_code": 143, "signal": "SIGTERM", "stopped": "budget 1 J exceeded"},
            "· stopped by --budget, killed by SIGTERM (exit 143) ·",
            True,
        ),
        ({"complete": False, "exit_code": None}, "· incomplete (no end record) ·", False),
    ],
)
def test_the_title_says_how_it_ended_and_a_failure_stands_out(
    changes: dict[str, Any], ending: str, alarm: bool
) -> None:
    view = compact_view(summary(**changes))
    assert ending in view.title and view.alarm is alarm
    console = Console(record=True, width=120, force_terminal=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render_rich(view))
    first = console.export_text(styles=True).splitlines()[0]
    assert ("\x1b[1;31m" in first) is alarm  # bold red


def test_the_energy_line_with_a_gpu_rapl_and_process_tree_polling() -> None:
    gpu = GpuSummary(0, "NVIDIA H100", "GPU-0", "nvml-counter", False, 157.5, 280.0, {"sole": 3})
    s = summary(
        components={
            "cpu": ComponentSummary("rapl", "", 36.0, 72.0),
            "dram": ComponentSummary("rapl", "", 3.6, 7.2),
            "gpu": ComponentSummary("nvml-counter", "", 157.5, 280.0),
        },
        gpus={0: gpu},
        cpu_accounting="process-tree",
        pue=1.2,
    )
    energy, co2e = (value for _, value in compact_view(s).facts[:2])
    assert energy == (
        "197 J = CPU 36.0 J (rapl) + DRAM 3.60 J (rapl) + GPU 158 J (nvml-counter); "
        "CPU time by process-tree (approximate)"
    )
    assert co2e.startswith("436 µg with PUE 1.20 at 472.9 g/kWh, region WORLD; static table")
    assert "GPU 0 NVIDIA H100" in render_text(report_view(s))  # devices: --verbose


def test_what_is_not_measured_and_an_unknown_intensity_are_said() -> None:
    s = summary(
        components={
            "cpu": ComponentSummary("rapl", "", 36.0, 72.0),
            "gpu": ComponentSummary("unavailable: NVML failed: driver/library mismatch"),
        },
        intensity_mean_g_per_kwh=None,
        intensity_signals=["marginal"],
    )
    energy, co2e = (value for _, value in compact_view(s).facts[:2])
    assert energy == "36.0 J = CPU 36.0 J (rapl); GPU not measured"
    assert co2e == "436 µg, grid intensity unknown"
    moer = summary(intensity_signals=["marginal"], intensity_min_g_per_kwh=400.0)
    co2e = compact_view(moer).facts[1][1]
    assert "g/kWh (mean), region WORLD" in co2e and co2e.endswith("not average intensity")


def test_predictions_budget_and_a_scheduled_start_stay_in_the_compact_report() -> None:
    prediction = {
        "elapsed_s": 10.0, "report_elapsed_s": 10.0, "done": 5.0, "total": 10.0,
        "fraction": 0.5, "duration_s": 20.0, "energy_j": 7.0, "co2e_g": 0.001,
        "duration_margin_s": None, "energy_margin_j": None, "co2e_margin_g": None,
        "intensity_g_per_kwh": 472.9, "unit": "epoch", "intensity_basis": "current",
        "basis": "from 5 epochs", "intervals": 5,
    }  # fmt: skip
    budget = {"limit": "1 J", "quantity": "energy", "limit_value": 1.0, "on_exceed": "warn",
              "grace_s": 10.0, "events": []}  # fmt: skip
    s = summary(predictions={"first": prediction, "last": prediction}, budget=budget)
    labels = [label for label, _ in compact_view(s).facts]
    assert labels == ["Energy", "CO2e", "Prediction", "", "", "Budget", "Log"]
    assert "  Prediction  at 50 % after 10 s" in render_text(compact_view(s))


# ── --verbose: the setting and the option ───────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("flag", "environ", "verbose"),
    [
        (None, {}, False),
        (True, {}, True),
        (None, {"CARBONWRAP_VERBOSE": "1"}, True),
        (None, {"CARBONWRAP_VERBOSE": "false"}, False),
    ],
)
def test_verbose_is_a_setting(flag: bool | None, environ: dict[str, str], verbose: bool) -> None:
    resolved = Config([], []).resolve({"verbose": flag}, environ)
    assert resolved["verbose"].value is verbose
    options = RunOptions.from_settings(resolved, ("true",), (None, None, None))
    assert options.verbose is verbose


def test_the_run_command_has_v_and_verbose() -> None:
    from carbonwrap.cli.definition import run

    [option] = [p for p in run.params if p.name == "verbose"]
    assert option.opts == ["-v", "--verbose"] and option.is_flag  # type: ignore[attr-defined]


# ── JSON: the outcome, and numbers rounded to what was measured ─────────────────────────────


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, "ok"),
        ({"exit_code": 3}, "failed"),
        ({"exit_code": 143, "signal": "SIGTERM"}, "killed"),
        ({"exit_code": 143, "signal": "SIGTERM", "stopped": "budget 1 J exceeded"}, "stopped"),
        ({"complete": False, "exit_code": None}, "incomplete"),
        ({"complete": False, "exit_code": None, "signal": "SIGKILL"}, "incomplete"),
        ({"exit_code": None}, "incomplete"),  # an end record without a status: not known
    ],
)
def test_status_is_the_outcome_apart_from_the_logs_completeness(
    changes: dict[str, Any], status: str
) -> None:
    s = summary(**changes)
    document = run_document(s)
    assert document["schema"] == "carbonwrap.run/2"
    assert document["status"] == status and status in OUTCOMES
    assert document["log_complete"] is s.complete
    [row] = list(csv_rows(runs_csv([s])))
    assert row["status"] == status and row["log_complete"] == str(s.complete).lower()


def csv_rows(text: str) -> Any:
    import csv
    import io

    return csv.DictReader(io.StringIO(text))


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def _significant(value: float) -> int:
    mantissa = repr(value).split("e")[0].replace("-", "").replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) or 1


def test_json_numbers_are_rounded_to_what_was_measured() -> None:
    s = summary(duration_s=1.23456789, cpu_s=0.123456789, pue=1.2)
    s.components["cpu"].energy_j = 1234.56789012345
    document = run_document(s)
    assert document["intensity"]["mean_g_per_kwh"] == 472.94  # not 472.93999999999994
    assert document["duration_s"] == 1.235  # the log's ms
    assert document["cpu_seconds"] == 0.123457  # the log's µs
    assert document["energy_kwh"]["cpu"] == 0.000342936
    assert document["pue"] == 1.2
    assert all(_significant(f) <= 6 for f in _floats(document)), document
    both = report_document(build_report([s, summary()], ReadStats(logs=2)))
    assert all(_significant(f) <= 6 for f in _floats(both)), both  # no 2001.0252001388889
    assert both["totals"]["energy_kwh"] == 0.000344141


def test_nested_documents_are_rounded_by_key() -> None:
    document = {"waited_s": 12.3456, "mean_g_per_kwh": 123.456789, "energy_kwh": 0.1 + 0.2}
    document |= {"done": 3, "ok": True, "x": [1 / 3]}
    assert rounded(document) == {
        "waited_s": 12.346,
        "mean_g_per_kwh": 123.46,
        "energy_kwh": 0.3,
        "done": 3,
        "ok": True,
        "x": [0.333333],
    }


# ── the table: 60 and 80 columns, tags and region, failures ──────────────────────────────────


def table_runs() -> list[RunSummary]:
    base = ["python", "train.py", "--config", "configs/experiments/2026/baseline/lr-0.1.yaml"]
    return [
        summary(run_id="1", command=base, tags={"exp": "a", "seed": "1"},
                region={"code": "DK"}, started_at="2026-12-07T02:00:00.000Z"),
        summary(run_id="2", command=[*base[:3], base[3].replace("0.1", "0.3")],
                tags={"exp": "a", "seed": "2"}, region={"code": "DK"},
                started_at="2026-12-07T02:10:00.000Z"),
        summary(run_id="3", command=["sh", "-c", "exit 3"], exit_code=3, tags={"exp": "b"},
                region={"code": "FR"}, started_at="2026-12-07T02:20:00.000Z"),
        summary(run_id="4", command=["sh", "-c", "kill -TERM $$"], exit_code=143,
                signal="SIGTERM", started_at="2026-12-07T02:30:00.000Z"),
        summary(run_id="5", command=["python", "-c", "while True: pass"], exit_code=143,
                signal="SIGTERM", stopped="budget 1 J exceeded",
                started_at="2026-12-07T02:40:00.000Z"),
    ]  # fmt: skip


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_table_fits_the_width_keeping_numbers_and_what_tells_runs_apart(width: int) -> None:
    view = runs_view(build_report(table_runs(), ReadStats(logs=5)))
    for lines in (table_text(view, width).splitlines(), rich_lines(table_rich(view), width)):
        assert all(len(line) <= width for line in lines), "\n".join(lines)
        text = "\n".join(lines)
        assert "lr-0.1.yaml" in text and "lr-0.3.yaml" in text  # the distinguishing argument
        numbers = [row[i] for row in view.rows for i in sorted(view.right)[-2:]]
        for cell in (*numbers, "ok", "FAILED exit 3", "KILLED SIGTERM", "STOPPED budget"):
            assert cell in text, (cell, text)  # energy and CO2e never cut
        assert ("exp=a seed=1" in text) is (width >= 80)  # tags: the last to go
        assert ("FR" in text) is (width >= 200)  # region and host: the first
    every = table_text(view)  # a pipe or a file: every column
    assert every.splitlines()[0].split() == [
        "start", "(UTC)", "command", "tags", "host", "region", "duration", "energy", "CO2e",
        "status",
    ]  # fmt: skip


def test_failed_killed_and_stopped_rows_are_red_on_a_terminal() -> None:
    view = runs_view(build_report(table_runs(), ReadStats(logs=5)))
    console = Console(record=True, width=200, force_terminal=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table_rich(view))
    rows = console.export_text(styles=True).splitlines()
    red = [row for row in rows if "\x1b[31m" in row]
    assert len(red) == 3 and all(re.search("FAILED|KILLED|STOPPED", row) for row in red)


def test_groups_count_failed_runs_and_fit() -> None:
    view = runs_view(build_report(table_runs(), ReadStats(logs=5), "tag:exp"))
    assert view.header == ("tag:exp", "runs", "run time", "energy", "CO2e", "failed")
    assert table_text(view, 60).splitlines()[0].split()[2:4] == ["run", "time"]
    text = table_text(view, 50)
    assert all(len(line) <= 50 for line in text.splitlines())
    assert text.splitlines()[0].split() == ["tag:exp", "runs", "energy", "CO2e", "failed"]


def test_a_filtered_report_counts_only_what_it_shows() -> None:
    """Before: "1 without an end record" and "3 corrupt lines" of runs the filter left out."""
    runs = table_runs()
    runs.append(summary(run_id="6", complete=False, exit_code=None, tags={"exp": "z"},
                        bad_lines=3))  # fmt: skip
    stats = ReadStats(logs=6, incomplete=1, bad_lines=3)
    whole = table_text(runs_view(build_report(runs, stats)))
    assert "1 without an end record" in whole and "3 corrupt lines skipped" in whole
    shown = build_report(runs, ReadStats(logs=6, incomplete=1, bad_lines=3), tags={"exp": "a"})
    text = table_text(runs_view(shown))
    assert "without an end record" not in text and "corrupt" not in text
    assert "2 runs shown, from 6 logs; 4 runs outside the filters left out" in text
    assert report_document(shown)["totals"]["incomplete_runs"] == 0
    inside = build_report(runs, ReadStats(logs=6, incomplete=1, bad_lines=3), tags={"exp": "z"})
    text = table_text(runs_view(inside))
    assert "1 without an end record" in text and "3 corrupt lines skipped in the runs shown" in text


# ── doctor ──────────────────────────────────────────────────────────────────────────────────


def test_doctor_wraps_to_the_terminal() -> None:
    checks = [
        Check("rapl", "missing", "no RAPL package zones under /sys/class/powercap (no "
              "intel_rapl driver, a VM, or not Intel/AMD)", "on bare-metal Intel, or AMD Zen "
              "with Linux 5.8+: `sudo modprobe intel_rapl_msr`"),
        Check("cpu estimate", "warn", "CPU: default estimate: 12 W per busy logical CPU", None),
    ]  # fmt: skip
    assert doctor_render.render_text(checks, True) == doctor_render.render_text(checks, True, 200)
    for width in (60, 80):
        text = doctor_render.render_text(checks, True, width)
        lines = text.splitlines()
        assert all(len(line) <= width for line in lines), text
        assert lines[0].startswith("rapl          missing  no RAPL package zones")
        assert lines[1].startswith(" " * 23) and not lines[1][23].isspace()  # under its column
        fix = next(line for line in lines if "fix:" in line)
        assert fix.startswith(" " * 23 + "fix: on bare-metal")
        words = " ".join(line.strip() for line in lines if line.strip())
        assert "`sudo modprobe intel_rapl_msr`" in words


def test_a_host_without_any_gpu_says_nothing_about_gpus_and_amd_notes_explain() -> None:
    no_gpu = "unavailable: no GPU found (no NVIDIA or AMD driver, no Intel/AMD card with a sensor)"
    s = summary(
        components={
            **summary().components,
            "gpu": ComponentSummary(no_gpu),
        },
        notes=[
            NO_RAPL,
            "amd_energy unavailable too: no amd_energy hwmon device under /sys/class/hwmon",
            "AMD Zen CPUs have no DRAM RAPL domain: DRAM energy is estimated from resident memory",
        ],
    )
    view = compact_view(s)
    energy = dict(view.facts)["Energy"]
    assert "GPU" not in energy and "not measured" not in energy
    assert view.notes == []


def test_a_members_full_report_says_why_it_has_no_whole_device_figures() -> None:
    member = render_text(report_view(summary(node_role="member")))
    assert "the whole-device figures are logged once, by the node's leader" in member
    assert "node's leader" not in render_text(report_view(summary()))
