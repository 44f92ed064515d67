"""Pricing a logged run afterwards: the time its energy is not yet priced by measured intensity,
the provider calls that fetch it within the provider's history reach, the measured windows to
append, and the share of the energy priced by measured values (`carbonwrap reprice`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from carbonwrap.intensity.points import MARGINAL, MEASURED, IntensityPoint
from carbonwrap.runlog import records
from carbonwrap.runlog.records import Record, parse_utc
from carbonwrap.runlog.summary import Fold, RunSummary, elapsed_of

# Shorter unpriced time is rounding, not a gap: the ledger takes windows to the whole second
# (`ledger.CarbonLedger.add_measured`), and a window shorter than this would price nothing.
MIN_GAP_S = 1.0
FIXED_SOURCE = "fixed by --intensity"  # the static record's source when --intensity fixed it
DAY_S = 86400.0

Span = tuple[float, float]  # [start, end) on the wall clock, epoch s


class HistoryReach(NamedTuple):
    """How far before now a provider's history reaches (s), and the longest span one request
    asks for (s)."""

    back_s: float
    call_s: float


# The longest span one history() call is asked for, where its API is known to answer more
# than a day whole (shared/data/API_NOTES.md §1-3; the providers' own modules): more requests
# cost seconds, a span a provider cuts short would leave time unpriced until the next reprice.
_CALL_S = {
    "electricitymaps": DAY_S,  # the free plan's /history: the last 24 hours, whatever is asked
    "ukgrid": 14 * DAY_S,  # /intensity/{from}/{to}: at most 14 days an answer
    "energidataservice": 7 * DAY_S,  # CO2Emis: 2,016 five-minute rows an area a week
    "openelectricity": 7 * DAY_S,  # its history() reads at most 7 days
}


def history_reach(name: str) -> HistoryReach:
    """How far back `name`'s history reaches (`select.history_days`: 0, none) and how much of
    it one request asks for (a day unless its API is known to answer more)."""
    from carbonwrap.intensity.select import history_days

    back_s = history_days(name) * DAY_S
    return HistoryReach(back_s, min(_CALL_S.get(name, DAY_S), back_s))


class LoggedRun:
    """What repricing needs of one log, gathered while its records are folded (`add`, in log
    order): the fold itself (the share and CO2e before and after), the run's wall-clock span,
    its region, the measured windows it already holds, and whether it may be repriced."""

    def __init__(self) -> None:
        self.fold = Fold()
        self.is_log = False
        self.run_id = ""
        self.region: str | None = None
        self.start_s: float | None = None
        self.end_s: float | None = None  # the end record's time; None: no end record
        self.end_elapsed_s = 0.0
        self.measured: list[Span] = []
        self.fixed = False  # --intensity fixed the value
        self.marginal = False  # a marginal signal (WattTime) priced it

    def add(self, record: Record) -> None:
        self.fold.add(record)
        kind = record.get("type")
        if kind == "start":
            self.is_log = True
            self.run_id = str(record.get("run_id", ""))
            self.start_s = parse_utc(record.get("time"))
            region = record.get("region")
            code = region.get("code") if isinstance(region, dict) else None
            self.region = code if isinstance(code, str) and code else None
        elif kind == "end":
            self.end_s = parse_utc(record.get("time"))
            self.end_elapsed_s = elapsed_of(record) or 0.0
        elif kind == "intensity":
            self._intensity(record)

    def _intensity(self, r: Record) -> None:
        if r.get("signal") == MARGINAL:
            self.marginal = True
        if r.get("source") == FIXED_SOURCE:
            self.fixed = True
        if self.region is None and isinstance(r.get("region"), str) and r["region"]:
            self.region = r["region"]
        if r.get("kind") == MEASURED:
            start_s, end_s = parse_utc(r.get("valid_from")), parse_utc(r.get("valid_to"))
            if start_s is not None and end_s is not None and end_s > start_s:
                self.measured.append((start_s, end_s))

    def summary(self) -> RunSummary:
        return self.fold.summary()

    def why_not(self) -> str | None:
        """Why this run is never repriced (or not now), in words; None when it may be."""
        if self.end_s is None:
            return "no end record: the run is still going, or carbonwrap was killed; not touched"
        if self.fixed:
            return "its intensity was fixed by --intensity: never repriced"
        if self.marginal:
            return "priced with a marginal signal (WattTime): never mixed with average history"
        if self.start_s is None or self.end_s <= self.start_s:
            return "its start and end records hold no usable times"
        if self.region is None:
            return "its start record names no region"
        return None

    def unmeasured(self) -> list[Span]:
        """The run's time not yet priced by a measured window, from the start's second to the
        end's (the ledger takes windows to the whole second: a window ending at the end's
        millisecond would not reach it)."""
        if self.start_s is None or self.end_s is None:
            return []
        return unmeasured(math.floor(self.start_s), math.ceil(self.end_s), self.measured)


def merged(spans: Iterable[Span]) -> list[Span]:
    """The union of `spans`, in order, as disjoint spans (touching ones joined)."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def unmeasured(start_s: float, end_s: float, measured: Iterable[Span]) -> list[Span]:
    """The parts of [start_s, end_s) that no measured window covers, each at least MIN_GAP_S."""
    gaps: list[Span] = []
    at = start_s
    for low, high in merged(measured):
        if high <= at:
            continue
        if low >= end_s:
            break
        if low > at:
            gaps.append((at, low))
        at = max(at, high)
    if at < end_s:
        gaps.append((at, end_s))
    return [gap for gap in gaps if gap[1] - gap[0] >= MIN_GAP_S]


def split_reach(
    spans: Sequence[Span], now_s: float, back_s: float
) -> tuple[list[Span], list[Span]]:
    """`spans` cut at the earliest time the history reaches (`now_s` - `back_s`): the parts
    within reach, and those before it (each at least MIN_GAP_S)."""
    earliest = now_s - back_s
    within = [(max(a, earliest), b) for a, b in spans if b > earliest]
    beyond = [(a, min(b, earliest)) for a, b in spans if a < earliest]
    return (
        [s for s in within if s[1] - s[0] >= MIN_GAP_S],
        [s for s in beyond if s[1] - s[0] >= MIN_GAP_S],
    )


def calls_for(spans: Iterable[Span], call_s: float) -> list[Span]:
    """The requests that fetch `spans` (of any number of runs): each asks for at most `call_s`
    seconds, spans that fit in one request share it, and no request asks for time between
    spans that a request of its own would not have covered. `call_s` 0 or less: one request."""
    calls: list[Span] = []
    for start, end in merged(spans):
        if calls and (call_s <= 0 or end - calls[-1][0] <= call_s):
            calls[-1] = (calls[-1][0], end)
            continue
        at = start
        while call_s > 0 and end - at > call_s:
            calls.append((at, at + call_s))
            at += call_s
        calls.append((at, end))
    return calls


def new_windows(points: Iterable[IntensityPoint], gaps: Sequence[Span]) -> list[IntensityPoint]:
    """The measured `points` cut to the run's unpriced `gaps`: what to append, oldest first.
    Nothing outside the gaps, so what the log already holds as measured is never re-priced;
    values that are not measured (a provider's provisional or forecast slots) are left out."""
    found: dict[Span, IntensityPoint] = {}
    for point in points:
        if point.kind != MEASURED:
            continue
        for low, high in gaps:
            start_s, end_s = max(point.start_s, low), min(point.end_s, high)
            if end_s - start_s >= MIN_GAP_S:
                found[(start_s, end_s)] = point._replace(start_s=start_s, end_s=end_s)
    windows = sorted(found.values())
    # Two providers' windows (or a revised one) may overlap: the earlier start keeps its time.
    kept: list[IntensityPoint] = []
    for window in windows:
        if kept and window.start_s < kept[-1].end_s:
            window = window._replace(start_s=kept[-1].end_s)
            if window.end_s - window.start_s < MIN_GAP_S:
                continue
        kept.append(window)
    return kept


def measured_records(
    windows: Iterable[IntensityPoint], region: str, time_s: float, elapsed_s: float
) -> list[Record]:
    """Intensity records of kind measured for `windows`, as the poller writes history, marked
    `repriced` (fetched after the run by `carbonwrap reprice`, at `time_s`); `elapsed_s`: the
    run's end on its own clock (the fold prices measured windows by their wall-clock span and
    never reads it)."""
    out = []
    for window in windows:
        record = records.intensity(
            time_s=time_s,
            elapsed_s=elapsed_s,
            intensity_g_per_kwh=window.intensity_g_per_kwh,
            region=region,
            source=window.source,
            signal=window.signal,
            kind=MEASURED,
            valid_from_s=window.start_s,
            valid_to_s=window.end_s,
        )
        record["repriced"] = True
        out.append(record)
    return out


def measured_share(runs: Iterable[tuple[float, float]]) -> float | None:
    """The share of the energy priced by measured values over several runs, each (energy J,
    its measured share): energy-weighted; None without energy."""
    energy_j = measured_j = 0.0
    for run_energy_j, share in runs:
        energy_j += run_energy_j
        measured_j += run_energy_j * share
    return min(1.0, measured_j / energy_j) if energy_j > 0 else None


# What became of a run: appended, nothing new, only planned (--dry-run), never or not now
# repriced (a reason), or could not be (a reason: the exit status says so).
REPRICED, UNCHANGED, PLANNED, SKIPPED, FAILED = (
    "repriced",
    "unchanged",
    "planned",
    "skipped",
    "failed",
)


@dataclass
class RunOutcome:
    """One log's repricing, for the text and JSON the command prints. Energies in J (before
    PUE), CO2e in g (with PUE), shares 0..1 of the energy."""

    path: str
    run_id: str = ""
    region: str | None = None
    status: str = SKIPPED
    reason: str | None = None
    provider: str | None = None
    gaps: list[Span] = field(default_factory=list)  # to fetch: unpriced, within reach
    beyond: list[Span] = field(default_factory=list)  # unpriced, older than the history reaches
    appended: int = 0  # measured windows appended
    sources: list[str] = field(default_factory=list)  # of the windows appended
    energy_j: float = 0.0
    share_before: float = 0.0
    share_after: float = 0.0
    co2e_before_g: float = 0.0
    co2e_after_g: float = 0.0

    def before(self, summary: RunSummary) -> None:
        """Energy, measured share and CO2e as the log stands (copied: a fold's summary is
        updated in place by the records folded after it)."""
        self.energy_j = summary.energy_j
        self.share_before = self.share_after = summary.intensity_measured_share
        self.co2e_before_g = self.co2e_after_g = summary.co2e_g

    def after(self, summary: RunSummary) -> None:
        """The same once the new records are folded too."""
        self.energy_j = summary.energy_j
        self.share_after, self.co2e_after_g = summary.intensity_measured_share, summary.co2e_g
