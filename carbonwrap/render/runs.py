"""The report's table of runs (or of groups) and totals, as plain text or a rich renderable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from carbonwrap.render import units
from carbonwrap.render.text import rich_text, shown, shown_row
from carbonwrap.report.model import ReadStats, Report, Totals
from carbonwrap.runlog.records import parse_utc, utc_iso
from carbonwrap.runlog.summary import RunSummary

COMMAND_WIDTH = 40


@dataclass
class RunsView:
    """The table's content, independent of how it is drawn. It holds others' text as the logs
    gave it (argv, host, tags, group keys); each renderer escapes it for its own output."""

    header: tuple[str, ...]
    right: frozenset[int]  # right-aligned columns
    flexible: int  # the column that gives way on a narrow terminal (command, or group key)
    rows: list[tuple[str, ...]]
    total: tuple[str, ...] | None
    notes: list[str] = field(default_factory=list)

    def escaped(self) -> RunsView:
        """Every string escaped for a terminal: no control character of others reaches it."""
        return RunsView(
            shown_row(self.header),
            self.right,
            self.flexible,
            [shown_row(row) for row in self.rows],
            shown_row(self.total) if self.total is not None else None,
            [shown(note) for note in self.notes],
        )


def _shorten(text: str, width: int = COMMAND_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _start(s: RunSummary) -> str:
    started = parse_utc(s.started_at)
    return "?" if started is None else utc_iso(started)[:16].replace("T", " ")


def status(s: RunSummary) -> str:
    if not s.complete:
        return "incomplete"
    if s.signal:
        return s.signal
    return f"exit {s.exit_code}" if s.exit_code is not None else "ended"


def _figures(t: Totals) -> tuple[str, str, str]:
    return units.duration(t.duration_s), units.energy(t.energy_j), units.mass(t.co2e_g)


def _runs_label(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def runs_view(report: Report) -> RunsView:
    totals = report.totals
    if report.groups is not None:
        label = report.group_by or "group"
        header: tuple[str, ...] = (label, "runs", "run time", "energy", "CO2e")
        incomplete = totals.incomplete > 0
        if incomplete:
            header += ("incomplete",)
        rows = []
        for g in report.groups:
            row = (g.key, str(g.totals.runs), *_figures(g.totals))
            rows.append(row + ((str(g.totals.incomplete),) if incomplete else ()))
        total: tuple[str, ...] = ("total", str(totals.runs), *_figures(totals))
        total += (str(totals.incomplete),) if incomplete else ()
        right, flexible = frozenset(range(1, len(header))), 0
    else:
        header = ("start (UTC)", "command", "host", "duration", "energy", "CO2e", "status")
        rows = [
            (
                _start(s),
                s.command_line or "(not logged)",
                s.host,
                units.duration(s.duration_s),
                units.energy(s.energy_j),
                units.mass(s.co2e_g),
                status(s),
            )
            for s in report.runs
        ]
        duration, energy, co2e = _figures(totals)
        total = ("total", _runs_label(totals.runs), "", duration, energy, co2e, "")
        right, flexible = frozenset({3, 4, 5}), 1
    notes = _notes(report.stats, totals)
    return RunsView(header, right, flexible, rows, total if rows else None, notes)


def _notes(stats: ReadStats, totals: Totals) -> list[str]:
    logs = f"{stats.logs} log" + ("" if stats.logs == 1 else "s")
    notes = [f"{_runs_label(totals.runs)} from {logs}"]
    if stats.incomplete:
        notes.append(
            f"{stats.incomplete} without an end record (killed or still running): "
            "counted up to their last sample"
        )
    if stats.bad_lines:
        notes.append(f"{stats.bad_lines} corrupt line{'' if stats.bad_lines == 1 else 's'} skipped")
    if stats.duplicates:
        notes.append(
            f"{stats.duplicates} further cop{'y' if stats.duplicates == 1 else 'ies'} "
            "of runs already read ignored"
        )
    if stats.filtered_out:
        notes.append(f"{_runs_label(stats.filtered_out)} outside the filters left out")
    if totals.runs:
        notes.append(
            "energy: attributed to each command's process tree, before PUE; "
            "CO2e: with PUE, at the grid intensity of each interval"
        )
    return notes


def render_text(view: RunsView) -> str:
    """Plain text: for pipes, files and terminals without colour."""
    view = view.escaped()
    if not view.rows:
        return "No runs.\n" + "".join(f"  {note}\n" for note in view.notes)
    table = [view.header, *view.rows, *([view.total] if view.total else [])]
    table = [
        tuple(_shorten(c) if i == view.flexible else c for i, c in enumerate(row)) for row in table
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(view.header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in view.right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines = [line(row) for row in table[: len(view.rows) + 1]]
    if view.total:
        lines.append("  ".join("─" * w for w in widths))
        lines.append(line(table[-1]))
    lines.extend(f"  {note}" for note in view.notes)
    return "\n".join(lines) + "\n"


def render_rich(view: RunsView) -> Any:
    """A rich renderable of the same content (rich imported only here). On a terminal too
    narrow for the table, the flexible column alone is cut, with an ellipsis."""
    from rich.console import Console, ConsoleOptions, Group, RenderResult
    from rich.table import Table

    view = view.escaped()  # and every string a Text: never read as markup
    notes = [rich_text(note, style="dim") for note in view.notes]
    if not view.rows:
        return Group(rich_text("No runs.", style="bold"), *notes)
    cells = [view.header, *view.rows, *([view.total] if view.total else [])]
    widths = [max(len(row[i]) for row in cells) for i in range(len(view.header))]

    class Fitted:
        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            too_wide = sum(widths) + 2 * (len(widths) - 1) > options.max_width
            table = Table(
                box=None,
                pad_edge=False,
                header_style="bold",
                show_footer=bool(view.total),
                expand=too_wide,
            )
            for i, name in enumerate(view.header):
                flexible = i == view.flexible
                table.add_column(
                    rich_text(name),
                    footer=rich_text(view.total[i]) if view.total else "",
                    justify="right" if i in view.right else "left",
                    no_wrap=True,
                    overflow="ellipsis",
                    min_width=None if flexible else widths[i],  # numbers are never cut
                    ratio=1 if flexible and too_wide else None,
                )
            for row in view.rows:
                table.add_row(*map(rich_text, row))
            yield table

    return Group(Fitted(), *notes)
