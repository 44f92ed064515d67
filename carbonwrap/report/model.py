"""What `carbonwrap report` shows, as data: the runs read, their totals and groups, how reading
went, where each grid region is, and each charted run's course. Renderers are pure functions of
these (`render/runs.py`, `render/exports.py`, `render/html.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from carbonwrap.report.spool import RunSpool
from carbonwrap.runlog.summary import RunSummary


def run_key(s: RunSummary) -> str:
    """What tells runs apart: the run id, or the log of a run without one."""
    return s.run_id or s.log_path or ""


@dataclass
class ReadStats:
    """What reading the logs found, for the report's last lines."""

    logs: int = 0
    incomplete: int = 0
    bad_lines: int = 0
    not_logs: int = 0  # *.jsonl files (or files named) that are not carbonwrap logs
    duplicates: int = 0  # further copies of a run already read (same run_id)
    unreadable: list[str] = field(default_factory=list)  # "path: reason"
    filtered_out: int = 0


@dataclass
class Totals:
    """Sums over runs. Energies in J (attributed, before PUE); CO2e in g (PUE included)."""

    runs: int = 0
    incomplete: int = 0  # without an end record
    failed: int = 0  # failed, killed or stopped (`RunSummary.status`)
    duration_s: float = 0.0
    cpu_s: float = 0.0
    energy_j: float = 0.0
    device_energy_j: float = 0.0
    co2e_g: float = 0.0
    bad_lines: int = 0  # corrupt lines skipped in the runs' logs

    def add(self, s: RunSummary, sign: int = 1) -> None:
        """`s` counted; with `sign` -1, taken out again (a fuller copy of it came later)."""
        self.runs += sign
        self.incomplete += sign * (not s.complete)
        self.failed += sign * (s.status in ("failed", "killed", "stopped"))
        self.duration_s += sign * s.duration_s
        self.cpu_s += sign * s.cpu_s
        self.energy_j += sign * s.energy_j
        self.device_energy_j += sign * s.device_energy_j
        self.co2e_g += sign * s.co2e_g
        self.bad_lines += sign * s.bad_lines


@dataclass
class JobFigures:
    """What a group of `--group-by job` (`job,host`, `job,rank`) spans: `nodes` (hosts),
    `tasks` (wrapped runs), `leaders` (runs that logged their node's whole-device figures: the
    group's device energy is theirs, each node once); `slurm_job_id` as sacct names the job
    ("" outside Slurm); `sacct_energy_j`: Slurm's own ConsumedEnergyRaw for it (J, whole nodes),
    None where not asked, not measured or sacct could not say (`report/sacct.py`)."""

    nodes: int = 0
    tasks: int = 0
    leaders: int = 0
    slurm_job_id: str = ""
    cluster: str = ""  # SLURM_CLUSTER_NAME, where logged
    sacct_energy_j: float | None = None
    hosts: dict[str, int] = field(default_factory=dict, repr=False)  # host -> its tasks

    def add(self, s: RunSummary, sign: int = 1) -> None:
        """`s` counted; with `sign` -1, taken out again (a fuller copy of it came later)."""
        tasks = self.hosts.get(s.host, 0) + sign
        if tasks > 0:
            self.hosts[s.host] = tasks
        else:
            self.hosts.pop(s.host, None)
        self.nodes = len(self.hosts)
        self.tasks += sign
        self.leaders += sign * (s.node_role != "member")


@dataclass
class Group:
    key: str
    totals: Totals
    run_ids: list[str]
    job: JobFigures | None = None  # with --group-by job, job,host or job,rank


@dataclass
class Report:
    """Everything a renderer needs; renderers are pure functions of this.

    `runs`: the runs listed, sorted by start time: every run selected, or where more were
    read than a table lists (`report/select.LISTED`), the most recent ones, and
    `runs_not_listed` says how many more the totals and groups hold. `spool`: every run
    selected, each already written as its row of the JSON or CSV output (`report/spool.py`)."""

    runs: list[RunSummary]
    totals: Totals
    stats: ReadStats
    group_by: str | None = None
    groups: list[Group] | None = None
    filters: dict[str, object] = field(default_factory=dict)
    # Slurm's accounting (`report/sacct.py`): what could not be asked, in words; "" when all was.
    sacct_note: str = ""
    runs_not_listed: int = 0
    spool: RunSpool | None = None


@dataclass(frozen=True)
class Place:
    """Where a grid region is, in CodeCarbon's terms; empty where carbonwrap does not know."""

    country_name: str = ""
    country_iso_code: str = ""  # ISO 3166 alpha-3, as CodeCarbon writes it
    region: str = ""
    cloud_provider: str = ""
    cloud_region: str = ""
    latitude: str = ""
    longitude: str = ""
    on_cloud: str = ""


@dataclass
class RunSeries:
    """Points in time since the run's start, the first at 0 s with nothing used yet.

    `power_w[name][i]`: the component's mean attributed power (W, before PUE) between
    `elapsed_s[i]` and `elapsed_s[i + 1]` (one value fewer than points). `co2e_g[i]`: CO2e (g,
    PUE included) of the energy used up to `elapsed_s[i]`, priced as the run's total is (with
    the measured history the log holds, where it has any): the last point is the run's CO2e.
    `methods`: how each component was measured, from the start record (`estimate`, `rapl`,
    `nvml-counter`, `unavailable: <reason>` …). `samples`: sample records in the log."""

    elapsed_s: list[float] = field(default_factory=lambda: [0.0])
    power_w: dict[str, list[float]] = field(default_factory=dict)
    co2e_g: list[float] = field(default_factory=lambda: [0.0])
    methods: dict[str, str] = field(default_factory=dict)
    samples: int = 0


@dataclass
class RunChart:
    """A run to chart: its summary, and its series or why there is none."""

    summary: RunSummary
    series: RunSeries | None
    problem: str = ""
