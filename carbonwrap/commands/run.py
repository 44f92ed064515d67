"""The `run` command: settings resolved and checked, the carbon-aware wait if asked for, the
cgroup leaf opened as early as possible, then the run itself (`run/phases.py`)."""

from __future__ import annotations

from carbonwrap.settings.resolve import check_run_settings, load_config

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO


def run(
    flags: Mapping[str, Any],
    command: tuple[str, ...],
    where: tuple[str | None, str | None, str | None],
    json_path: str | None,
    progress_from_output: bool,
    environ: Mapping[str, str],
    stderr: TextIO,
    mlflow: Mapping[str, str | None] | None = None,
) -> int:
    """`carbonwrap run`: `flags` are the options that settings also give (None: not given),
    `where` --region, --location, --cloud; `mlflow`: --mlflow's run and experiment, None
    without it; returns the exit status."""
    from carbonwrap.measure.accounting import new_run_id, open_accounting

    config = load_config(environ)
    resolved = config.resolve(flags, environ)
    check_run_settings(resolved)
    schedule = None
    if resolved["start_within"].value:  # the wait comes before the run exists: no leaf, no log
        from carbonwrap.run.schedule import Interrupted, start_when_greenest

        try:
            schedule = start_when_greenest(
                resolved, command, where, json_path, config, environ, stderr
            )
        except Interrupted as stop:
            stderr.write(f"carbonwrap: {stop}\n")
            return stop.status
    run_id = new_run_id()
    # The cgroup leaf first: the kernel's wait to move carbonwrap in overlaps loading the rest.
    accounting = open_accounting(resolved["cpu_accounting"].value, run_id)
    from carbonwrap.run.options import RunOptions
    from carbonwrap.run.phases import run as run_command

    options = RunOptions.from_settings(
        resolved,
        command,
        where,
        json_path=json_path,
        progress_from_output=progress_from_output,
        run_id=run_id,
        config=config,
        schedule=schedule,
        mlflow=mlflow,
    )
    return run_command(options, environ, stderr, accounting)
