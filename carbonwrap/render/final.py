"""The final report for a person, as plain text or a rich renderable: compact by default (what
ran, energy, CO2e, the log, real warnings), whole with --verbose (bases, sources, per-device
energy, everyday equivalents)."""

from __future__ import annotations

from carbonwrap.lite import NamedTuple, dataclass, field
from carbonwrap.render import units
from carbonwrap.render.text import rich_text, shown, shown_row
from carbonwrap.runlog.summary import COMPONENTS, RunSummary

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

_LABELS = {"cpu": "CPU", "dram": "DRAM", "gpu": "GPU"}


class Equivalent(NamedTuple):
    """An everyday comparison: grams CO2e per unit, e.g. per km by an average new car."""

    g_per_unit: float
    unit: str  # "km" | "l"
    what: str  # "driven by an average new car"
    source: str  # "106.8 g/km, EEA 2024 new cars (WLTP)"

    def amount(self, grams: float) -> str | None:
        """The amount in a unit a person can picture; None below 1 mm or 0.01 ml, where a
        comparison says nothing ("0.00113 µl of petrol")."""
        quantity = grams / self.g_per_unit
        if self.unit == "km":
            return units.distance(quantity) if quantity >= 1e-6 else None
        if quantity < 1e-5:
            return None
        return units.volume(quantity) if quantity >= 1e-3 else f"{quantity * 1000:.2g} ml"


@dataclass
class ReportView:
    """The report's content, independent of how it is drawn. It holds others' text as it came
    (argv, paths, provider text, GPU names); both renderers show it through `shown`."""

    title: str
    rows: list[tuple[str, str, str, str]]  # component, attributed, whole device, method
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alarm: bool = False  # the command failed, was killed or stopped: the title stands out

    def escaped(self) -> ReportView:
        """Every string escaped for a terminal: no control character of others reaches it."""
        return ReportView(
            shown(self.title),
            [shown_row(row) for row in self.rows],
            [shown_row(fact) for fact in self.facts],
            [shown(note) for note in self.notes],
            self.alarm,
        )


def _command(summary: RunSummary) -> str:
    text = summary.command_line
    if text is None:
        return "(command not logged)"
    return text if len(text) <= 60 else text[:57] + "..."


def _ending(summary: RunSummary) -> str:
    if not summary.complete:
        return "incomplete (no end record)"
    if summary.kind == "block" and not summary.signal:  # a block has no exit status of its own
        return "ended" if summary.exit_code == 0 else "raised an exception"
    if summary.signal:
        return f"killed by {summary.signal} (exit {summary.exit_code})"
    return f"exit {summary.exit_code}"


def _title(s: RunSummary) -> str:
    ending = ("stopped by --budget, " if s.stopped else "") + _ending(s)
    return f"carbonwrap: {_command(s)} · {ending} · {units.duration(s.duration_s)}"


def _alarm(s: RunSummary) -> bool:
    return s.complete and (bool(s.stopped or s.signal) or s.exit_code != 0)


def report_view(summary: RunSummary, equivalents: Sequence[Equivalent] = ()) -> ReportView:
    """The whole report (--verbose): each component and device, attributed and whole-device,
    with its method and basis; CPU time, PUE, intensity, equivalents, every note."""
    s = summary
    title = _title(s)
    rows: list[tuple[str, str, str, str]] = []
    # One unit and the same decimals for every energy of the table: the largest's.
    devices = [gpu.device_energy_j for gpu in s.gpus.values()]
    energy = units.energy_format([s.energy_j, s.device_energy_j, *devices])
    bases: list[tuple[str, str]] = []
    for name in (*COMPONENTS, *sorted(set(s.components) - set(COMPONENTS))):
        component = s.components.get(name)
        if component is None:
            continue
        label = _LABELS.get(name, name)
        if name == "gpu" and s.gpus:
            rows.extend(_gpu_rows(s, energy))
            if component.basis:
                bases.append(("GPU basis", component.basis))
            continue
        rows.append(
            (
                label,
                energy(component.energy_j),
                energy(component.device_energy_j),
                component.method,
            )
        )
        if component.basis:
            bases.append((f"{label} basis", component.basis))
    rows.append(("Total", energy(s.energy_j), energy(s.device_energy_j), ""))
    if s.cpu_accounting == "process-tree":
        accounting = f"{s.cpu_accounting} (approximate)"
    elif s.cpu_accounting == "process":  # a block: measure/ownprocess.py
        accounting = "process (every thread of the process exactly; its children approximately)"
    elif s.escaped_pids:  # the rest of their CPU, and their new children's, is not counted
        left = len(s.escaped_pids)
        noun = "process that" if left == 1 else "processes that"
        accounting = f"{s.cpu_accounting} (the tree less {left} {noun} left its cgroup)"
    else:
        accounting = f"{s.cpu_accounting} (exact, whole tree)"
    whose = "the process and its children" if s.kind == "block" else "the tree"
    facts = [*bases, ("CPU time", f"{s.cpu_s:.2f} s of CPU by {whose}, counted by {accounting}")]
    if s.node_role == "member":  # the whole-device column's "—": another wrapper logs it
        facts.append(
            ("Node", "a member of its job's node: the whole-device figures are logged once, by "
             "the node's leader (docs/CLUSTERS.md)")
        )  # fmt: skip
    facts.append(("PUE", f"{s.pue:.2f}"))
    if s.schedule is not None:
        from carbonwrap.render.schedule import report_line  # only for scheduled runs

        facts.append(("Start", report_line(s.schedule)))
    facts.append(("Intensity", _intensity(s)))
    facts.append(("CO2e", f"{units.mass(s.co2e_g)} CO2e"))
    if s.co2e_g > 0:
        for equivalent in equivalents:
            amount = equivalent.amount(s.co2e_g)
            if amount is not None:
                facts.append(("≈", f"{amount} {equivalent.what} ({equivalent.source})"))
    facts += per_unit_facts(s)
    if s.predictions or s.budget is not None:
        from carbonwrap.render.prediction import report_facts  # only for runs that have them

        facts += report_facts(s)
    if s.log_path:
        facts.append(("Log", s.log_path))
    return ReportView(title, rows, facts, list(s.notes), _alarm(s))


# Notes that explain rather than warn (the Energy line already says "estimate" or
# "approximate", or nothing is wrong): the whole report shows them, the compact one does not.
_EXPLAINING = (
    "RAPL zone skipped: ",  # psys and the like: not a package, never used
    "RAPL has no dram zone here;",
    "AMD Zen CPUs have no DRAM RAPL domain:",
    "amd_energy unavailable too: no amd_energy hwmon device",  # not installed: the estimate
    "CPU time counted by polling the process tree",
)
_NO_RAPL = "RAPL unavailable, CPU energy estimated: no RAPL package zones "  # a VM: no fix
# no GPU here: nothing left unmeasured (the first, in logs from before other vendors were measured)
_NO_DRIVER = ("unavailable: no NVIDIA driver", "unavailable: no GPU found")


def _explains(note: str) -> bool:
    if note.startswith(_NO_RAPL):
        return "; skipped: " not in note  # zones there but left out: worth a look
    return note.startswith(_EXPLAINING) or note.endswith("left by killed runs")


def warnings_of(notes: Sequence[str]) -> list[str]:
    """The notes that are warnings: something not measured, measured less well, or failing."""
    return [note for note in notes if not _explains(note)]


def compact_view(summary: RunSummary) -> ReportView:
    """The default report, about five lines: what ran, how it ended and for how long; the
    energy with its method; the CO2e with the intensity and its source; what the user asked
    for (a scheduled start, predictions, a budget); the log; one line per real warning."""
    s = summary
    facts = [("Energy", _energy_line(s)), ("CO2e", _co2e_line(s)), *per_unit_facts(s)]
    if s.schedule is not None:
        from carbonwrap.render.schedule import report_line  # only for scheduled runs

        facts.append(("Start", report_line(s.schedule)))
    if s.predictions or s.budget is not None:
        from carbonwrap.render.prediction import report_facts  # only for runs that have them

        facts += report_facts(s)
    if s.log_path:
        facts.append(("Log", s.log_path))
    return ReportView(_title(s), [], facts, warnings_of(s.notes), _alarm(s))


def per_unit_facts(s: RunSummary) -> list[tuple[str, str]]:
    """ "Per step  1.20 J, 35.2 µg CO2e (1,200 steps)": the figure models are compared by, for
    a run that reported its progress in a unit; none otherwise."""
    per = s.per_unit
    if per is None:
        return []
    count = per["count"]
    shown_count = f"{count:,.0f}" if float(count).is_integer() else f"{count:,.4g}"
    return [
        (
            f"Per {per['unit']}",
            f"{units.energy(per['energy_j_per_unit'])}, "
            f"{units.mass(per['co2e_g_per_unit'])} CO2e "
            f"(the whole run's over {shown_count} reported)",
        )
    ]


def _energy_line(s: RunSummary) -> str:
    """The attributed total (before PUE) = each measured component with its method."""
    measured, missing = [], []
    energy = units.energy_format([s.energy_j])  # the line in the unit of its total
    for name in (*COMPONENTS, *sorted(set(s.components) - set(COMPONENTS))):
        component = s.components.get(name)
        if component is None or component.method.startswith(_NO_DRIVER):
            continue
        label = _LABELS.get(name, name)
        if component.method.startswith("unavailable"):
            missing.append(label)
        else:
            measured.append(f"{label} {energy(component.energy_j)} ({component.method})")
    text = energy(s.energy_j)
    if measured:
        text += " = " + " + ".join(measured)
    if missing:
        text += f"; {' and '.join(missing)} not measured"
    if s.cpu_accounting == "process-tree":
        text += "; CPU time by process-tree (approximate)"
    return text


def _co2e_line(s: RunSummary) -> str:
    """The CO2e (PUE included) at the energy-weighted mean intensity, its region and source."""
    text = units.mass(s.co2e_g)
    if s.pue != 1.0:
        text += f" with PUE {s.pue:.2f}"
    mean = s.intensity_mean_g_per_kwh
    if mean is None:
        return text + ", grid intensity unknown"
    low, high = s.intensity_min_g_per_kwh, s.intensity_max_g_per_kwh
    varied = low is not None and high is not None and high - low > 0.05
    text += f" at {mean:.1f} g/kWh" + (" (mean)" if varied else "")
    region = s.region.get("code", "")
    if region:
        text += f", region {region}"
    if s.intensity_sources:
        text += "; " + ", ".join(s.intensity_sources)
    if "marginal" in s.intensity_signals:
        text += "; MARGINAL emissions rate (MOER), not average intensity"
    return text


def _gpu_rows(
    s: RunSummary, energy: Callable[[float | None], str]
) -> list[tuple[str, str, str, str]]:
    """One row per GPU the command used, energies written by `energy` (the table's unit);
    the unused ones in one row."""
    rows = []
    unused = []
    for index in sorted(s.gpus):
        gpu = s.gpus[index]
        if not gpu.used:
            unused.append(str(index))
            continue
        intervals = sum(n for m, n in gpu.methods.items() if m != "not-in-use") or 1
        shares = ", ".join(
            f"{method} {100 * n / intervals:.0f}%"
            for method, n in sorted(gpu.methods.items(), key=lambda kv: -kv[1])
            if method != "not-in-use"
        )
        method = f"{gpu.energy_method}; {shares}" + ("; MIG board level" if gpu.mig else "")
        label = f"GPU {index}" + (f" {gpu.name}" if gpu.name else "")
        rows.append((label, energy(gpu.energy_j), energy(gpu.device_energy_j), method))
    if unused:
        rows.append((f"GPU {','.join(unused)}", "—", "—", "not used by the command"))
    return rows


def _intensity(s: RunSummary) -> str:
    if s.intensity_mean_g_per_kwh is None:
        return "unknown"
    text = f"{s.intensity_mean_g_per_kwh:.1f} g/kWh"
    low, high = s.intensity_min_g_per_kwh, s.intensity_max_g_per_kwh
    if low is not None and high is not None and high - low > 0.05:
        text += f" (energy-weighted mean; {low:.1f}–{high:.1f})"
    region = s.region.get("code", "")
    origin = s.region.get("detail", "")
    if region:
        text += f", region {region}" + (f" ({origin})" if origin else "")
    if s.intensity_sources:
        text += "; " + ", ".join(s.intensity_sources)
    if s.intensity_measured_share > 0:
        text += f"; measured history priced {100 * s.intensity_measured_share:.0f}% of the energy"
    if "marginal" in s.intensity_signals:
        text += "; MARGINAL emissions rate (MOER), not average intensity"
    return text


def render_text(view: ReportView) -> str:
    """Plain text: for pipes, files and terminals without colour."""
    view = view.escaped()
    lines = [view.title]
    header = ("", "attributed", "whole device", "method")
    table = [header, *view.rows] if view.rows else []
    widths = [max((len(row[i]) for row in table), default=0) for i in range(3)]
    for row in table:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2])]
        lines.append(("  " + "  ".join(cells) + "  " + row[3]).rstrip())
    label_width = max((len(label) for label, _ in view.facts), default=0)
    for label, value in view.facts:
        lines.append(f"  {label.ljust(label_width)}  {value}")
    for note in view.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"


def render_rich(view: ReportView) -> Any:
    """A rich renderable of the same content (rich imported only here)."""
    from rich.console import Group
    from rich.table import Table

    view = view.escaped()  # and every string a Text: never read as markup
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("energy")
    table.add_column("attributed", justify="right")
    table.add_column("whole device", justify="right")
    table.add_column("method", overflow="fold")
    for row in view.rows:
        table.add_row(*map(rich_text, row), style="bold" if row[0] == "Total" else None)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    for label, value in view.facts:
        facts.add_row(rich_text(label), rich_text(value))
    title = rich_text(view.title, style="bold red" if view.alarm else "bold")
    parts: list[Any] = [title, *([table] if view.rows else []), facts]
    parts.extend(rich_text(f"note: {note}", style="yellow") for note in view.notes)
    return Group(*parts)
