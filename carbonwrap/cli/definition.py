"""The command line, declared: the group, each command's options, and one call per command
into `carbonwrap.commands` (imported only when that command runs). Nothing here measures,
reads settings files or prints a report."""

from __future__ import annotations

import os
import sys

import click

from carbonwrap import __version__, gcpause
from carbonwrap.choices import (
    CPU_ACCOUNTING,
    INTENSITY_SOURCES,
    ON_EXCEED,
    REPORT_FORMATS,
    SHELLS,
)
from carbonwrap.cli.options import (
    Finite,
    complete_group_by,
    parse_tags,
    parsed_by_setting,
    where_options,
)

_EXIT_CODES = """\b
Exit status: the command's own; 128+N if it died of signal N; 127 command not found;
126 command not executable; 125 carbonwrap's own error (bad option or value, unwritable log);
124 --on-exceed stop stopped the command (its own status is in the log and --json);
128+N if signal N (Ctrl-C: 130, SIGTERM: 143) ended a --start-within wait: the command did
not run."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="carbonwrap")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Measure the energy and carbon footprint of a command's own process tree."""
    if ctx.invoked_subcommand != "run":  # `run` resumes it once its command is running
        gcpause.resume()


@cli.command(
    short_help="Run COMMAND and report the energy and CO2e of its process tree.",
    context_settings={"allow_interspersed_args": False},
    epilog=_EXIT_CODES,
)
@click.option(
    "--interval",
    type=Finite(min=0.05, max=3600, unit="of seconds", example="1"),
    metavar="SECONDS",
    help="[default: 1] Time between sensor readings.",
)
@click.option(
    "--log-interval",
    type=Finite(min=0.05, unit="of seconds", example="10"),
    metavar="SECONDS",
    help="[default: 10] At most one sample record per this time in the log.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False),
    help="[default: logs] Directory for the run's JSON-lines log.",
)
@where_options
@click.option(
    "--intensity",
    type=Finite(min=0, max=5000, unit="in gCO2e/kWh", example="300"),
    metavar="G_PER_KWH",
    help="Fix the grid carbon intensity (gCO2e/kWh) instead of looking it up.",
)
@click.option(
    "--pue",
    type=Finite(min=1.0, max=5.0, example="1.2"),
    metavar="X",
    help="[default: 1] Power usage effectiveness of the facility (energy drawn per unit used "
    "by IT).",
)
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Label the run (repeatable)."
)
@click.option(
    "--json",
    "json_path",
    metavar="PATH",
    help="Write the final report as JSON to PATH ('-' = stdout, after the command exits).",
)
@click.option("-q", "--quiet", is_flag=True, help="No live view and no final report on stderr.")
@click.option("--no-live", is_flag=True, help="No live view (the final report still appears).")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="The full final report: how each component was measured, sources, energy per "
    "device, CPU time, PUE, everyday equivalents.",
)
@click.option(
    "--no-argv",
    is_flag=True,
    help="Leave the command line out of the log and reports (otherwise logged with values of "
    "options named like *key*, *token*, *secret*, *password*, --auth* redacted).",
)
@click.option(
    "--cpu-accounting",
    type=click.Choice(CPU_ACCOUNTING),
    help="[default: auto] How the tree's CPU time is counted: a fresh cgroup (exact) or "
    "process polling.",
)
@click.option(
    "--prometheus-textfile",
    metavar="PATH",
    type=click.Path(dir_okay=False),
    help="Keep PATH (*.prom) current for node_exporter's textfile collector: energy, power, "
    "CO2e, intensity by run_id, host, component. Rewritten atomically at every log sample; "
    "left with the final values at the end.",
)
@click.option(
    "--start-within",
    metavar="DURATION",
    callback=parsed_by_setting,
    help="Carbon-aware start: wait up to DURATION (8h, 90m, 1h30m, 2d) for the start whose "
    "--expected-duration window has the lowest forecast grid intensity (GB, DK, Electricity "
    "Maps), say when and the expected saving, then run. Without a forecast: start now and "
    "say why. 0 = no wait.",
)
@click.option(
    "--expected-duration",
    metavar="DURATION",
    callback=parsed_by_setting,
    help="How long COMMAND is expected to run: the window --start-within compares (needed "
    "with it).",
)
@click.option(
    "--budget",
    metavar="AMOUNT",
    callback=parsed_by_setting,
    help="A limit for the run: CO2e (500g, 2kg, 1t; with PUE, as reported) or attributed "
    "energy (5kWh, 3MJ, 800Wh; before PUE, as reported). Checked against the actual total at "
    "every sensor reading (--interval) and against predictions from the command's progress "
    "reports; see "
    "--on-exceed.",
)
@click.option(
    "--on-exceed",
    type=click.Choice(ON_EXCEED),
    help="[default: warn] When the actual total, or a prediction resting on enough progress "
    "(3 report intervals, 10 % of the work, its low end over the limit), exceeds --budget: "
    "warn = one line on stderr and in the log, the command goes on; stop = SIGTERM to every "
    "process of the command, SIGKILL after --budget-grace, exit status 124.",
)
@click.option(
    "--budget-grace",
    type=Finite(min=0, max=3600, unit="of seconds", example="30"),
    metavar="SECONDS",
    help="[default: 10] Time from SIGTERM to SIGKILL when --on-exceed stop stops the command.",
)
@click.option(
    "--progress-from-output",
    is_flag=True,
    help="Also read progress from the command's output: tqdm bars and 'Epoch N/M' lines. "
    "Output passes through carbonwrap byte for byte: a pipe or a file (batch jobs, Slurm) "
    "through a pipe, a terminal through a pseudo-terminal of the same size and modes (as "
    "script(1): Ctrl-C, Ctrl-Z and resizes behave as without carbonwrap). Reports to "
    "CARBONWRAP_PROGRESS always count.",
)
@click.option(
    "--mlflow",
    is_flag=True,
    help="Also log energy, CO2e, intensity and predictions to MLflow as metrics at every log "
    "sample, and the totals and tags at the end: to --mlflow-run or MLFLOW_RUN_ID, else a new "
    "run in --mlflow-experiment, MLFLOW_EXPERIMENT_NAME or Default, at MLFLOW_TRACKING_URI. "
    "Needs mlflow (pip install 'carbonwrap[mlflow]'); a server that is down or slow never "
    "delays the command.",
)
@click.option(
    "--mlflow-run",
    metavar="RUN_ID",
    help="The MLflow run --mlflow logs to (else MLFLOW_RUN_ID); implies --mlflow.",
)
@click.option(
    "--mlflow-experiment",
    metavar="NAME",
    help="Where --mlflow creates its run (else MLFLOW_EXPERIMENT_NAME, else Default); implies "
    "--mlflow.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    interval: float | None,
    log_interval: float | None,
    log_dir: str | None,
    region: str | None,
    location: str | None,
    cloud: str | None,
    intensity_source: str | None,
    intensity: float | None,
    pue: float | None,
    tags: tuple[str, ...],
    json_path: str | None,
    quiet: bool,
    no_live: bool,
    verbose: bool,
    no_argv: bool,
    cpu_accounting: str | None,
    prometheus_textfile: str | None,
    start_within: float | None,
    expected_duration: float | None,
    budget: str | None,
    on_exceed: str | None,
    budget_grace: float | None,
    progress_from_output: bool,
    mlflow: bool,
    mlflow_run: str | None,
    mlflow_experiment: str | None,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND and report the energy and CO2e of its process tree.

    Everything after the command name (or after --) goes to the command unchanged. Options
    other than --json and --progress-from-output also come from CARBONWRAP_<NAME> variables
    and settings files (flag > environment > project file > user file > default; see
    `carbonwrap config`).
    """
    from carbonwrap.commands.run import run as run_command

    flags = {
        "interval": interval,
        "log_interval": log_interval,
        "log_dir": log_dir,
        "intensity_source": intensity_source,
        "intensity": intensity,
        "pue": pue,
        "tags": parse_tags(tags),
        "quiet": quiet or None,
        "verbose": verbose or None,
        "live": False if no_live else None,
        "log_argv": False if no_argv else None,
        "cpu_accounting": cpu_accounting,
        "prometheus_textfile": prometheus_textfile,
        "start_within": start_within,
        "expected_duration": expected_duration,
        "budget": budget,
        "on_exceed": on_exceed,
        "budget_grace": budget_grace,
    }
    where = (region, location, cloud)
    wanted = mlflow or mlflow_run is not None or mlflow_experiment is not None
    tracking = {"run_id": mlflow_run, "experiment": mlflow_experiment} if wanted else None
    return run_command(
        flags, command, where, json_path, progress_from_output, os.environ, sys.stderr, tracking
    )


@cli.command(
    "intensity",
    short_help="Print the grid's carbon intensity now (and its forecast), with its source.",
)
@where_options
@click.option("--forecast", is_flag=True, help="Also fetch the forecast (where offered).")
@click.option(
    "--list",
    "list_sources",
    is_flag=True,
    help="List every region with a live source: provider, resolution, history, key or not.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def intensity(
    region: str | None,
    location: str | None,
    cloud: str | None,
    intensity_source: str | None,
    forecast: bool,
    list_sources: bool,
    as_json: bool,
) -> int:
    """Print the grid's carbon intensity now (and its forecast), with source and time."""
    if list_sources:
        from carbonwrap.commands.intensity import list_sources as list_command

        return list_command(as_json, sys.stdout)
    from carbonwrap.commands.intensity import intensity as intensity_command

    where = (region, location, cloud)
    return intensity_command(*where, intensity_source, forecast, as_json, os.environ, sys.stdout)


@cli.command(
    "doctor",
    short_help="Check what carbonwrap can measure here, and how to fix what is missing.",
    epilog="""\b
Exit status: 0 when carbonwrap can measure here: /proc/stat and /proc/meminfo are readable and
the command's CPU time can be counted (a cgroup leaf, else process polling), so energy comes from
RAPL or the estimate; warnings (an estimate, polling, an unreachable provider) do not change it.
1 when it cannot; 125 for a bad option or value.""",
)
@where_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema carbonwrap.doctor/1).")
def doctor(
    region: str | None,
    location: str | None,
    cloud: str | None,
    intensity_source: str | None,
    as_json: bool,
) -> int:
    """Check what carbonwrap can measure here, and how to fix what is missing.

    One line per sensor and service (/proc, cgroups, RAPL, NVML and each GPU, region, intensity
    provider) with its status: ok, warn, missing or error. The provider gets one request, which
    must answer within 3 s."""
    from carbonwrap.commands.doctor import doctor as doctor_command

    return doctor_command(
        region, location, cloud, intensity_source, as_json, os.environ, sys.stdout
    )


@cli.command("config", short_help="Show every setting's effective value and where it comes from.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema carbonwrap.config/1).")
def config(as_json: bool) -> int:
    """Show every setting's effective value and where it comes from.

    Precedence: flag > environment (CARBONWRAP_<KEY>) > project file (carbonwrap.toml, or
    [tool.carbonwrap] in pyproject.toml, from the working directory upward) > user file
    ($XDG_CONFIG_HOME/carbonwrap/config.toml) > default. Secrets are masked. Keys in files are
    the long option names with underscores (log_interval = 5, pue = 1.2, region = "DK",
    [tags] team = "nlp"); credentials ([electricitymaps] token, [watttime] username,
    password) only in the user file.
    """
    from carbonwrap.commands.config import config as config_command

    return config_command(as_json, os.environ, sys.stdout)


@cli.command("completion", short_help="Print the completion script for bash, zsh or fish.")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> int:
    """Print the completion script for SHELL, e.g. `source <(carbonwrap completion bash)`.

    The same scripts are in completions/ of the source tree.
    """
    from carbonwrap.cli.docs import completion_script

    sys.stdout.write(completion_script(cli, shell))
    return 0


@cli.command(
    "report", short_help="Add up the runs in carbonwrap logs: a table, JSON, CSV or a web page."
)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--group-by",
    metavar="KEY",
    shell_complete=complete_group_by,
    help="One row per command, host, day (UTC), job (Slurm, torchrun, MPI, PBS, LSF: the "
    "tasks of one job add up, each node's whole devices once; Slurm's own energy beside it "
    "where sacct has it), job,host or job,rank (a job's breakdown) or tag:KEY, instead of one "
    "per run.",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only runs that started at or after TIME (ISO 8601 date or time; UTC unless it "
    "says otherwise).",
)
@click.option(
    "--until",
    metavar="TIME",
    help="Only runs that started before TIME; a bare date includes that whole day.",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs with this tag (repeatable: all must match).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(REPORT_FORMATS),
    help="table (default: runs, or groups with --group-by, and totals); json (schema "
    "carbonwrap.report/2, runs, groups and totals; one line unless stdout is a terminal); csv "
    "(one row per run, or per group with --group-by); codecarbon (CodeCarbon 3.3's "
    "emissions.csv columns, one row per run).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--csv", "as_csv", is_flag=True, help="Same as --format csv.")
@click.option(
    "--html",
    "html",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write one self-contained HTML page to FILE ('-' = stdout) instead of the table: the "
    "table, and charts of power by component and cumulative CO2e over time for the 50 most "
    "recent runs.",
)
@click.option(
    "--model-card",
    is_flag=True,
    help="Print the selected runs as the co2_eq_emissions block of a Hugging Face model card's "
    "YAML header (emissions in g, summed; source; training_type from the runs' "
    "training_type tag; geographical_location; hardware_used), instead of the table.",
)
@click.option(
    "--to-mlflow",
    is_flag=True,
    help="Log each selected finished run to MLflow (MLFLOW_TRACKING_URI) as a run of its own: "
    "samples as metric series, totals, tags; a run already there (tag carbonwrap.run_id) is "
    "skipped. Needs mlflow (pip install 'carbonwrap[mlflow]').",
)
@click.option(
    "--mlflow-experiment",
    metavar="NAME",
    help="The experiment --to-mlflow logs to (else MLFLOW_EXPERIMENT_NAME, else Default).",
)
def report(
    paths: tuple[str, ...],
    group_by: str | None,
    since: str | None,
    until: str | None,
    tags: tuple[str, ...],
    output_format: str | None,
    as_json: bool,
    as_csv: bool,
    html: str | None,
    model_card: bool,
    to_mlflow: bool,
    mlflow_experiment: str | None,
) -> int:
    """Add up the runs in carbonwrap logs: PATH... are log files or directories searched for
    *.jsonl (default: the log_dir setting, ./logs unless configured). Other files are
    skipped; corrupt lines are skipped and counted; a run without an end record (killed, or
    still running) is counted up to its last sample; a run logged twice is counted once.
    Energy is attributed to each command's process tree, before PUE; CO2e includes PUE.

    Exit status: 0, also when no logs are found (said on stderr); 125 for a bad option or a
    PATH that does not exist.
    """
    from pathlib import Path

    from carbonwrap.commands.report import ReportOptions
    from carbonwrap.commands.report import report as report_command

    options = ReportOptions(
        paths=[Path(p) for p in paths],
        group_by=group_by,
        since=since,
        until=until,
        tags=parse_tags(tags),
        output_format=output_format,
        as_json=as_json,
        as_csv=as_csv,
        html=html,
        model_card=model_card,
        to_mlflow=to_mlflow,
        mlflow_experiment=mlflow_experiment,
    )
    return report_command(options, os.environ, sys.stdout, sys.stderr)


@cli.command(
    "reprice",
    short_help="Fill in measured grid intensity for logged runs from the providers' history.",
    epilog="""\b
Exit status: 0 when every run found is repriced, already measured, or never repriced (each
said); 1 when some could not be (each said on stderr, with why); 125 for a bad option or a
PATH that does not exist.""",
)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--intensity-source",
    type=click.Choice(INTENSITY_SOURCES),
    metavar="SOURCE",
    help="[default: auto] Whose history to fetch: auto = the first source in carbonwrap's "
    "order that keeps history for each run's region; or a provider's name, as `run "
    "--intensity-source` takes it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what would be fetched and added to each log; fetch nothing, write nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema carbonwrap.reprice/1).")
def reprice(
    paths: tuple[str, ...], intensity_source: str | None, dry_run: bool, as_json: bool
) -> int:
    """Fill in measured grid intensity for logged runs, afterwards: for runs logged where
    there was no internet (compute nodes), or before a provider published its measured values.
    PATH... are log files or directories searched for *.jsonl, as for `carbonwrap report`
    (default: the log_dir setting, ./logs unless configured).

    For each finished run, the time its energy is not yet priced by measured values is fetched
    from the history of a provider for its region (within how far back that history reaches:
    Electricity Maps' free plan 24 hours) and appended to its log as intensity records of kind
    measured; nothing the log holds is rewritten. Then it says, per run, how much of its energy
    measured values now price, and its CO2e before and after. Running it again adds nothing
    already there. Runs without an end record (still going, or cut), with a fixed --intensity
    or WattTime's marginal signal are never repriced; runs without a history source keep the
    value they were priced at; each is said. Only a log's owner (or root) adds to it.
    """
    from pathlib import Path

    from carbonwrap.commands.reprice import RepriceOptions
    from carbonwrap.commands.reprice import reprice as reprice_command

    options = RepriceOptions(
        paths=[Path(p) for p in paths],
        dry_run=dry_run,
        as_json=as_json,
        intensity_source=intensity_source,
    )
    return reprice_command(options, os.environ, sys.stdout, sys.stderr)
