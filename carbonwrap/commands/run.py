"""The `run` command: the cgroup leaf opened first (a join, if any, overlaps the rest), settings
resolved and checked, the carbon-aware wait if asked for, then the run itself
(`run/phases.py`)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from carbonwrap.measure.accounting import TreeAccounting


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
    early = flags.get("cpu_accounting") or "auto"
    run_id, accounting = _accounting_first(early)
    try:
        from carbonwrap.settings.resolve import check_run_settings, load_config

        config = load_config(environ)
        resolved = config.resolve(flags, environ)
        check_run_settings(resolved)
    except BaseException:
        accounting[0].finish()
        raise
    method = resolved["cpu_accounting"].value
    waits = bool(resolved["start_within"].value)
    reopen = method != early or waits
    if reopen:
        accounting[0].finish()
    schedule = None
    if waits:  # the wait comes before the run exists: no leaf, no log
        from carbonwrap.run.schedule import Interrupted, start_when_greenest

        try:
            schedule = start_when_greenest(
                resolved, command, where, json_path, config, environ, stderr
            )
        except Interrupted as stop:
            stderr.write(f"carbonwrap: {stop}\n")
            return stop.status
    if reopen:
        from carbonwrap.measure.accounting import open_accounting

        accounting = open_accounting(method, run_id)
    given = {"json_path": json_path, "progress_from_output": progress_from_output}
    try:  # until the run owns the leaf (RunContext.undo), a failure gives it up here
        from carbonwrap.run.options import RunOptions
        from carbonwrap.run.phases import run as run_command

        options = RunOptions.from_settings(
            resolved, command, where, run_id=run_id, config=config, schedule=schedule,
            mlflow=mlflow, **given,
        )  # fmt: skip
    except BaseException:
        accounting[0].finish()
        raise
    return run_command(options, environ, stderr, accounting)


def _accounting_first(method: str) -> tuple[str, tuple[TreeAccounting, list[str]]]:
    """The run id and its CPU accounting, before the settings are even read (entry.py opens
    it before the CLI is imported, where it can): a cgroup leaf's join where there is one (v1,
    a v2 mounted favordynmods or without clone3: `LeafJoin.will_join`), the kernel's wait to
    move carbonwrap in (an RCU grace period: ~10-20 ms on the development VM, as long as the
    rest of start-up), overlaps everything else. `method`: the flag's, else auto; settings
    that name another (a variable, the settings file) or --start-within give it up again."""
    from carbonwrap.measure.accounting import open_accounting, take_early
    from carbonwrap.measure.leafjoin import new_run_id

    taken = take_early()
    if taken is not None:
        return taken
    run_id = new_run_id()
    return run_id, open_accounting(method, run_id)
