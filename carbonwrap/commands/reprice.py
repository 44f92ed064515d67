"""The `reprice` command: measured grid intensity for logged runs, fetched afterwards from each
provider's history (compute nodes often have no internet) and appended to each run's log as
intensity records of kind measured, never rewriting what the log holds; then how much of each
run's energy is priced by measured values. Logs are found as `report` finds them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap.errors import CarbonwrapError, shown
from carbonwrap.intensity.points import IntensityPoint, ProviderError, reason_text
from carbonwrap.intensity.reprice import (
    FAILED,
    PLANNED,
    REPRICED,
    SKIPPED,
    UNCHANGED,
    HistoryReach,
    LoggedRun,
    RunOutcome,
    Span,
    calls_for,
    history_reach,
    measured_records,
    measured_share,
    new_windows,
    split_reach,
)
from carbonwrap.intensity.select import Choice
from carbonwrap.runlog.append import FinishedLog, Identity, LogRefused, append_after
from carbonwrap.runlog.reader import is_log_start, iter_logs
from carbonwrap.runlog.records import Record

if TYPE_CHECKING:
    from carbonwrap.intensity.location import Location
    from carbonwrap.intensity.providers import Provider

NOT_ALL_REPRICED = 1  # some runs could not be repriced: each said on stderr, with why
FETCH_TIMEOUT_S = 60.0  # one history request, its retries included, whatever the network does
SCHEMA = "carbonwrap.reprice/1"
# Sources that fetch no average history: from a settings file (about how runs price live) they
# give way to auto; asked for with --intensity-source they are an error.
_NO_HISTORY = {
    "static": "fetches nothing",
    "watttime": "gives a marginal signal, and runs are priced at average intensity",
}

Chooser = Callable[["Location", Mapping[str, str], str], list[Choice]]


@dataclass
class RepriceOptions:
    paths: list[Path]
    dry_run: bool = False
    as_json: bool = False
    intensity_source: str | None = None  # --intensity-source; None: the settings', else auto


@dataclass
class _Group:
    """The runs one provider serves for one place, and what it answered."""

    choice: Choice
    reach: HistoryReach
    spans: list[Span] = field(default_factory=list)
    calls: list[Span] = field(default_factory=list)
    points: list[IntensityPoint] = field(default_factory=list)
    failed: list[tuple[Span, str]] = field(default_factory=list)  # calls that failed, and why


@dataclass
class _Pending:
    outcome: RunOutcome
    run: LoggedRun
    identity: Identity
    read_to: int
    group: _Group


def reprice(
    options: RepriceOptions,
    environ: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    *,
    now: Callable[[], float] = time.time,
    choices: Chooser | None = None,
    reach_of: Callable[[str], HistoryReach] = history_reach,
) -> int:
    """`carbonwrap reprice`: 0 when every run found is repriced, already measured or never
    repriced (each said); NOT_ALL_REPRICED when some could not be (each said on stderr, with
    why); 125 for a bad option or a PATH that does not exist. `choices` and `reach_of` stand
    in for the providers in tests."""
    from carbonwrap.settings.resolve import load_config, named

    config = load_config(environ)
    resolved = config.resolve({}, environ)
    source = _source(options.intensity_source, resolved)
    log_dir_value = resolved["log_dir"]
    log_dir = str(log_dir_value.value)
    for given in options.paths:
        if not given.exists():
            raise CarbonwrapError(f"{given}: no such file or directory")
    paths = options.paths or [Path(log_dir)]
    if not options.paths and not paths[0].exists():
        stderr.write(
            f"carbonwrap: no runs here: {shown(log_dir.rstrip('/') + '/')} does not exist "
            f"({named('log_dir', log_dir_value)}); point at logs: carbonwrap reprice DIR\n"
        )
        paths = []
    planner = _Planner(config.credentials(environ), source, now(), choices, reach_of)
    for log_path in iter_logs(paths):
        planner.plan(log_path)
    for group in planner.groups.values():
        group.calls = calls_for(group.spans, group.reach.call_s)
        if not options.dry_run:
            _fetch(group)
    if not options.dry_run:
        for pending in planner.pending:
            _append(pending, now())
    outcomes = sorted(planner.outcomes, key=lambda o: o.path)
    text = _document(outcomes, planner, options.dry_run) if options.as_json else None
    for outcome in outcomes:
        if outcome.status == FAILED:
            why = outcome.reason or "?"
            stderr.write(f"carbonwrap: could not reprice {_named(outcome)}: {why}\n")
    if not outcomes and paths:
        where = ", ".join(shown(str(p)) for p in paths)
        stderr.write(f"carbonwrap: no carbonwrap logs found in {where}\n")
    if text is None:
        text = _text(outcomes, list(planner.groups.values()), options)
    try:
        stdout.write(text)
        stdout.flush()
    except BrokenPipeError:  # `carbonwrap reprice | head`: the logs are written all the same
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    return NOT_ALL_REPRICED if any(o.status == FAILED for o in outcomes) else 0


def _source(flag: str | None, resolved: Mapping[str, Any]) -> str:
    """--intensity-source, else the setting where it names a history provider, else auto."""
    if flag in _NO_HISTORY:
        raise CarbonwrapError(
            f"--intensity-source {flag} {_NO_HISTORY[flag]}: reprice needs a provider's "
            "history (auto, or a provider's name)"
        )
    if flag is not None:
        return flag
    value = str(resolved["intensity_source"].value)
    return "auto" if value in _NO_HISTORY else value


def history_choices(location: Location, environ: Mapping[str, str], source: str) -> list[Choice]:
    """The provider whose history prices `location`'s runs (`select.choose_history`); a
    Choice without a name (its note says why) where none can. CarbonwrapError for a provider
    named that cannot serve the place."""
    from carbonwrap.intensity.select import choose_history

    return [choose_history(location, environ, source)]


class _Planner:
    """Reads each log once and decides what to fetch for it, grouping runs by provider."""

    def __init__(
        self,
        environ: Mapping[str, str],
        source: str,
        now_s: float,
        choices: Chooser | None,
        reach_of: Callable[[str], HistoryReach],
    ) -> None:
        self.environ, self.source, self.now_s = environ, source, now_s
        self.choices = choices or history_choices
        self.reach_of = reach_of
        self.outcomes: list[RunOutcome] = []
        self.pending: list[_Pending] = []
        self.groups: dict[tuple[str, str], _Group] = {}
        self._places: dict[str, tuple[str, list[Choice]] | str] = {}

    def plan(self, path: str) -> None:
        outcome = RunOutcome(path)
        try:
            with FinishedLog.open(path, write=False) as log:
                run = LoggedRun()
                records = log.records()
                first = next(records, None)
                if first is None or not is_log_start(first):
                    return  # not a carbonwrap log: passed by, as `report` does
                for record in (first, *records):
                    run.add(record)
                identity, read_to, refusal = log.identity, log.read_to, log.refusal()
        except LogRefused as exc:
            self._done(outcome, FAILED, exc.reason)
            return
        except OSError as exc:
            self._done(outcome, FAILED, f"cannot read it: {exc.strerror}")
            return
        outcome.run_id, outcome.region = run.run_id, run.region
        outcome.before(run.summary())
        why = run.why_not()
        if why is not None:
            self._done(outcome, SKIPPED, why)
            return
        assert run.region is not None
        gaps = run.unmeasured()
        if not gaps:
            self._done(outcome, UNCHANGED, "all of its time is priced by measured values")
            return
        if refusal is not None:
            self._done(outcome, FAILED, refusal)
            return
        place = self._place(run.region)
        if isinstance(place, str):
            self._done(outcome, FAILED, place)
            return
        region, candidates = place
        picked = self._pick(candidates, gaps)
        if picked is None:
            note = next((c.note for c in candidates if c.note), None)
            why = f"no history source for {region}" + (f" ({note})" if note else "")
            self._done(outcome, SKIPPED, f"{why}; the value it was priced at stays")
            return
        choice, reach, within, beyond = picked
        outcome.provider, outcome.gaps, outcome.beyond = choice.name, within, beyond
        if not within:
            self._done(outcome, SKIPPED, _beyond_reach(choice, reach))
            return
        key = (str(choice.name), region)
        group = self.groups.setdefault(key, _Group(choice, reach))
        group.spans.extend(within)
        outcome.status = PLANNED
        self.outcomes.append(outcome)
        self.pending.append(_Pending(outcome, run, identity, read_to, group))

    def _done(self, outcome: RunOutcome, status: str, reason: str) -> None:
        outcome.status, outcome.reason = status, reason
        self.outcomes.append(outcome)

    def _place(self, code: str) -> tuple[str, list[Choice]] | str:
        """The region re-resolved (as `run` resolves --region) and its history providers, or
        why there are none to be had; once per region code."""
        found = self._places.get(code)
        if found is None:
            from carbonwrap.intensity.location import resolve_location

            try:
                location = resolve_location(code, None, None, self.environ)
            except CarbonwrapError as exc:
                found = f"its region {code}: {exc.message}"
            else:
                try:
                    found = location.region, self.choices(location, self.environ, self.source)
                except CarbonwrapError as exc:  # a provider named that cannot serve the place
                    found = exc.message
            self._places[code] = found
        return found

    def _pick(
        self, candidates: list[Choice], gaps: list[Span]
    ) -> tuple[Choice, HistoryReach, list[Span], list[Span]] | None:
        """The first provider whose history reaches some of `gaps` (else the first), with
        the gaps within its reach and those beyond it."""
        best = None
        for choice in candidates:
            if choice.name is None or choice.make is None:
                continue
            reach = self.reach_of(choice.name)
            within, beyond = split_reach(gaps, self.now_s, reach.back_s)
            if within:
                return choice, reach, within, beyond
            best = best or (choice, reach, within, beyond)
        return best


def _beyond_reach(choice: Choice, reach: HistoryReach) -> str:
    from carbonwrap.render.units import duration

    if reach.back_s <= 0:
        return f"{choice.name} keeps no history; the value it was priced at stays"
    return (
        f"older than {choice.name}'s history reaches ({duration(reach.back_s)} back); the value "
        "it was priced at stays"
    )


def _fetch(group: _Group) -> None:
    """Every call of the group, in turn; after a failure the rest are not asked (a provider
    that is down costs one timeout, not one per call)."""
    from carbonwrap.intensity.oneshot import run_bounded

    try:
        assert group.choice.make is not None
        provider = group.choice.make()
    except Exception as exc:  # the provider refuses its settings (a token's shape)
        why = f"{group.choice.name}: cannot start ({reason_text(str(exc))})"
        group.failed = [(call, why) for call in group.calls]
        return
    for index, call in enumerate(group.calls):
        try:
            group.points += run_bounded(_history(provider, call), FETCH_TIMEOUT_S)
        except (ProviderError, asyncio.TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, ProviderError) else "no answer in time"
            why = f"{group.choice.name}: {reason}"
            group.failed = [(later, why) for later in group.calls[index:]]
            return


async def _history(provider: Provider, call: Span) -> list[IntensityPoint]:
    from carbonwrap import __version__
    from carbonwrap.intensity.http import new_session

    headers = {"User-Agent": f"carbonwrap/{__version__}", "Accept": "application/json"}
    async with new_session(headers) as session:
        return list(await provider.history(session, call[0], call[1]))


def _append(pending: _Pending, now_s: float) -> None:
    outcome, run, group = pending.outcome, pending.run, pending.group
    failed = [why for (low, high), why in group.failed if _overlaps((low, high), outcome.gaps)]
    windows = new_windows(group.points, outcome.gaps)

    def decide(added: list[Record]) -> list[Record]:
        for record in added:  # another reprice's, since this one read the log
            run.add(record)
        kept = new_windows(windows, run.unmeasured())
        return measured_records(kept, str(run.region), now_s, run.end_elapsed_s)

    batch: list[Record] = []
    if windows:
        try:
            batch = append_after(outcome.path, pending.identity, pending.read_to, decide)
        except LogRefused as exc:
            outcome.status, outcome.reason = FAILED, exc.reason
            return
    for record in batch:
        run.add(record)
    outcome.after(run.summary())
    outcome.appended = len(batch)
    outcome.sources = sorted({str(r["source"]) for r in batch})
    if failed:
        added = f" ({len(batch)} measured windows added from what it answered)" if batch else ""
        outcome.status, outcome.reason = FAILED, failed[0] + added
    elif batch:
        outcome.status = REPRICED
    elif windows:
        outcome.status = UNCHANGED
        outcome.reason = "another carbonwrap reprice added the same windows meanwhile"
    else:
        outcome.status = UNCHANGED
        outcome.reason = f"{group.choice.name} has no measured values for its time yet"


def _overlaps(span: Span, spans: list[Span]) -> bool:
    return any(low < span[1] and span[0] < high for low, high in spans)


# -- what is said ------------------------------------------------------------------------------


def _named(outcome: RunOutcome) -> str:
    run = f" (run {shown(outcome.run_id)})" if outcome.run_id else ""
    return f"{shown(outcome.path)}{run}"


def _utc(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch_s))


def _spans_text(spans: list[Span]) -> str:
    from carbonwrap.render.units import duration

    total = duration(sum(b - a for a, b in spans))
    first, last = spans[0][0], spans[-1][1]
    pieces = f" in {len(spans)} pieces" if len(spans) > 1 else ""
    return f"{total} between {_utc(first)} and {_utc(last)} UTC{pieces}"


def _share(share: float) -> str:
    return f"{100 * share:.0f} %"


def _line(outcome: RunOutcome) -> str:
    from carbonwrap.render.units import energy, mass

    of = f"of {energy(outcome.energy_j)}"
    if outcome.status == REPRICED:
        sources = ", ".join(outcome.sources)
        s = "" if outcome.appended == 1 else "s"
        what = (
            f"{outcome.appended} measured window{s} from {sources} added; measured "
            f"{_share(outcome.share_before)} → {_share(outcome.share_after)} {of}; CO2e "
            f"{mass(outcome.co2e_before_g)} → {mass(outcome.co2e_after_g)}"
        )
    elif outcome.status == PLANNED:
        what = (
            f"would fetch {_spans_text(outcome.gaps)} from {outcome.provider}; measured now "
            f"{_share(outcome.share_before)} {of}"
        )
    else:
        what = f"{outcome.reason}; measured {_share(outcome.share_after)} {of}"
    if outcome.beyond and outcome.status in (REPRICED, PLANNED, UNCHANGED, FAILED):
        what += f"; {_spans_text(outcome.beyond)} is older than {outcome.provider}'s history"
    return f"{_named(outcome)}: {what}"


def _text(outcomes: list[RunOutcome], groups: list[_Group], options: RepriceOptions) -> str:
    from carbonwrap.render.units import energy

    lines = [_line(o) for o in outcomes if o.status != FAILED]
    if not outcomes:
        return ""
    energy_j = sum(o.energy_j for o in outcomes)
    share = measured_share((o.energy_j, o.share_after) for o in outcomes) or 0.0
    counts = {s: sum(o.status == s for o in outcomes) for s in (REPRICED, FAILED, PLANNED)}
    runs = f"{len(outcomes)} run{'' if len(outcomes) == 1 else 's'}"
    if options.dry_run:
        asks = [f"{len(g.calls)} to {g.choice.name}" for g in groups if g.calls and g.choice.name]
        calls = sum(len(g.calls) for g in groups)
        requests = f"would make {calls} request{'' if calls == 1 else 's'}"
        requests += f" ({', '.join(asks)})" if asks else ""
        lines.append(
            f"{counts[PLANNED]} of {runs} to reprice: {requests}; nothing fetched or written "
            f"(--dry-run); measured now {_share(share)} of {energy(energy_j)}"
        )
    else:
        failed = f", {counts[FAILED]} could not be" if counts[FAILED] else ""
        lines.append(
            f"{counts[REPRICED]} of {runs} repriced{failed}; measured values now price "
            f"{_share(share)} of their {energy(energy_j)}"
        )
    return "".join(line + "\n" for line in lines)


def _document(outcomes: list[RunOutcome], planner: _Planner, dry_run: bool) -> str:
    """One JSON document for scripts (schema carbonwrap.reprice/1): energies in kWh before PUE,
    CO2e in kg with PUE, times ISO 8601 UTC, as the other documents round them."""
    from carbonwrap.render.json import sig
    from carbonwrap.runlog.records import utc_iso

    def spans(found: list[Span]) -> list[dict[str, str]]:
        return [{"from": utc_iso(a), "to": utc_iso(b)} for a, b in found]

    runs = [
        {
            "log_path": o.path,
            "run_id": o.run_id or None,
            "region": o.region,
            "status": o.status,
            "reason": o.reason,
            "provider": o.provider,
            "unmeasured": spans(o.gaps),
            "beyond_history": spans(o.beyond),
            "appended": o.appended,
            "sources": o.sources,
            "energy_kwh": sig(o.energy_j / 3.6e6),
            "measured_share_before": sig(o.share_before),
            "measured_share": sig(o.share_after),
            "co2e_kg_before": sig(o.co2e_before_g / 1000),
            "co2e_kg": sig(o.co2e_after_g / 1000),
        }
        for o in outcomes
    ]
    energy_j = sum(o.energy_j for o in outcomes)
    doc = {
        "schema": SCHEMA,
        "dry_run": dry_run,
        "intensity_source": planner.source,
        "requests": [
            {"provider": g.choice.name, "region": key[1], "windows": spans(g.calls)}
            for key, g in planner.groups.items()
        ],
        "runs": runs,
        "totals": {
            "runs": len(outcomes),
            **{s: sum(o.status == s for o in outcomes) for s in _STATUSES},
            "energy_kwh": sig(energy_j / 3.6e6),
            "measured_share": sig(
                measured_share((o.energy_j, o.share_after) for o in outcomes) or 0.0
            ),
            "co2e_kg": sig(sum(o.co2e_after_g for o in outcomes) / 1000),
        },
    }
    return json.dumps(doc) + "\n"


_STATUSES = (REPRICED, UNCHANGED, PLANNED, SKIPPED, FAILED)
