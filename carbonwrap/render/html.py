"""The report as one self-contained HTML page: the table of runs (or groups) with totals, and
for the most recent runs inline SVG charts of power by component and cumulative CO2e, with their
predictions and budgets. On a narrow page (a phone, 600 px) the table drops its least telling
columns and wraps the command."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from carbonwrap.render import units
from carbonwrap.render.runs import ALARM, INCOMPLETE, RunsView, runs_view, status, tags_text
from carbonwrap.render.text import shown
from carbonwrap.report.model import Report, RunChart, RunSeries
from carbonwrap.runlog.records import parse_utc, utc_iso
from carbonwrap.runlog.summary import RunSummary

# Everything is inline; the policy forbids the page to load or run anything, whatever a log holds.
_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>carbonwrap report</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1d2125;background:#fff;margin:24px auto;max-width:1160px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px}
h3{font-size:15px;margin:0 0 2px;overflow-wrap:anywhere}
h3 code{font-size:14px}.meta,.note,.notes{color:#59636e}.meta{margin:0 0 6px}
.note{font-size:12.5px;margin:2px 0}.notes{font-size:13px;padding-left:18px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-top:8px}
th,td{padding:3px 8px;text-align:left;white-space:nowrap;border-bottom:1px solid #e4e7eb}
th{background:#f3f5f7;position:sticky;top:0}td.r,th.r{text-align:right}
td.cmd{min-width:12em;max-width:28em;white-space:normal;overflow-wrap:anywhere;
 font-family:ui-monospace,monospace;font-size:12.5px}
td.c-tags,td.c-key{white-space:normal;max-width:16em;overflow-wrap:break-word}
tfoot td{font-weight:600;border-top:2px solid #aeb5bd;border-bottom:none}
.wide{overflow-x:auto}tr.incomplete td{background:#fff7e0}
tr.alarm td{background:#fdecea}tr.alarm td.c-status{color:#a4161a;font-weight:600}
ul.facts{margin:4px 0;padding-left:18px;font-size:13px}
section.run{border-top:1px solid #e4e7eb;padding:14px 0 8px}
.charts{display:flex;flex-wrap:wrap;gap:8px 24px}
figure{margin:0}figcaption{font-size:13px;font-weight:600;margin:4px 0 0}
svg{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;overflow:visible}
.grid{stroke:#e4e7eb}.axis{stroke:#59636e}.tick{fill:#59636e}
.empty{color:#59636e;font-style:italic}svg{max-width:100%;height:auto}
@media (max-width:1060px){.c-host,.c-region{display:none}}
@media (max-width:720px){body{margin:12px auto;padding:0 8px}th,td{padding:3px 5px}
 .c-duration{display:none}td.c-start{white-space:normal}td.cmd{min-width:8em}}
</style>
</head>
<body>
"""

COLOURS = {"cpu": "#1f6fb4", "dram": "#2b9a3e", "gpu": "#c8372d"}
OTHER_COLOURS = ("#7b4fb0", "#b5651d", "#4d4d4d")
CO2E_COLOUR = "#3b3f44"
WIDTH, HEIGHT = 540, 250
LEFT, RIGHT, TOP, BOTTOM = 60, 18, 30, 40


def _e(text: object) -> str:
    """Every text of the page, attributes included: control characters and bytes that were not
    UTF-8 shown as escapes (the page may go to a terminal, and must be UTF-8), then HTML-escaped."""
    return escape(shown(str(text)), quote=True)


def render_html(report: Report, charts: Sequence[RunChart]) -> str:
    """The page: `charts` are the runs to draw (the last ones of `report.runs`); the table lists
    every run, or every group."""
    view = runs_view(report)
    charted = {id(c.summary): i for i, c in enumerate(charts)}
    parts = [
        _HEAD,
        "<h1>carbonwrap report</h1>\n",
        _overview(report, len(charts)),
        _table(view, report, charted),
    ]
    parts.append(
        '<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in view.notes) + "</ul>\n"
    )
    if report.runs:
        parts.append(_charts_intro(report.totals.runs, len(charts), report.runs_not_listed))
        parts.extend(_run_section(i, chart) for i, chart in enumerate(charts))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _overview(report: Report, charted: int) -> str:
    t = report.totals
    runs = f"{t.runs} run{'' if t.runs == 1 else 's'}"
    bits = [runs, units.energy(t.energy_j), f"{units.mass(t.co2e_g)} CO₂e"]
    if report.group_by:
        bits.append(f"grouped by {report.group_by}")
    for key, value in report.filters.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        bits.append(f"{key} {value}")
    jump = f' · <a href="#charts">charts of {charted} run{"" if charted == 1 else "s"}</a>'
    return f'<p class="meta">{_e(" · ".join(bits))}{jump if charted else ""}</p>\n'


# Each column's class: a page under 1060 px hides .c-host and .c-region, under 720 px (a phone,
# 600 px) .c-duration too, and wraps the start; the command and the tags always wrap.
_COLUMN_CLASSES = {
    "start (UTC)": "c-start",
    "command": "c-command",
    "tags": "c-tags",
    "host": "c-host",
    "region": "c-region",
    "duration": "c-duration",
    "run time": "c-duration",
    "energy": "c-energy",
    "CO2e": "c-co2e",
    "status": "c-status",
}
_ROW_CLASSES = {ALARM: ' class="alarm"', INCOMPLETE: ' class="incomplete"'}


def _table(view: RunsView, report: Report, charted: dict[int, int]) -> str:
    if not view.rows:
        return "<p><strong>No runs.</strong></p>\n"
    column = [
        _COLUMN_CLASSES.get(name, "c-key" if i == view.flexible else "")
        for i, name in enumerate(view.header)
    ]

    def classes(i: int, command: bool = False) -> str:
        names = [column[i], "r" if i in view.right else "", "cmd" if command else ""]
        joined = " ".join(n for n in names if n)
        return f' class="{joined}"' if joined else ""

    def cells(row: tuple[str, ...], command: bool = False, link: str = "") -> str:
        out = []
        for i, cell in enumerate(row):
            is_command = command and i == view.flexible
            attrs = classes(i, is_command)
            text = _e(cell)
            if is_command:
                attrs += f' title="{text}"'  # the whole command where the cell cuts it
                if link:
                    text = f'<a href="#{link}">{text}</a>'
            out.append(f"<td{attrs}>{text}</td>")
        return "".join(out)

    head = "".join(f"<th{classes(i)}>{_e(h)}</th>" for i, h in enumerate(view.header))
    body = []
    for n, row in enumerate(view.rows):
        run = report.runs[n] if report.groups is None else None
        anchor = ""
        if run is not None and id(run) in charted:
            anchor = f"run-{charted[id(run)]}"
        css = _ROW_CLASSES.get(view.marks[n], "")
        body.append(f"<tr{css}>{cells(row, run is not None, anchor)}</tr>\n")
    foot = f"<tfoot><tr>{cells(view.total)}</tr></tfoot>" if view.total else ""
    return (
        f'<div class="wide"><table class="runs"><thead><tr>{head}</tr></thead>\n<tbody>\n'
        f"{''.join(body)}</tbody>{foot}</table></div>\n"
    )


def _charts_intro(runs: int, charted: int, not_listed: int = 0) -> str:
    if charted >= runs:
        text = "Every run, oldest first."
    else:
        left = runs - charted
        where = "in the totals, and the table's most recent" if not_listed else "in the table only"
        text = (
            f"The {charted} most recent runs, oldest first; {left:,} earlier "
            f"run{'' if left == 1 else 's'} left out here ({where}; --since, --until "
            "and --tag choose which runs are charted)."
        )
    return f'<h2 id="charts">Power and CO₂e over time</h2>\n<p class="note">{_e(text)}</p>\n'


def _command(s: RunSummary) -> str:
    return s.command_line or "(command not logged)"


def _run_section(index: int, chart: RunChart) -> str:
    s = chart.summary
    started = parse_utc(s.started_at)
    when = "start unknown" if started is None else utc_iso(started)[:19].replace("T", " ") + " UTC"
    meta = [when, s.host or "(no host)", units.duration(s.duration_s), units.energy(s.energy_j)]
    meta.append(f"{units.mass(s.co2e_g)} CO₂e")
    if s.intensity_mean_g_per_kwh is not None:
        region = s.region.get("code")
        grid = f"grid {s.intensity_mean_g_per_kwh:.0f} gCO₂e/kWh (mean)"
        meta.append(grid + (f", region {region}" if region else ""))
    if s.tags:
        meta.append(tags_text(s))
    meta += [status(s), f"run {s.run_id}"]
    out = [
        f'<section class="run" id="run-{index}">\n<h3><code>{_e(_command(s))}</code></h3>\n',
        f'<p class="meta">{_e(" · ".join(meta))}</p>\n',
        _predictions(s),
    ]
    series = chart.series
    if series is None or len(series.elapsed_s) < 2:
        why = chart.problem or "no samples in the log yet"
        out.append(f'<p class="empty">No chart: {_e(why)}.</p>\n</section>\n')
        return "".join(out)
    out.append('<div class="charts">\n')
    out.append(_figure("Power by component (attributed, mean per interval)", _power_svg(series)))
    caption = f"Cumulative CO₂e (PUE {s.pue:g}, grid intensity of each interval)"
    out.append(_figure(caption, _co2e_svg(series)))
    out.append("</div>\n")
    out.extend(f'<p class="note">{_e(n)}</p>\n' for n in _chart_notes(s, series))
    bases = _bases(s)
    if bases:
        items = "".join(f"<li>{_e(b)}</li>" for b in bases)
        summary = "<summary>how each component was measured and attributed</summary>"
        out.append(f'<details class="note">{summary}<ul>{items}</ul></details>\n')
    out.append("</section>\n")
    return "".join(out)


def _predictions(s: RunSummary) -> str:
    """What the run's progress reports predicted, against the actual totals, and its budget:
    the lines of the final report (`render/prediction.py`)."""
    if not s.predictions and s.budget is None:
        return ""
    from carbonwrap.render.prediction import report_facts

    items = []
    for label, value in report_facts(s):
        bold = f"<strong>{_e(label)}</strong> " if label else ""
        items.append(f"<li>{bold}{_e(value)}</li>")
    return f'<ul class="facts">{"".join(items)}</ul>\n'


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>\n{svg}</figure>\n"


def _bases(s: RunSummary) -> list[str]:
    bases = [f"{n.upper()} ({c.method}): {c.basis}" for n, c in s.components.items() if c.basis]
    for g in s.gpus.values():
        intervals = ", ".join(f"{m} {n}" for m, n in sorted(g.methods.items())) or "none"
        bases.append(f"GPU {g.index} {g.name}: {g.energy_method}; intervals by method: {intervals}")
    return bases


def _chart_notes(s: RunSummary, series: RunSeries) -> list[str]:
    notes = []
    estimates = [n.upper() for n, m in series.methods.items() if "estimate" in m]
    if estimates:
        are = "is an estimate" if len(estimates) == 1 else "are estimates"
        notes.append(f"{' and '.join(estimates)} {are}, not measured (dashed).")
    for name, method in series.methods.items():
        if method.startswith("unavailable"):
            notes.append(f"{name.upper()} not measured ({method}).")
    points = len(series.elapsed_s) - 1
    if series.samples > points:
        notes.append(
            f"{series.samples} samples drawn as {points} points (power: the mean over each)."
        )
    if not s.complete:
        notes.append("No end record (killed, or still running): drawn up to its last sample.")
    return notes


# ── charts ───────────────────────────────────────────────────────────────────────────────────


def _ticks(high: float) -> list[float]:
    """Round tick values from 0 to at least `high`: the closest top, then the most ticks."""
    if not (high > 0 and math.isfinite(high)):
        high = 1.0
    choices = []
    for count in (5, 4, 6):
        raw = high / count
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
        steps = math.ceil(high / step * (1 - 1e-9))
        choices.append((steps * step, [round(i * step, 12) for i in range(steps + 1)]))
    return min(choices, key=lambda choice: (choice[0], -len(choice[1])))[1]


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds <= 120:
        return "s", 1.0
    if seconds <= 7200:
        return "min", 60.0
    return "h", 3600.0


def _power_unit(watts: float) -> tuple[str, float]:
    if watts < 1:
        return "mW", 1e-3
    if watts < 10_000:
        return "W", 1.0
    return "kW", 1e3


def _mass_unit(grams: float) -> tuple[str, float]:
    for unit, factor in (("µg", 1e-6), ("mg", 1e-3), ("g", 1.0), ("kg", 1e3)):
        if grams < 1000 * factor:
            return unit, factor
    return "t", 1e6


def _el(tag: str, text: str = "", inner: str = "", /, **attrs: object) -> str:
    """One SVG element: attribute names with _ for -, values and `text` escaped; `inner` is
    markup already made (child elements)."""
    attributes = "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    content = _e(text) + inner
    return f"<{tag}{attributes}>{content}</{tag}>" if content else f"<{tag}{attributes}/>"


class _Frame:
    """Axes from 0 to round values above the data's highest, in the chart's pixel space."""

    def __init__(self, x_max_s: float, y_max: float, y_unit: tuple[str, float], y_name: str):
        self.x_unit, self.x_factor = _time_unit(x_max_s)
        self.x_ticks = _ticks(x_max_s / self.x_factor)
        self.y_unit, self.y_factor = y_unit
        self.y_ticks = _ticks(y_max / self.y_factor)
        self.y_name = y_name
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM
        self.bottom = TOP + self.height

    def x(self, seconds: float) -> str:
        return f"{LEFT + seconds / self.x_factor / self.x_ticks[-1] * self.width:.1f}"

    def y(self, value: float) -> str:
        return f"{self.bottom - value / self.y_factor / self.y_ticks[-1] * self.height:.1f}"

    def axes(self) -> str:
        right = LEFT + self.width
        out = []
        for v in self.y_ticks:
            y = self.y(v * self.y_factor)
            out.append(_el("line", class_="grid", x1=LEFT, x2=right, y1=y, y2=y))
            y_text = f"{float(y) + 4:.1f}"
            out.append(
                _el("text", f"{v:.6g}", class_="tick", x=LEFT - 6, y=y_text, text_anchor="end")
            )
        for v in self.x_ticks:
            x = self.x(v * self.x_factor)
            out.append(_el("line", class_="axis", x1=x, x2=x, y1=self.bottom, y2=self.bottom + 4))
            out.append(
                _el(
                    "text", f"{v:.6g}", class_="tick", x=x, y=self.bottom + 16, text_anchor="middle"
                )
            )
        out.append(_el("line", class_="axis", x1=LEFT, x2=right, y1=self.bottom, y2=self.bottom))
        out.append(_el("line", class_="axis", x1=LEFT, x2=LEFT, y1=TOP, y2=self.bottom))
        x_name = f"time since start ({self.x_unit})"
        out.append(
            _el("text", x_name, x=LEFT + self.width // 2, y=HEIGHT - 4, text_anchor="middle")
        )
        middle = TOP + self.height // 2
        y_name = f"{self.y_name} ({self.y_unit})"
        turn = f"translate(14 {middle}) rotate(-90)"
        out.append(_el("text", y_name, transform=turn, text_anchor="middle"))
        return "\n".join(out) + "\n"


def _svg(body: str, label: str) -> str:
    size = f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"'
    return f'<svg {size} role="img" aria-label="{_e(label)}">\n{body}</svg>\n'


def _legend(x: int, label: str, colour: str, dashed: bool) -> str:
    dash = {"stroke_dasharray": "5 3"} if dashed else {}
    line = _el("line", x1=x, x2=x + 18, y1=12, y2=12, stroke=colour, stroke_width=2, **dash)
    return line + _el("text", label, x=x + 22, y=16) + "\n"


def _method_label(method: str) -> str:
    if "estimate" in method:
        return "estimate"
    return method if len(method) <= 18 else method[:17] + "…"


def _power_svg(series: RunSeries) -> str:
    """A step line per component: its mean power over each interval between points."""
    top = max((p for values in series.power_w.values() for p in values), default=0.0)
    frame = _Frame(series.elapsed_s[-1], top, _power_unit(top), "power")
    out = [frame.axes()]
    legend_x = LEFT
    others = iter(OTHER_COLOURS * 10)
    xs = [frame.x(t) for t in series.elapsed_s]
    for name, values in series.power_w.items():
        colour = COLOURS.get(name) or next(others, "#000")
        method = series.methods.get(name, "unknown")
        estimate = "estimate" in method
        steps = "".join(f"V{frame.y(p)}H{x}" for p, x in zip(values[1:], xs[2:], strict=True))
        path = f"M{xs[0]},{frame.y(values[0])}H{xs[1]}{steps}" if values else ""
        label = f"{name.upper()} · {_method_label(method)}"
        dash = {"stroke_dasharray": "5 3"} if estimate else {}
        style = {"fill": "none", "stroke": colour, "stroke_width": 1.6, **dash}
        title = _el("title", label)
        out.append(_el("path", "", title, class_="power", data_component=name, d=path, **style))
        out.append(_legend(legend_x, label, colour, estimate))
        legend_x += 30 + 6 * len(label)
    if not series.power_w:
        out.append(_el("text", "no component measured", x=LEFT + 8, y=TOP + 16))
    return _svg("".join(out), "power by component over time")


def _co2e_svg(series: RunSeries) -> str:
    """The cumulative CO2e at each point; its end is labelled with the run's total."""
    final = series.co2e_g[-1]
    frame = _Frame(series.elapsed_s[-1], final, _mass_unit(final), "CO₂e")
    points = "L".join(
        f"{frame.x(t)},{frame.y(c)}" for t, c in zip(series.elapsed_s, series.co2e_g, strict=True)
    )
    x_end, y_end = frame.x(series.elapsed_s[-1]), frame.y(final)
    style = {"fill": "none", "stroke": CO2E_COLOUR, "stroke_width": 1.8}
    title = _el("title", "cumulative CO₂e")
    line = _el("path", "", title, class_="co2e", data_co2e_g=repr(final), d=f"M{points}", **style)
    label_at = {"x": f"{float(x_end) - 6:.1f}", "y": f"{float(y_end) - 8:.1f}"}
    end_label = _el("text", units.mass(final), text_anchor="end", font_weight=600, **label_at)
    body = [
        frame.axes(),
        line + "\n",
        _legend(LEFT, "CO₂e, cumulative", CO2E_COLOUR, False),
        _el("circle", cx=x_end, cy=y_end, r=3, fill=CO2E_COLOUR),
        end_label + "\n",
    ]
    return _svg("".join(body), "cumulative CO2e over time")
