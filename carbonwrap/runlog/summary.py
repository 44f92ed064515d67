"""Fold a run's records into one summary: the live view, final report, JSON and `report` all
render this, so they can never disagree."""

from __future__ import annotations

from carbonwrap.errors import shell_quote
from carbonwrap.lite import dataclass, field
from carbonwrap.runlog.ledger import CarbonLedger, SoFar
from carbonwrap.runlog.records import Record, parse_utc

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from typing import Any

COMPONENTS = ("cpu", "dram", "gpu")
_PREDICTION_NUMBERS = (
    "elapsed_s",
    "report_elapsed_s",
    "done",
    "total",
    "fraction",
    "duration_s",
    "energy_j",
    "co2e_g",
    "duration_margin_s",
    "energy_margin_j",
    "co2e_margin_g",
    "intensity_g_per_kwh",
)


@dataclass
class ComponentSummary:
    """One component's energy. `None` energies mean not measured (see `method`)."""

    method: str
    basis: str = ""
    energy_j: float | None = None
    device_energy_j: float | None = None


@dataclass
class GpuSummary:
    """One GPU the run could use. Energies in J; `methods`: attribution method -> intervals."""

    index: int
    name: str = ""
    uuid: str = ""
    energy_method: str = ""
    mig: bool = False
    energy_j: float = 0.0
    device_energy_j: float = 0.0
    methods: dict[str, int] = field(default_factory=dict)
    vendor: str = ""  # nvidia | amd | intel

    @property
    def used(self) -> bool:
        return any(method != "not-in-use" for method in self.methods)


@dataclass
class RunSummary:
    """One run as every renderer sees it (a docstring also spares dataclass computing one)."""

    run_id: str = ""
    command: list[str] | None = None
    # A command line too long to log whole (`records.ARGV_BYTES`): `command` holds its first
    # arguments; {"arguments": N, "bytes": B} left out. None: the command is whole.
    command_cut: dict[str, int] | None = None
    host: str = ""
    cwd: str = ""
    started_at: str = ""
    ended_at: str | None = None
    duration_s: float = 0.0
    cpu_s: float = 0.0
    cpu_accounting: str = ""
    exit_code: int | None = None
    signal: str | None = None
    complete: bool = False
    components: dict[str, ComponentSummary] = field(default_factory=dict)
    gpus: dict[int, GpuSummary] = field(default_factory=dict)
    pue: float = 1.0
    region: dict[str, str] = field(default_factory=dict)
    intensity_mean_g_per_kwh: float | None = None
    intensity_min_g_per_kwh: float | None = None
    intensity_max_g_per_kwh: float | None = None
    intensity_sources: list[str] = field(default_factory=list)
    intensity_signals: list[str] = field(default_factory=list)
    intensity_measured_share: float = 0.0  # of the energy, priced with measured history
    co2e_g: float = 0.0
    notes: list[str] = field(default_factory=list)
    leftover_pids: list[int] = field(default_factory=list)
    escaped_pids: list[int] = field(default_factory=list)  # left the run's cgroup while running
    tags: dict[str, str] = field(default_factory=dict)
    job: dict[str, str] = field(default_factory=dict)
    # In a job: "leader" (it logged the node's whole-device CPU and DRAM figures) or "member"
    # (only its share: the node's leader has them); "" for a run outside a job or an old log.
    node_role: str = ""
    # "command" (`carbonwrap run`), or "block": Python measured in-process (`carbonwrap.track`,
    # the notebook magics), whose `command` is the block's name.
    kind: str = "command"
    log_path: str | None = None
    bad_lines: int = 0
    # Predictions from progress (`prediction` records): "first", "at_50" (the first at or past
    # half the work), "last"; each {elapsed_s, fraction, duration_s, energy_j, co2e_g, …}.
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # --budget (`budget` records): limit, quantity, limit_value (g or J), on_exceed, grace_s,
    # events [{event, elapsed_s, basis, value, fraction, action, message}]; None: no budget.
    budget: dict[str, Any] | None = None
    stopped: str | None = None  # why carbonwrap stopped the command (the end record says)
    schedule: dict[str, Any] | None = None  # the carbon-aware start (render/schedule.py)
    # The last progress report logged from each source ("channel", "output"): {done, total,
    # unit}; the work the energy bought (`per_unit`).
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        """Attributed energy of all measured components, before PUE."""
        return sum(c.energy_j or 0.0 for c in self.components.values())

    @property
    def device_energy_j(self) -> float:
        return sum(c.device_energy_j or 0.0 for c in self.components.values())

    @property
    def status(self) -> str:
        """How the command ended, for scripts: `ok` (exit status 0), `failed` (another exit
        status), `killed` (a signal ended it), `stopped` (--budget stopped it), `incomplete`
        (the log does not say: no end record, as when carbonwrap was killed or the run is still
        going). Whether the log is complete is `complete`, apart from this."""
        if self.stopped and self.complete:
            return "stopped"
        if self.signal and self.complete:
            return "killed"
        if self.exit_code is None or not self.complete:
            return "incomplete"
        return "ok" if self.exit_code == 0 else "failed"

    @property
    def per_unit(self) -> dict[str, Any] | None:
        """Energy (J, before PUE) and CO2e (g, PUE included) per unit of work the command
        reported (`progress`: an epoch, a step, a sample, a token, tqdm's "it"): {unit, count,
        energy_j_per_unit, co2e_g_per_unit}. The count is the last report's `done` (the
        channel's before the output's), completed by a clean exit as the prediction is (an
        `Epoch M/M` line and exit 0 are M epochs); the whole run's energy over it, start-up
        included. None without a counted unit (no report, a fraction, nothing done yet)."""
        for source in ("channel", "output", *sorted(self.progress)):
            last = self.progress.get(source)
            if last is not None and last["unit"] != "fraction":
                break
        else:
            return None
        unit, count = last["unit"], last["done"]
        final = self.predictions.get("last")
        if final is not None and final.get("unit") == unit and self.status == "ok":
            count = max(count, final.get("done") or 0.0)
        if not count > 0:
            return None
        return {
            "unit": unit,
            "count": count,
            "energy_j_per_unit": self.energy_j / count,
            "co2e_g_per_unit": self.co2e_g / count,
        }

    @property
    def command_line(self) -> str | None:
        """The command as a shell would read it, and what the log left out of it (" … (+N more
        arguments)"); None when it was not logged (--no-argv). Every renderer shows this."""
        if self.command is None:
            return None
        if self.kind == "block":  # a name, not a command line a shell would read
            return "block " + " ".join(self.command) + self.command_cut_text
        return " ".join(map(shell_quote, self.command)) + self.command_cut_text  # shlex.join

    @property
    def command_cut_text(self) -> str:
        """What follows the command where it is shown, when the log holds only its beginning:
        " … (+N more arguments)"; "" when the command is whole."""
        if self.command_cut is None:
            return ""
        n = self.command_cut["arguments"]
        if n == 0:
            return f" \u2026 (+{self.command_cut['bytes']:,} more bytes)"
        return f" \u2026 (+{n:,} more argument{'' if n == 1 else 's'})"


# No measurement carbonwrap logs comes near this (the world uses ~6e20 J a year); a larger value
# is damage, and sums of many such values must stay finite (strict JSON has no Infinity).
_LARGEST = 1e30


def _number(value: Any) -> float | None:
    """A finite JSON number of a sane size, else None (logs are input: never trust a type)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond any float (json reads 400 digits as an int)
        return None
    return value if -_LARGEST <= value <= _LARGEST else None


def _index(key: str) -> bool:
    """A GPU index as `events.sample` writes it ("0".."99…"), not any str.isdigit() ("²")."""
    return 0 < len(key) < 10 and key.isascii() and key.isdigit()


def _count(value: Any) -> int | None:
    """A whole number of things: an int, 0 up to 2**53 (a float holds it exactly)."""
    if type(value) is int and 0 <= value <= 1 << 53:
        return value
    return None


def elapsed_of(record: Record) -> float | None:
    """A record's `elapsed_s` as the fold reads it (the fast reader decides by the same)."""
    return _number(record.get("elapsed_s"))


def _number_or(value: Any, default: float) -> float:
    number = _number(value)
    return default if number is None else number


def _prediction_entry(r: Record) -> dict[str, Any] | None:
    """A prediction record's values, each checked (logs are input); None without its totals."""
    entry: dict[str, Any] = {key: _number(r.get(key)) for key in _PREDICTION_NUMBERS}
    if entry["duration_s"] is None or entry["energy_j"] is None or entry["co2e_g"] is None:
        return None
    for key in ("unit", "intensity_basis", "basis"):
        entry[key] = str(r.get(key, ""))
    intervals = r.get("intervals")
    entry["intervals"] = intervals if type(intervals) is int else None
    return entry


class Fold:
    """Feed records in log order with `add`; `summary` is valid after any prefix."""

    def __init__(self) -> None:
        self.s = RunSummary()
        self._carbon = CarbonLedger()
        self._last_energy_j = 0.0
        # The newest prediction: the last logged one, or during a run one made since and not
        # logged (`see_prediction`: the live line follows the estimate, not the log interval).
        self.latest_prediction: dict[str, Any] | None = None

    def add(self, record: Record) -> None:
        kind = record.get("type")
        if kind == "start":
            self._start(record)
        elif kind == "intensity":
            self._intensity(record)
        elif kind == "warning":
            self.s.notes.append(str(record.get("message", "")))
        elif kind == "prediction":
            self._prediction(record)
        elif kind == "progress":
            self._progress(record)
        elif kind == "budget":
            self._budget(record)
        elif kind in ("sample", "end"):
            self._sample(record)
            if kind == "end":
                self._end(record)

    def _start(self, r: Record) -> None:
        s = self.s
        s.run_id = str(r.get("run_id", ""))
        argv = r.get("argv")
        s.command = [str(a) for a in argv] if isinstance(argv, list) else None
        cut = r.get("argv_cut")
        if s.command is not None and isinstance(cut, dict):
            self._command_cut(_count(cut.get("arguments")), _count(cut.get("bytes")))
        s.host = str(r.get("host", ""))
        s.cwd = str(r.get("cwd", ""))
        s.started_at = str(r.get("time", ""))
        started_s = parse_utc(r.get("time"))
        if started_s is not None:
            self._carbon.start(started_s)
        s.cpu_accounting = str(r.get("cpu_accounting", ""))
        s.pue = _number(r.get("pue")) or 1.0
        region = r.get("region")
        if isinstance(region, dict):
            s.region = {str(k): str(v) for k, v in region.items()}
        schedule = r.get("schedule")
        if isinstance(schedule, dict):  # a carbon-aware start: its plain values only
            s.schedule = {
                str(k): v
                for k, v in schedule.items()
                if v is None or isinstance(v, (str, bool)) or _number(v) is not None
            }
        s.kind = "block" if r.get("kind") == "block" else "command"
        role = r.get("node_role")
        s.node_role = role if role in ("leader", "member") else ""
        for name, key in (("tags", "tags"), ("job", "job")):
            value = r.get(key)
            if isinstance(value, dict):
                setattr(s, name, {str(k): str(v) for k, v in value.items()})
        components = r.get("components")
        if isinstance(components, dict):
            for name, info in components.items():
                if isinstance(info, dict):
                    s.components[str(name)] = ComponentSummary(
                        method=str(info.get("method", "")), basis=str(info.get("basis", ""))
                    )
            gpu = components.get("gpu")
            devices = gpu.get("devices") if isinstance(gpu, dict) else None
            for device in devices if isinstance(devices, list) else []:
                if isinstance(device, dict) and isinstance(device.get("index"), int):
                    s.gpus[device["index"]] = GpuSummary(
                        index=device["index"],
                        name=str(device.get("name", "")),
                        uuid=str(device.get("uuid", "")),
                        # logs from before AMD and Intel GPUs were measured: NVML's only
                        vendor=str(device.get("vendor", "nvidia")),
                        energy_method=str(device.get("energy_method", "")),
                        mig=device.get("mig") is True,
                    )

    def _command_cut(self, arguments: int | None, size: int | None) -> None:
        if arguments is None or size is None:
            return
        s = self.s
        s.command_cut = {"arguments": arguments, "bytes": size}
        if arguments:
            left = f"{arguments:,} more argument{'' if arguments == 1 else 's'} ({size:,} bytes)"
        else:
            left = f"the last {size:,} bytes of its first argument"
        s.notes.append(f"the command line was too long to log whole: {left} left out")

    def _sample(self, r: Record) -> None:
        s = self.s
        s.duration_s = _number_or(r.get("elapsed_s"), s.duration_s)
        s.cpu_s = _number_or(r.get("cpu_s"), s.cpu_s)
        s.ended_at = str(r.get("time", s.ended_at))
        energy = r.get("energy_j")
        device = r.get("device_energy_j")
        energy = energy if isinstance(energy, dict) else {}
        device = device if isinstance(device, dict) else {}
        for name in sorted(set(energy) | set(device)):
            component = s.components.setdefault(str(name), ComponentSummary(method="unknown"))
            # Only numbers count: a damaged value leaves what was known (the fast reader,
            # which skips most samples, must reach the same from the last one).
            number = _number(energy.get(name))
            component.energy_j = component.energy_j if number is None else number
            number = _number(device.get(name))
            component.device_energy_j = component.device_energy_j if number is None else number
        gpus = r.get("gpus")
        for key, info in gpus.items() if isinstance(gpus, dict) else ():
            if not (isinstance(key, str) and _index(key) and isinstance(info, dict)):
                continue
            g = s.gpus.setdefault(int(key), GpuSummary(index=int(key)))
            g.energy_j = _number_or(info.get("energy_j"), g.energy_j)
            g.device_energy_j = _number_or(info.get("device_energy_j"), g.device_energy_j)
            methods = info.get("methods")
            if isinstance(methods, dict):
                g.methods = {
                    str(m): int(n)
                    for m, n in methods.items()
                    if isinstance(n, int) and not isinstance(n, bool)
                }
        total_j = s.energy_j
        delta_j = max(0.0, total_j - self._last_energy_j)
        self._last_energy_j = max(self._last_energy_j, total_j)
        time_s = parse_utc(r.get("time"))
        if time_s is not None:
            self._carbon.add_energy(time_s, delta_j, elapsed_of(r))

    def _intensity(self, r: Record) -> None:
        value = _number(r.get("intensity_g_per_kwh"))
        if value is None or value < 0:
            return
        source = str(r.get("source", ""))
        signal = str(r.get("signal", "average"))
        if r.get("kind") == "measured":
            start_s, end_s = parse_utc(r.get("valid_from")), parse_utc(r.get("valid_to"))
            if start_s is not None and end_s is not None and end_s > start_s:
                self._carbon.add_measured(start_s, end_s, value, source, signal)
        else:  # in force from its time on: the interval it falls in is split there
            self._carbon.set_intensity(value, source, signal, elapsed_of(r))
        if "region" in r:
            self.s.region.setdefault("code", str(r["region"]))

    def _end(self, r: Record) -> None:
        s = self.s
        s.complete = True
        code = r.get("exit_code")
        s.exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        sig = r.get("signal")
        s.signal = sig if isinstance(sig, str) else None
        pids = r.get("leftover_pids")
        if isinstance(pids, list):
            s.leftover_pids = [p for p in pids if isinstance(p, int)]
        escaped = r.get("escaped_pids")
        if isinstance(escaped, list):
            s.escaped_pids = [p for p in escaped if isinstance(p, int) and not isinstance(p, bool)]
        stopped = r.get("stopped")
        s.stopped = stopped if isinstance(stopped, str) else None

    def _prediction(self, r: Record) -> None:
        """Kept: the first prediction, the first at or past half the work, the last."""
        entry = _prediction_entry(r)
        if entry is None:
            return
        kept = self.s.predictions
        kept.setdefault("first", entry)
        if "at_50" not in kept and (entry["fraction"] or 0.0) >= 0.5:
            kept["at_50"] = entry
        kept["last"] = entry
        self.latest_prediction = entry

    def _progress(self, r: Record) -> None:
        """The last report of each source, checked (logs are input)."""
        done, total, unit = _number(r.get("done")), _number(r.get("total")), r.get("unit")
        if done is None or done < 0 or not isinstance(unit, str) or not unit:
            return
        source = str(r.get("source", ""))[:32]
        if source in self.s.progress or len(self.s.progress) < 8:
            self.s.progress[source] = {"done": done, "total": total, "unit": unit[:32]}

    def see_prediction(self, r: Record) -> None:
        """A prediction made during the run, logged or not: the newest for the live line only
        (`latest_prediction`); the summary keeps the logged ones."""
        entry = _prediction_entry(r)
        if entry is not None:
            self.latest_prediction = entry

    def _budget(self, r: Record) -> None:
        event = r.get("event")
        if event == "set":
            quantity = r.get("quantity")
            key = "limit_co2e_g" if quantity == "co2e" else "limit_energy_j"
            limit = _number(r.get(key))
            if quantity in ("co2e", "energy") and limit is not None:
                self.s.budget = {
                    "limit": str(r.get("limit", "")),
                    "quantity": quantity,
                    "limit_value": limit,
                    "on_exceed": str(r.get("on_exceed", "")),
                    "grace_s": _number(r.get("grace_s")),
                    "events": [],
                }
        elif event in ("exceeded", "kill") and self.s.budget is not None:
            found = self.s.budget["events"]
            if len(found) < 8:  # warned once per basis, stopped once: more is not ours
                value = r.get("co2e_g" if self.s.budget["quantity"] == "co2e" else "energy_j")
                found.append(
                    {
                        "event": event,
                        "elapsed_s": _number(r.get("elapsed_s")),
                        "basis": str(r.get("basis", "")),
                        "value": _number(value),
                        "fraction": _number(r.get("fraction")),
                        "action": str(r.get("action", "")),
                        "message": str(r.get("message", "")),
                    }
                )

    def current_intensity(self) -> tuple[float, str, str] | None:
        """The intensity in force after the records so far: value (g/kWh), source, signal."""
        return self._carbon.current

    def co2e_g(self) -> float:
        """The CO2e so far, as `summary().co2e_g` gives it, without the O(buckets) totals."""
        return self._carbon.co2e_g(self.s.pue)

    def so_far(self) -> SoFar:
        """Energy, CO2e and the intensity in force after the records so far, in O(1)."""
        s = self.s
        return SoFar(s.energy_j, self._carbon.co2e_g(s.pue), s.pue, self._carbon.current)

    def summary(self) -> RunSummary:
        s = self.s
        carbon = self._carbon.totals(s.pue)
        s.co2e_g = carbon.co2e_g
        s.intensity_mean_g_per_kwh = carbon.mean_g_per_kwh
        s.intensity_min_g_per_kwh = carbon.min_g_per_kwh
        s.intensity_max_g_per_kwh = carbon.max_g_per_kwh
        s.intensity_sources = carbon.sources
        s.intensity_signals = carbon.signals
        s.intensity_measured_share = carbon.measured_share
        return s
