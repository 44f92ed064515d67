"""The report's table of runs (or of groups) and totals, as plain text or a rich renderable,
fitted to a width: the least telling columns dropped first, the command shortened to the words
that tell its runs apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from carbonwrap.errors import shell_quote
from carbonwrap.render import units
from carbonwrap.render.text import rich_text, shown, shown_row
from carbonwrap.report.model import Report, Totals
from carbonwrap.runlog.records import parse_utc, utc_iso
from carbonwrap.runlog.summary import RunSummary

COMMAND_WIDTH = 40  # the command's cell where no width is given (a pipe, a file)
TAGS_WIDTH = 32  # the tags' cell at most
MIN_FLEXIBLE = 20  # the command (or group key) keeps this, or a third of the width, before
# other columns give way
GAP = 2  # spaces between columns
ALARM, INCOMPLETE = "alarm", "incomplete"  # how a row is marked: failed/killed/stopped, no end
_ROW_STYLES = {ALARM: "red", INCOMPLETE: "yellow"}


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
    # Per row: the command's words as a shell quotes them (empty for groups), for `fit`.
    words: list[tuple[str, ...]] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)  # per row: "", ALARM or INCOMPLETE
    # How to save width, in this order, until the table fits: (column, None) drops the column,
    # (column, cells) narrows it (header, rows, total).
    savings: list[tuple[int, tuple[str, ...] | None]] = field(default_factory=list)

    def escaped(self) -> RunsView:
        """Every string escaped for a terminal: no control character of others reaches it."""
        return RunsView(
            shown_row(self.header),
            self.right,
            self.flexible,
            [shown_row(row) for row in self.rows],
            shown_row(self.total) if self.total is not None else None,
            [shown(note) for note in self.notes],
            [shown_row(words) for words in self.words],
            self.marks,
            [(i, None if cells is None else shown_row(cells)) for i, cells in self.savings],
        )


def _start(s: RunSummary) -> str:
    started = parse_utc(s.started_at)
    return "?" if started is None else utc_iso(started)[:16].replace("T", " ")


def status(s: RunSummary) -> str:
    """The outcome as a person reads it; what went wrong in capitals, to stand out in plain
    text too: ok, FAILED exit 1, KILLED SIGTERM, STOPPED budget, incomplete."""
    outcome = s.status
    if outcome == "failed":
        return f"FAILED exit {s.exit_code}"
    if outcome == "killed":
        return f"KILLED {s.signal}"
    if outcome == "stopped":
        return "STOPPED budget"
    return outcome


def mark(s: RunSummary) -> str:
    outcome = s.status
    return INCOMPLETE if outcome == "incomplete" else "" if outcome == "ok" else ALARM


def tags_text(s: RunSummary) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(s.tags.items()))


Columns = tuple[Callable[[float | None], str], Callable[[float | None], str]]


def _figures(t: Totals, column: Columns) -> tuple[str, str, str]:
    """Duration, energy and CO2e; these two in the unit of their column (`column`: the
    formatters of the energy and CO2e columns, `_columns`)."""
    energy_of, co2e_of = column
    return units.duration(t.duration_s), energy_of(t.energy_j), co2e_of(t.co2e_g)


def _columns(energies_j: list[float], masses_g: list[float]) -> Columns:
    """One unit for the energy column and one for the CO2e column, suiting the rows' typical
    value (units.energy_format: a total many times larger is written whole)."""
    return units.energy_format(energies_j), units.mass_format(masses_g)


def _runs_label(n: int) -> str:
    return f"{n} run" + ("" if n == 1 else "s")


def runs_view(report: Report) -> RunsView:
    if report.groups is not None:
        return _groups_view(report)
    runs, totals = report.runs, report.totals
    column = _columns([s.energy_j for s in runs], [s.co2e_g for s in runs])
    duration, energy, co2e = _figures(totals, column)
    energy_of, co2e_of = column
    # name → cells of the rows, the total's cell; right-aligned
    columns: list[tuple[str, list[str], str, bool]] = [
        ("start (UTC)", [_start(s) for s in runs], "total", False),
        ("command", [s.command_line or "(not logged)" for s in runs], _runs_label(totals.runs),
         False),
        ("tags", [tags_text(s) for s in runs], "", False),
        ("host", [s.host for s in runs], "", False),
        ("region", [s.region.get("code", "") for s in runs], "", False),
        ("duration", [units.duration(s.duration_s) for s in runs], duration, True),
        ("energy", [energy_of(s.energy_j) for s in runs], energy, True),
        ("CO2e", [co2e_of(s.co2e_g) for s in runs], co2e, True),
        ("status", [status(s) for s in runs], "", False),
    ]  # fmt: skip
    columns = [c for c in columns if c[0] not in ("tags", "region") or any(c[1])]
    names = [c[0] for c in columns]
    header = tuple(names)
    rows = [tuple(c[1][i] for c in columns) for i in range(len(runs))]
    total = tuple(c[2] for c in columns)
    right = frozenset(i for i, c in enumerate(columns) if c[3])
    savings: list[tuple[int, tuple[str, ...] | None]] = []
    for name in ("host", "region", "duration"):
        if name in names:
            savings.append((names.index(name), None))
    years = {cells[:4] for cells in columns[0][1]}
    if len(years) == 1 and "?" not in years:  # one year: the date without it
        savings.append((0, ("start (UTC)", *(c[5:] for c in columns[0][1]), "total")))
    savings.append((0, None))
    if "tags" in names:
        savings.append((names.index("tags"), None))
    words = [_words(s) for s in runs]
    notes = _notes(report)
    marks = [mark(s) for s in runs]
    return RunsView(header, right, 1, rows, total if rows else None, notes, words, marks, savings)


def _groups_view(report: Report) -> RunsView:
    assert report.groups is not None
    totals = report.totals
    label = report.group_by or "group"
    groups = report.groups
    jobs = [g.job for g in groups if g.job is not None]
    if jobs and len(jobs) == len(groups):
        return _jobs_view(report)
    header: tuple[str, ...] = (label, "runs", "run time", "energy", "CO2e")
    counts = [("failed", "failed"), ("incomplete", "incomplete")]
    counts = [(name, attr) for name, attr in counts if getattr(totals, attr)]
    header += tuple(name for name, _ in counts)
    rows = []
    marks = []
    column = _columns([g.totals.energy_j for g in groups], [g.totals.co2e_g for g in groups])
    for g in groups:
        row = (g.key, str(g.totals.runs), *_figures(g.totals, column))
        rows.append(row + tuple(str(getattr(g.totals, attr)) for _, attr in counts))
        marks.append(ALARM if g.totals.failed else INCOMPLETE if g.totals.incomplete else "")
    total: tuple[str, ...] = ("total", str(totals.runs), *_figures(totals, column))
    total += tuple(str(getattr(totals, attr)) for _, attr in counts)
    right = frozenset(range(1, len(header)))
    return RunsView(
        header, right, 0, rows, total if rows else None, _notes(report), [], marks, [(2, None)]
    )


def _jobs_view(report: Report) -> RunsView:
    """--group-by job (job,host, job,rank): per job its nodes and tasks, the energy attributed
    to its tasks, the whole-device energy of its nodes (each node's once: its leader's log),
    Slurm's own figure where sacct has one, and CO2e."""
    assert report.groups is not None
    totals, groups = report.totals, report.groups
    jobs = [g.job for g in groups if g.job is not None]
    sacct = any(job.sacct_energy_j is not None for job in jobs)
    energies = [g.totals.energy_j for g in groups] + [g.totals.device_energy_j for g in groups]
    energies += [job.sacct_energy_j or 0.0 for job in jobs]
    energy_of, co2e_of = _columns(energies, [g.totals.co2e_g for g in groups])
    header: tuple[str, ...] = (report.group_by or "job", "nodes", "tasks", "run time", "energy",
                               "device", *(("sacct",) if sacct else ()), "CO2e")  # fmt: skip
    counts = [(name, name) for name in ("failed", "incomplete") if getattr(totals, name)]
    header += tuple(name for name, _ in counts)
    rows, marks = [], []
    for g in groups:
        job = g.job
        assert job is not None
        row = (g.key, str(job.nodes), str(job.tasks), units.duration(g.totals.duration_s),
               energy_of(g.totals.energy_j), energy_of(g.totals.device_energy_j),
               *((_or_dash(job.sacct_energy_j, energy_of),) if sacct else ()),
               co2e_of(g.totals.co2e_g))  # fmt: skip
        rows.append(row + tuple(str(getattr(g.totals, attr)) for _, attr in counts))
        marks.append(ALARM if g.totals.failed else INCOMPLETE if g.totals.incomplete else "")
    known = [job.sacct_energy_j for job in jobs if job.sacct_energy_j is not None]
    total: tuple[str, ...] = ("total", "", str(totals.runs), units.duration(totals.duration_s),
                              energy_of(totals.energy_j), energy_of(totals.device_energy_j),
                              *((energy_of(sum(known)),) if sacct else ()),
                              co2e_of(totals.co2e_g))  # fmt: skip
    total += tuple(str(getattr(totals, attr)) for _, attr in counts)
    notes = _notes(report)
    if rows:
        notes.append(
            "device: the whole-device energy of each node (CPU packages, DRAM, GPUs), logged "
            "once per node and step by its leading wrapper; energy: each task's share of it"
        )
    if sacct:
        notes.append(
            "sacct: Slurm's own ConsumedEnergyRaw for the job (whole nodes, every process)"
        )
    if report.sacct_note:
        notes.append(report.sacct_note)
    right = frozenset(range(1, len(header)))
    return RunsView(header, right, 0, rows, total if rows else None, notes, [], marks, [(3, None)])


def _or_dash(value: float | None, format_energy: Callable[[float | None], str]) -> str:
    return "-" if value is None else format_energy(value)


def _words(s: RunSummary) -> tuple[str, ...]:
    if s.command is None:
        return ("(not logged)",)
    cut = s.command_cut_text.strip()
    if s.kind == "block":  # a Python block's name (`carbonwrap.track`), not a command line
        return ("block", *s.command, *([cut] if cut else []))
    return (*(shell_quote(a) for a in s.command), *([cut] if cut else []))


def _notes(report: Report) -> list[str]:
    """What the table rests on. A filtered report counts only the runs it shows: their
    incomplete runs, their corrupt lines."""
    stats, totals = report.stats, report.totals
    logs = f"{stats.logs} log" + ("" if stats.logs == 1 else "s")
    filtered = stats.filtered_out > 0
    if filtered:
        notes = [
            f"{_runs_label(totals.runs)} shown, from {logs}; "
            f"{_runs_label(stats.filtered_out)} outside the filters left out"
        ]
        bad_lines = totals.bad_lines
    else:
        notes = [f"{_runs_label(totals.runs)} from {logs}"]
        bad_lines = stats.bad_lines
    if report.runs_not_listed > 0 and report.groups is None:
        notes.append(
            f"the {len(report.runs):,} most recent listed, {report.runs_not_listed:,} earlier "
            "counted in the total only (--json and --csv list every run; --since, --until and "
            "--tag choose)"
        )
    if totals.incomplete:
        notes.append(
            f"{totals.incomplete} without an end record (killed or still running): "
            "counted up to their last sample"
        )
    if bad_lines:
        where = " in the runs shown" if filtered else ""
        notes.append(f"{bad_lines} corrupt line{'' if bad_lines == 1 else 's'} skipped{where}")
    if stats.duplicates:
        notes.append(
            f"{stats.duplicates} further cop{'y' if stats.duplicates == 1 else 'ies'} "
            "of runs already read ignored"
        )
    if totals.runs:
        notes.append(
            "energy: attributed to each command's process tree, before PUE; "
            "CO2e: with PUE, at the grid intensity of each interval"
        )
    return notes


# ── fitting a width ──────────────────────────────────────────────────────────────────────────


def fit(view: RunsView, width: int | None) -> RunsView:
    """The view within `width` columns of text: `savings` applied in order until the flexible
    column has MIN_FLEXIBLE left, then the commands shortened to what is left (the words that
    tell runs of one program apart kept longest). `width` None (a pipe, a file): every
    column, the command at most COMMAND_WIDTH."""
    table = [view.header, *view.rows, *([view.total] if view.total else [])]
    columns = {i: [row[i] for row in table] for i in range(len(view.header))}
    flex = view.flexible

    def others() -> int:
        return sum(_width(c) for i, c in columns.items() if i != flex) + GAP * (len(columns) - 1)

    room = COMMAND_WIDTH
    if width is not None:
        wanted = min(_width(columns[flex]), max(MIN_FLEXIBLE, width // 3))
        for column, cells in view.savings:
            if others() + wanted <= width:
                break
            if column in columns:
                if cells is None:
                    del columns[column]
                else:
                    columns[column] = list(cells)
        room = max(width - others(), 8)
    if "tags" in view.header and view.header.index("tags") in columns:
        tags = columns[view.header.index("tags")]
        columns[view.header.index("tags")] = [_cut(cell, TAGS_WIDTH) for cell in tags]
    flexible = columns[flex]
    if view.words:
        common = _common(view.words)
        shortened = [_shorten_command(w, room, common.get(w, set())) for w in view.words]
        flexible = [flexible[0], *shortened, *flexible[len(view.rows) + 1 :]]
    columns[flex] = [_cut(cell, room) for cell in flexible]
    kept = sorted(columns)
    rows = [tuple(columns[i][n] for i in kept) for n in range(len(table))]
    return RunsView(
        rows[0],
        frozenset(kept.index(i) for i in view.right if i in columns),
        kept.index(flex),
        rows[1 : len(view.rows) + 1],
        rows[-1] if view.total else None,
        view.notes,
        [],
        view.marks,
    )


def _width(cells: Sequence[str]) -> int:
    return max(len(cell) for cell in cells)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _program(words: Sequence[str]) -> str:
    return words[0].rpartition("/")[2] if words else ""


NEIGHBOURS_AT_MOST = 300  # distinct commands of a program compared pairwise; more: all at once


def _common(commands: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], set[str]]:
    """Per command, the words it shares with the most alike other command of its program
    (`train.py --lr 0.1` and `train.py --lr 0.3` share all but the value): the words that do
    not tell it apart. Among very many distinct commands: the words all of them share."""
    by_program: dict[str, list[tuple[str, ...]]] = {}
    for words in dict.fromkeys(commands):  # each distinct command once
        by_program.setdefault(_program(words), []).append(words)
    common: dict[tuple[str, ...], set[str]] = {}
    for alike in by_program.values():
        sets = [set(words[1:]) for words in alike]
        if len(alike) > NEIGHBOURS_AT_MOST:
            shared = set.intersection(*sets)
            common.update((words, shared) for words in alike)
            continue
        for words, own in zip(alike, sets, strict=True):
            nearest = (own & other for other in sets if other is not own and other != own)
            common[words] = max(nearest, key=len, default=set())
    return common


def _shorten_command(words: Sequence[str], room: int, common: set[str]) -> str:
    """The command within `room` characters: the program's name without its directory, the
    words its other runs share elided (…) from the right (an option stays with its value),
    paths to their last part, the options before telling values; then whatever fits given
    back, from the left; a word still too long cut in its middle."""
    whole = " ".join(words)
    if len(whole) <= room or not words:
        return whole
    shown_words: list[str | None] = [*words]  # None: elided
    shown_words[0] = _program(words) or words[0]

    def text() -> str:
        out: list[str] = []
        for word in shown_words:
            if word is not None:
                out.append(word)
            elif not out or out[-1] != "…":
                out.append("…")
        return " ".join(out)

    def value_follows(i: int) -> bool:  # "--lr 0.1": the option goes with a telling value
        return i + 1 < len(words) and words[i].startswith("-") and words[i + 1] not in common

    for i in reversed(range(1, len(words))):
        if len(text()) <= room:
            break
        if words[i] in common and not value_follows(i):
            shown_words[i] = None
    paths = [i for i in range(1, len(words)) if shown_words[i] and _is_path(words[i])]
    for i in sorted(paths, key=lambda i: -len(words[i])):
        if len(text()) <= room:
            break
        shown_words[i] = "…/" + words[i].rpartition("/")[2]
    for i in reversed(range(1, len(words))):  # then the options too: their values tell more
        if len(text()) <= room:
            break
        if words[i] in common:
            shown_words[i] = None
    for i in range(len(words)):  # give back what fits
        if shown_words[i] != words[i]:
            saved, shown_words[i] = shown_words[i], words[i]
            if len(text()) > room:
                shown_words[i] = saved
    while len(text()) > room:  # the longest words cut in their middle: their ends tell most
        i = max(range(1, len(words)), key=lambda i: len(shown_words[i] or ""), default=0)
        word = shown_words[i]
        if not i or word is None or len(word) <= 6:
            break
        keep = max(len(word) - (len(text()) - room) - 1, 5)
        head = 0 if word.startswith("…/") else keep // 3  # a path keeps its end
        shown_words[i] = word[:head] + "…" + word[len(word) - (keep - head) :]
    return _cut(text(), room)


def _is_path(word: str) -> bool:
    return "/" in word.rstrip("/") and word[0] not in "'\""


# ── drawing ──────────────────────────────────────────────────────────────────────────────────


def render_text(view: RunsView, width: int | None = None) -> str:
    """Plain text: for pipes, files and terminals without colour; within `width` columns
    where one is given (notes wrapped)."""
    view = fit(view.escaped(), width)
    if not view.rows:
        return "No runs.\n" + "".join(f"{line}\n" for n in view.notes for line in _wrap(n, width))
    table = [view.header, *view.rows, *([view.total] if view.total else [])]
    widths = [max(len(row[i]) for row in table) for i in range(len(view.header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in view.right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return (" " * GAP).join(cells).rstrip()

    lines = [line(row) for row in table[: len(view.rows) + 1]]
    if view.total:
        lines.append((" " * GAP).join("─" * w for w in widths))
        lines.append(line(table[-1]))
    lines.extend(line for note in view.notes for line in _wrap(note, width))
    return "\n".join(lines) + "\n"


def _wrap(note: str, width: int | None) -> list[str]:
    if width is None or len(note) + 2 <= width:
        return [f"  {note}"]
    import textwrap

    return textwrap.wrap(
        note, max(width, 20), initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
    )


def render_rich(view: RunsView) -> Any:
    """A rich renderable of the same content (rich imported only here), fitted to the width
    rich gives it; failed, killed and stopped runs in red, incomplete ones in yellow."""
    from rich.console import Console, ConsoleOptions, Group, RenderResult
    from rich.table import Table

    escaped = view.escaped()  # and every string a Text: never read as markup
    notes = [rich_text(note, style="dim") for note in escaped.notes]
    if not escaped.rows:
        return Group(rich_text("No runs.", style="bold"), *notes)

    class Fitted:
        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            fitted = fit(escaped, options.max_width)
            table = Table(
                box=None, pad_edge=False, header_style="bold", show_footer=bool(fitted.total)
            )
            for i, name in enumerate(fitted.header):
                table.add_column(
                    rich_text(name),
                    footer=rich_text(fitted.total[i]) if fitted.total else "",
                    justify="right" if i in fitted.right else "left",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            for row, marked in zip(fitted.rows, fitted.marks, strict=True):
                table.add_row(*map(rich_text, row), style=_ROW_STYLES.get(marked))
            yield table

    return Group(Fitted(), *notes)
