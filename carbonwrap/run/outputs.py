"""What a run leaves for people and scripts once the child has exited: the report on stderr
and the JSON document."""

from __future__ import annotations

import sys

from carbonwrap.outfiles import check_target, replace_whole
from carbonwrap.runlog.summary import RunSummary

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from carbonwrap.render.final import Equivalent


# Names of carbonwrap's own standard streams, written as streams (as the shell's `>` would),
# not replaced as files: `--json /dev/stdout` is a common way to say `--json -`.
_STREAMS = {
    "-": 1,
    "/dev/stdout": 1,
    "/dev/fd/1": 1,
    "/proc/self/fd/1": 1,
    "/dev/stderr": 2,
    "/dev/fd/2": 2,
    "/proc/self/fd/2": 2,
}


def check_json_target(path: str | None) -> None:
    if path is not None and path not in _STREAMS:
        check_target("--json", path)


def write_outputs(
    summary: RunSummary,
    json_path: str | None,
    quiet: bool,
    environ: Mapping[str, str],
    stderr: TextIO,
    json_mode: int = 0o600,
    verbose: bool = False,
) -> None:
    """The human report on stderr (compact, or whole with `verbose`) and the JSON document,
    after the child has exited. The JSON file is replaced whole by outfiles' rules (never
    written through a symlink) with the log's mode, `json_mode` exactly (the `log_mode`
    setting): it holds what the log holds."""
    if not quiet:
        _print_report(summary, environ, stderr, verbose)
    if json_path is None:
        return
    import json  # only with --json (start-up: json imports re)

    from carbonwrap.render.json import run_document

    text = json.dumps(run_document(summary), indent=2) + "\n"
    try:
        stream = _STREAMS.get(json_path)
        if stream is not None:
            out = sys.stdout if stream == 1 else stderr
            out.write(text)
            out.flush()
        else:
            replace_whole(json_path, text.encode("utf-8"), json_mode, exact=True)
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


def _print_report(
    summary: RunSummary, environ: Mapping[str, str], stderr: TextIO, verbose: bool
) -> None:
    from carbonwrap.render.final import compact_view, render_rich, render_text, report_view

    if verbose:
        from carbonwrap.intensity.table import defaults

        view = report_view(summary, equivalents(defaults()))
    else:
        view = compact_view(summary)
    try:
        if stderr.isatty() and environ.get("TERM", "") != "dumb":
            from rich.console import Console

            Console(file=stderr, highlight=False).print(render_rich(view))
        else:
            stderr.write(render_text(view))
        stderr.flush()
    except OSError:
        pass  # the terminal went away (SIGHUP): the log and JSON still have everything
