"""Others' text (argv, tags, host, cwd, paths, provider and log text) through every renderer: on
a terminal only escaped (no ESC, OSC, C1 control, lone surrogate), never rich markup, and in a
CSV never a formula. Plain text is shown exactly as it is (the golden files pin that)."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from carbonwrap.doctor.checks import ERROR, OK, Check
from carbonwrap.errors import one_line, shown
from carbonwrap.render import doctor, final, html, live, runs, schedule
from carbonwrap.render.config import config_text
from carbonwrap.render.exports import codecarbon_csv, groups_csv, report_document, runs_csv
from carbonwrap.render.text import FORMULA_STARTS, csv_cell, csv_row
from carbonwrap.report.model import Place, ReadStats, RunChart
from carbonwrap.report.select import build_report
from carbonwrap.runlog.summary import ComponentSummary, GpuSummary, RunSummary

# What no byte of others' text may become on a terminal; defined here, not taken from the code.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's and the live view's own colours, nothing else

# Each part is an attack on a terminal, a spreadsheet or rich: a title set by OSC 2, a screen
# cleared, C1 CSI and OSC, NEL, a carriage return, bytes of argv that were not UTF-8 (as Python
# decodes them: lone surrogates), a right-to-left override, a bad closing tag (rich raised
# MarkupError), a colour tag and an emoji code.
HOSTILE = (
    "=HYPERLINK(1)\x1b]2;PWNED\x07\x1b[2J\x9b31m\x9d0;t\x9c\x85\r\n\t\x7f\x00\udcff\udcfe"
    "\u202e[/x][red]red:warning:"
)
ESCAPED = (
    "=HYPERLINK(1)\\x1b]2;PWNED\\x07\\x1b[2J\\x9b31m\\x9d0;t\\x9c\\x85\\r\\n\\t\\x7f\\x00\\xff\\xfe"
    "\\u202e[/x][red]red:warning:"
)


def assert_terminal_safe(text: str, *, colours: bool = False) -> None:
    """Nothing in `text` a terminal would act on but line feeds (and SGR colours if allowed)."""
    if colours:
        text = SGR.sub("", text)
    found = {ch for line in text.split("\n") for ch in UNSAFE.findall(line)}
    assert not found, (sorted(found), text)
    text.encode("utf-8")  # a strict UTF-8 stream takes it


def rich_lines(renderable: object, width: int = 400) -> str:
    """What rich writes to a colour terminal (as run and report print it)."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="standard")
    console.print(renderable, highlight=False)
    return out.getvalue()


def hostile_summary(text: str = HOSTILE, **extra: Any) -> RunSummary:
    """A run whose every field a person or a provider could write holds `text`."""
    s = RunSummary(
        run_id="r" + text,
        command=["python", text, f"--tag={text}"],
        host="h" + text,
        cwd="/home/" + text,
        started_at="2026-11-27T06:00:00.000Z",
        ended_at="2026-11-27T06:00:10.000Z",
        duration_s=10.0,
        cpu_s=5.0,
        cpu_accounting="cgroup2",
        exit_code=0,
        signal=None,
        complete=True,
        components={
            "cpu": ComponentSummary("rapl", "basis " + text, 100.0, 200.0),
            "gpu": ComponentSummary("nvml " + text, "", 50.0, 90.0),
            "x" + text: ComponentSummary("m " + text, "", 1.0, 2.0),
        },
        gpus={
            0: GpuSummary(
                0, "GPU " + text, "GPU-1", "nvml " + text, False, 50.0, 90.0, {"sole " + text: 3}
            )
        },
        pue=1.2,
        region={"code": "C" + text, "source": "flag", "detail": "--region " + text},
        intensity_mean_g_per_kwh=100.0,
        intensity_min_g_per_kwh=50.0,
        intensity_max_g_per_kwh=150.0,
        intensity_sources=["watttime:" + text],
        intensity_signals=["average"],
        co2e_g=3.0,
        notes=["provider said " + text],
        tags={"k" + text: "v" + text, "project": text, "experiment": text},
        job={"SLURM_JOB_ID": text},
        log_path="logs/" + text + ".jsonl",
        predictions={"last": _prediction(text)},
        budget={
            "limit": "1 kJ " + text,
            "quantity": "energy",
            "limit_value": 1000.0,
            "on_exceed": "warn " + text,
            "grace_s": 1.0,
            "events": [
                {
                    "event": "exceeded",
                    "elapsed_s": 1.0,
                    "basis": text,
                    "value": 1.0,
                    "fraction": 0.5,
                    "action": "warn",
                    "message": "over " + text,
                }
            ],
        },
        stopped=None,
        schedule={"reason": "provider: " + text, "region": text, "requested_within_s": 60},
    )
    for key, value in extra.items():
        setattr(s, key, value)
    return s


def _prediction(text: str) -> dict[str, Any]:
    return {
        "elapsed_s": 1.0,
        "report_elapsed_s": 1.0,
        "done": 1,
        "total": 2,
        "unit": text,
        "fraction": 0.5,
        "duration_s": 20.0,
        "energy_j": 300.0,
        "co2e_g": 6.0,
        "duration_margin_s": None,
        "energy_margin_j": None,
        "co2e_margin_g": None,
        "intensity_g_per_kwh": 100.0,
        "intensity_basis": text,
        "basis": "from " + text,
        "intervals": 2,
    }


def hostile_report(group_by: str | None = None) -> Any:
    runs_ = [hostile_summary(), hostile_summary(run_id="second", tags={"k" + HOSTILE: "w"})]
    return build_report(runs_, ReadStats(logs=2, unreadable=[HOSTILE]), group_by)


# -- the mechanism ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b]2;t\x07", "\\x1b]2;t\\x07"),
        ("a\nb\tc\rd\x00", "a\\nb\\tc\\rd\\x00"),
        ("\x7f\x80\x85\x9b\x9f", "\\x7f\\x80\\x85\\x9b\\x9f"),
        ("echo \udcff\udcfe", "echo \\xff\\xfe"),  # argv bytes that were not UTF-8: the byte
        ("\ud800\udc00", "\\ud800\\udc00"),  # other lone surrogates (a log read with surrogatepass)
        ("a\u202eb\u2066c", "a\\u202eb\\u2066c"),
    ],
)
def test_what_a_terminal_would_act_on_is_shown_as_an_escape(text: str, expected: str) -> None:
    assert shown(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "python train.py --lr 3e-4",
        "C:\\path\\x1b",
        "電力 é e\u0301 👨\u200d👩\u200d👧 a\xa0b",
        "[red]not markup here",
        "=1+1",
    ],
)
def test_plain_text_is_left_exactly_as_it_is(text: str) -> None:
    assert shown(text) == text


@given(st.text())
def test_shown_never_lets_a_control_through_and_is_idempotent(text: str) -> None:
    once = shown(text)
    assert not UNSAFE.search(once)
    once.encode("utf-8")
    assert shown(once) == once
    if not UNSAFE.search(text):
        assert once == text


def test_one_line_errors_show_undecodable_bytes_as_bytes() -> None:
    assert one_line("--group-by \udcff\x1b[2J\n") == "--group-by \\xff\\x1b[2J\\n"


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_that_starts_like_a_formula_is_made_text(start: str) -> None:
    cell = csv_cell(start + "cmd|' /C calc'!A0")
    assert "\r" not in cell and not cell.startswith(FORMULA_STARTS)
    assert cell == ("\\r" if start == "\r" else "'" + start) + "cmd|' /C calc'!A0"


@pytest.mark.parametrize("number", ["-1", "-1.5", "-1.5e-05", "+2", "-.5", "0", "3e-4"])
def test_numbers_stay_numbers(number: str) -> None:
    assert csv_cell(number) == number


def test_csv_cells_keep_line_feeds_and_tabs_inside_and_escape_the_rest() -> None:
    assert csv_cell("a\nb\tc\x1b[2J\udcff") == "a\nb\tc\\x1b[2J\\xff"
    assert csv_cell("-1+2") == "'-1+2" and csv_cell("@SUM(A1)") == "'@SUM(A1)"


# -- the run's final report -------------------------------------------------------------------


def test_the_final_report_as_text_shows_every_field_escaped() -> None:
    view = final.report_view(hostile_summary())
    text = final.render_text(view)
    assert_terminal_safe(text)
    plain = final.render_text(final.report_view(hostile_summary("x")))
    assert text.count("\n") == plain.count("\n")  # no line of its own for others' text
    for fragment in ("--region ", "provider said ", "over ", "logs/", "GPU 0 GPU ", "basis "):
        assert fragment + ESCAPED in text, fragment
    assert "python '" + ESCAPED[:30] in text.partition("\n")[0]  # the command in the title


def test_the_final_report_on_a_terminal_is_never_markup_and_holds_no_control() -> None:
    """Before: rich raised MarkupError on "[/x]" in a fact (a log path, a provider's region),
    turned ":warning:" into an emoji and wrote ESC, C1 and surrogates to the terminal."""
    out = rich_lines(final.render_rich(final.report_view(hostile_summary())))
    assert_terminal_safe(out, colours=True)
    plain = SGR.sub("", out)
    assert plain.count("[/x][red]red:warning:") >= 8 and "⚠" not in plain
    assert "\\x1b]2;PWNED\\x07" in plain


def test_a_scheduled_start_in_the_report_and_on_stderr() -> None:
    record = hostile_summary().schedule
    assert record is not None
    lines = schedule.announce(record)
    for line in lines:
        assert_terminal_safe(line)
        assert "\n" not in line and ESCAPED in line
    source = {"chosen_start": "x", "source": HOSTILE, "now_g_per_kwh": 1.0}
    assert_terminal_safe("\n".join(schedule.announce(source)))


# -- the live view ----------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "colour"), [(60, False), (99, True), (250, True)])
def test_the_live_view_escapes_provider_text_and_gpu_methods(width: int, colour: bool) -> None:
    state = live.LiveState(
        1.0,
        1.0,
        [("CPU", 1.0, 2.0, "rapl"), ("GPU 0", 1.0, 2.0, HOSTILE)],
        100.0,
        "watttime:" + HOSTILE,
        1.0,
        "→ " + HOSTILE,
    )
    lines = live.live_lines(state, width, colour)
    for line in lines:
        assert "\n" not in line
        assert_terminal_safe(line, colours=colour)
        assert live.cells(SGR.sub("", line)) <= width
    if width == 250:
        assert "watttime:=HYPERLINK(1)\\x1b]2;PWNED" in SGR.sub("", lines[0])


# -- report: table, groups, HTML --------------------------------------------------------------


@pytest.mark.parametrize("group_by", [None, "tag:k" + HOSTILE, "host"])
def test_the_table_shows_commands_hosts_and_group_keys_escaped(group_by: str | None) -> None:
    view = runs.runs_view(hostile_report(group_by))
    text = runs.render_text(view)
    assert_terminal_safe(text)
    assert text.count("\n") == len(view.rows) + 2 + len(view.notes) + 1
    out = rich_lines(runs.render_rich(view), width=600)
    assert_terminal_safe(out, colours=True)
    assert "\\x1b]2;PWNED" in SGR.sub("", out)
    assert "[/x][red]" in SGR.sub("", out) if group_by != "host" else True


def test_the_html_page_is_utf8_and_holds_no_control() -> None:
    """Before: UnicodeEncodeError on a surrogate (undecodable argv) when the page was encoded,
    and ESC written as is (`--html -` on a terminal)."""
    report = hostile_report()
    page = html.render_html(report, [RunChart(s, None, "no " + HOSTILE) for s in report.runs])
    assert_terminal_safe(page)
    assert "\\xff\\xfe" in page and "[/x][red]" in page


# -- report: JSON and CSV ---------------------------------------------------------------------


def test_the_json_document_keeps_the_text_exactly() -> None:
    document = report_document(hostile_report("tag:k" + HOSTILE))
    text = json.dumps(document)
    assert text.isascii()  # what carbonwrap writes: every control and surrogate as \\uXXXX
    assert json.loads(text) == document
    assert document["runs"][0]["command"][1] == HOSTILE
    assert json.dumps(document, ensure_ascii=False)  # a str, not a crash (encoding is the caller's)


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _assert_no_formula(rows: list[list[str]]) -> None:
    number = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or number.fullmatch(cell), cell
            assert_terminal_safe(cell.replace("\t", " "))


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_every_csv_cell_of_others_is_neutralised(start: str) -> None:
    text = start + HOSTILE
    cell = csv_cell(text)
    assert cell.startswith("\\r" if start == "\r" else "'" + start)
    fields = {
        "run_id": text,
        "host": text,
        "cwd": text,
        "started_at": text,
        "ended_at": text,
        "signal": text,
        "log_path": text,
        "intensity_sources": [text],
        "region": {"code": text},
        "tags": {text: text, "project": text},
    }
    summaries = [
        hostile_summary(text, **fields),
        hostile_summary(text, duration_s=-1.5, exit_code=-1, **fields),
    ]
    report = build_report(summaries, ReadStats(logs=2), None)
    rows = _cells(runs_csv(report.runs))
    _assert_no_formula(rows)
    header, first, second = rows
    inside = shown(text, keep="\n\t")  # after a carbonwrap prefix: no formula, still escaped
    for column in (
        "run_id",
        "host",
        "cwd",
        "started_at",
        "ended_at",
        "signal",
        "log_path",
        "intensity_source",
        "region",
        f"tag:{inside}",
        "tag:project",
    ):
        assert first[header.index(column)] == cell, column
    assert first[header.index("command")].startswith("python '")
    assert first[header.index("job")] == "slurm " + inside
    assert (second[header.index("duration_s")], second[header.index("exit_code")]) == ("-1.5", "-1")
    codecarbon = _cells(codecarbon_csv(report.runs, {text: Place(country_name=text)}))
    _assert_no_formula(codecarbon)
    columns = codecarbon[0]
    for column in ("project_name", "run_id", "country_name", "timestamp"):
        assert codecarbon[1][columns.index(column)].startswith(cell[:2]), column
    grouped = build_report(summaries, ReadStats(logs=2), "host")
    assert grouped.groups is not None
    groups = _cells(groups_csv(grouped.groups, text))
    _assert_no_formula(groups)
    assert groups[0][0] == cell and groups[1][0] == cell


def test_plain_csv_cells_are_unchanged() -> None:
    assert csv_cell("python train.py --lr 3e-4") == "python train.py --lr 3e-4"
    assert csv_cell("a\nb") == "a\nb"  # the writer quotes it, as before


# -- doctor and config ------------------------------------------------------------------------


def test_doctor_text_escapes_what_the_host_and_providers_said() -> None:
    checks = [
        Check("proc", OK, "/proc " + HOSTILE),
        Check("cgroup", OK, "v2"),
        Check("gpu", ERROR, "GPU " + HOSTILE, "fix " + HOSTILE),
    ]
    text = doctor.render_text(checks, True)
    assert_terminal_safe(text)
    assert text.count("\n") == 6 and f"fix: fix {ESCAPED}" in text


def test_config_text_escapes_values_paths_and_notes() -> None:
    document = {
        "files": {"project": "/p/" + HOSTILE, "user": None, "user_path": "/u/" + HOSTILE},
        "settings": {
            "log_dir": {"value": HOSTILE, "source": "flag", "origin": "--log-dir " + HOSTILE},
            "tags": {"value": {"k" + HOSTILE: HOSTILE}, "source": "file", "origin": "x"},
        },
        "notes": ["note " + HOSTILE],
    }
    text = config_text(document)
    assert_terminal_safe(text)
    assert text.count("\n") == 7 and ESCAPED in text


@pytest.mark.parametrize(
    "row",
    [["", "a", "-1.5", "=x", "@y"], ["é", "\t=x", "a\x1b", "+1"], ["", ""], []],
)
def test_a_rows_fast_path_gives_what_each_cell_would(row: list[str]) -> None:
    assert csv_row(row) == [csv_cell(cell) for cell in row]
