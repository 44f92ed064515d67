"""What a run leaves for people and scripts once the child has exited: the report on stderr
and the JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap.outfiles import check_target
from carbonwrap.runlog.summary import RunSummary

if TYPE_CHECKING:
    from carbonwrap.render.final import Equivalent


def check_json_target(path: str | None) -> None:
    if path is not None and path != "-":
        check_target("--json", path)


def write_outputs(
    summary: RunSummary,
    json_path: str | None,
    quiet: bool,
    environ: Mapping[str, str],
    stderr: TextIO,
) -> None:
    """The human report on stderr and the JSON document, after the child has exited."""
    from carbonwrap.render.json import run_document

    if not quiet:
        _print_report(summary, environ, stderr)
    if json_path is None:
        return
    text = json.dumps(run_document(summary), indent=2) + "\n"
    try:
        if json_path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            with open(json_path, "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as exc:
        stderr.write(
            f"carbonwrap: could not write --json {json_path}: {exc.strerror} "
            f"(the log {summary.log_path} has everything)\n"
        )


def equivalents(defaults: Mapping[str, Any]) -> list[Equivalent]:
    """The report's two everyday comparisons, with their sources (carbonwrap/data/defaults.json)."""
    from carbonwrap.render.final import Equivalent

    car, petrol = defaults["car_gco2_per_km"], defaults["petrol_gco2_per_litre"]
    return [
        Equivalent(
            float(car["value"]),
            "km",
            "driven by an average new car",
            f"{car['value']} g/km, EEA {car['year']} new cars",
        ),
        Equivalent(
            float(petrol["value"]),
            "l",
            "of petrol burned",
            "2.35 kg CO2/l, US EPA equivalencies",
        ),
    ]


def _print_report(summary: RunSummary, environ: Mapping[str, str], stderr: TextIO) -> None:
    from carbonwrap.intensity.table import defaults
    from carbonwrap.render.final import render_rich, render_text, report_view

    view = report_view(summary, equivalents(defaults()))
    try:
        if stderr.isatty() and environ.get("TERM", "") != "dumb":
            from rich.console import Console

            Console(file=stderr, highlight=False).print(render_rich(view))
        else:
            stderr.write(render_text(view))
        stderr.flush()
    except OSError:
        pass  # the terminal went away (SIGHUP): the log and JSON still have everything
