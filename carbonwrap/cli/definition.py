"""Command-line interface: declares the options and calls one function per command."""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from carbonwrap import __version__
from carbonwrap.entry import resume_gc
from carbonwrap.errors import CarbonwrapError, ExitCode, one_line
from carbonwrap.settings.catalog import ON_EXCEED
from carbonwrap.settings.resolve import (
    CPU_ACCOUNTING,
    INTENSITY_SOURCES,
    Config,
    check_run_settings,
    load_config,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing more at start-up
if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

_EXIT_CODES = """\b
Exit status: the command's own; 128+N if it died of signal N; 127 command not found;
126 command not executable; 125 carbonwrap's own error (bad option or value, unwritable log);
124 --on-exceed stop stopped the command (its own status is in the log and --json);
128+N if signal N (Ctrl-C: 130, SIGTERM: 143) ended a --start-within wait: the command did
not run."""


class _Finite(click.FloatRange):
    """click.FloatRange lets "nan" through (every comparison with NaN is false) and "inf" past
    a range without a maximum; neither is a setting (nor valid in the JSON log)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--tag")
        tags[key.strip()] = text
    return tags


def _duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--start-within / --expected-duration in seconds, --budget: parsed by their settings,
    only when given (start-up)."""
    if value is None or param.name is None:
        return None
    from carbonwrap.settings.catalog import BY_KEY

    try:
        return BY_KEY[param.name].parse(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} {exc}") from None


def _complete_region(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """--region values for shell completion: table codes, Electricity Maps zones, a postcode."""
    from click.shell_completion import CompletionItem

    from carbonwrap.intensity.location import em_zones
    from carbonwrap.intensity.table import load_table

    values = dict.fromkeys([*load_table().codes(), *em_zones(), "gb-postcode:"])
    prefix = incomplete.upper()
    return [CompletionItem(v) for v in values if v.upper().startswith(prefix)]


_WHERE_OPTIONS = (
    click.option(
        "--region",
        metavar="CODE",
        shell_complete=_complete_region,
        help="Grid region: ISO country (DK), US state (US-CA), Electricity Maps zone (DK-DK1, "
        "US-CAL-CISO) or gb-postcode:RG10. Default: $CARBONWRAP_REGION, else a settings file "
        "(see carbonwrap config), else the system time zone's country, else the world average.",
    ),
    click.option(
        "--location",
        metavar="LAT,LON",
        help="Where the machine is, in degrees (for providers that locate by coordinates).",
    ),
    click.option(
        "--cloud",
        metavar="PROVIDER:REGION",
        help="A cloud region, e.g. aws:eu-west-1, gcp:europe-west1, azure:westeurope.",
    ),
    click.option(
        "--intensity-source",
        type=click.Choice(INTENSITY_SOURCES),
        help="[default: auto] Live grid intensity: auto = the best configured provider for "
        "the region, else the embedded yearly table. Tokens come from the environment "
        "(CARBONWRAP_ELECTRICITYMAPS_TOKEN, CARBONWRAP_WATTTIME_USERNAME/_PASSWORD) or "
        "~/.config/carbonwrap/config.toml.",
    ),
)


def _intensity_source(flag: str | None) -> tuple[Config, str]:
    """The settings files, and --intensity-source, else $CARBONWRAP_INTENSITY_SOURCE, else
    the files, else auto (the files are read once and handed on)."""
    config = load_config(os.environ)
    resolved = config.resolve({"intensity_source": flag}, os.environ)
    return config, str(resolved["intensity_source"].value)


def _where_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--region, --location, --cloud, --intensity-source: the same for `run` and `intensity`."""
    for option in reversed(_WHERE_OPTIONS):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="carbonwrap")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Measure the energy and carbon footprint of a command's own process tree."""
    if ctx.invoked_subcommand != "run":  # `run` resumes it once its command is running
        resume_gc()


@cli.command(
    context_settings={"allow_interspersed_args": False},
    epilog=_EXIT_CODES,
)
@click.option(
    "--interval",
    type=_Finite(min=0.05, max=3600),
    metavar="SECONDS",
    help="[default: 1] Time between sensor readings.",
)
@click.option(
    "--log-interval",
    type=_Finite(min=0.05),
    metavar="SECONDS",
    help="[default: 10] At most one sample record per this time in the log.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False),
    help="[default: logs] Directory for the run's JSON-lines log.",
)
@_where_options
@click.option(
    "--intensity",
    type=_Finite(min=0, max=5000),
    metavar="G_PER_KWH",
    help="Fix the grid carbon intensity (gCO2e/kWh) instead of looking it up.",
)
@click.option(
    "--pue",
    type=_Finite(min=1.0, max=5.0),
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
    callback=_duration_option,
    help="Carbon-aware start: wait up to DURATION (8h, 90m, 1h30m, 2d) for the start whose "
    "--expected-duration window has the lowest forecast grid intensity (GB, DK, Electricity "
    "Maps), say when and the expected saving, then run. Without a forecast: start now and "
    "say why. 0 = no wait.",
)
@click.option(
    "--expected-duration",
    metavar="DURATION",
    callback=_duration_option,
    help="How long COMMAND is expected to run: the window --start-within compares (needed "
    "with it).",
)
@click.option(
    "--budget",
    metavar="AMOUNT",
    callback=_duration_option,
    help="A limit for the run: CO2e (500g, 2kg, 1t; with PUE, as reported) or attributed "
    "energy (5kWh, 3MJ, 800Wh; before PUE, as reported). Checked against the actual total at "
    "every log sample and against predictions from the command's progress reports; see "
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
    type=_Finite(min=0, max=3600),
    metavar="SECONDS",
    help="[default: 10] Time from SIGTERM to SIGKILL when --on-exceed stop stops the command.",
)
@click.option(
    "--progress-from-output",
    is_flag=True,
    help="Also read progress from the command's output: tqdm bars and 'Epoch N/M' lines. "
    "Only where stdout or stderr is a pipe or a file (batch jobs, Slurm): it then passes "
    "through carbonwrap, byte for byte. A terminal is never relayed (the command would see "
    "a pipe); reports to CARBONWRAP_PROGRESS always count.",
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
    no_argv: bool,
    cpu_accounting: str | None,
    prometheus_textfile: str | None,
    start_within: float | None,
    expected_duration: float | None,
    budget: str | None,
    on_exceed: str | None,
    budget_grace: float | None,
    progress_from_output: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND and report the energy and CO2e of its process tree.

    Everything after the command name (or after --) goes to the command unchanged. Options
    other than --json and --progress-from-output also come from CARBONWRAP_<NAME> variables
    and settings files (flag > environment > project file > user file > default; see
    `carbonwrap config`).
    """
    from carbonwrap.measure.accounting import new_run_id, open_accounting

    flags = {
        "interval": interval,
        "log_interval": log_interval,
        "log_dir": log_dir,
        "intensity_source": intensity_source,
        "intensity": intensity,
        "pue": pue,
        "tags": _parse_tags(tags),
        "quiet": quiet or None,
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
    config = load_config(os.environ)
    resolved = config.resolve(flags, os.environ)
    check_run_settings(resolved)
    setting = {key: value.value for key, value in resolved.items()}
    schedule = None
    if setting["start_within"]:  # the wait comes before the run exists: no leaf, no log yet
        from carbonwrap.run.schedule import Interrupted, start_when_greenest

        try:
            where = (region, location, cloud)
            schedule = start_when_greenest(
                resolved, command, where, json_path, config, os.environ, sys.stderr
            )
        except Interrupted as stop:
            sys.stderr.write(f"carbonwrap: {stop}\n")
            return stop.status
    run_id = new_run_id()
    # The cgroup leaf first: the kernel's wait to move carbonwrap in overlaps loading the rest.
    accounting = open_accounting(setting["cpu_accounting"], run_id)
    from carbonwrap.run.phases import RunOptions
    from carbonwrap.run.phases import run as run_command

    options = RunOptions(
        command=command,
        interval_s=setting["interval"],
        log_interval_s=setting["log_interval"],
        log_dir=setting["log_dir"],
        region=region,
        location=location,
        cloud=cloud,
        intensity_source=setting["intensity_source"],
        intensity_g_per_kwh=setting["intensity"],
        pue=setting["pue"],
        tags=setting["tags"],
        json_path=json_path,
        quiet=setting["quiet"],
        no_live=not setting["live"],
        log_argv=setting["log_argv"],
        log_mode=int(setting["log_mode"], 8),
        cpu_accounting=setting["cpu_accounting"],
        run_id=run_id,
        prometheus_textfile=setting["prometheus_textfile"],
        config=config,
        schedule=schedule,
        budget=setting["budget"],
        on_exceed=setting["on_exceed"],
        budget_grace_s=setting["budget_grace"],
        progress_from_output=progress_from_output,
    )
    return run_command(options, os.environ, sys.stderr, accounting)


@cli.command("intensity")
@_where_options
@click.option("--forecast", is_flag=True, help="Also fetch the forecast (where offered).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def intensity(
    region: str | None,
    location: str | None,
    cloud: str | None,
    intensity_source: str | None,
    forecast: bool,
    as_json: bool,
) -> int:
    """Print the grid's carbon intensity now (and its forecast), with source and time."""
    from carbonwrap.commands.intensity import show

    config, source = _intensity_source(intensity_source)
    return show(region, location, cloud, source, forecast, as_json, os.environ, sys.stdout, config)


@cli.command(
    "doctor",
    epilog="""\b
Exit status: 0 when carbonwrap can measure here: /proc/stat and /proc/meminfo are readable and
the command's CPU time can be counted (a cgroup leaf, else process polling), so energy comes from
RAPL or the estimate; warnings (an estimate, polling, an unreachable provider) do not change it.
1 when it cannot; 125 for a bad option or value.""",
)
@_where_options
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
    from carbonwrap.commands.doctor import doctor as run_doctor

    config, source = _intensity_source(intensity_source)
    return run_doctor(
        region, location, cloud, source, as_json, os.environ, sys.stdout, config=config
    )


@cli.command("config")
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
    from carbonwrap.settings.resolve import describe

    document = describe(os.environ)
    if as_json:
        import json

        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        from carbonwrap.render.config import config_text

        sys.stdout.write(config_text(document))
    return 0


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the completion script for SHELL, e.g. `source <(carbonwrap completion bash)`.

    The same scripts are in completions/ of the source tree.
    """
    from carbonwrap.cli.docs import completion_script

    sys.stdout.write(completion_script(shell))
    return 0


_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def _one_line(error: click.ClickException) -> str:
    message = one_line(" ".join(error.format_message().split()), limit=1000)
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    return f"carbonwrap: {message}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error a user can cause is one line on stderr and exit status 125."""
    _leave(_status(argv))


def _status(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="carbonwrap", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return ExitCode.USAGE
    except click.NoSuchOption as exc:
        sys.stderr.write((_credential_refused(exc.option_name) or _one_line(exc)) + "\n")
        return ExitCode.USAGE
    except click.ClickException as exc:
        sys.stderr.write(_one_line(exc) + "\n")
        return ExitCode.USAGE
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return _INTERRUPTED  # Ctrl-C before the command ran: what the command would give
        return ExitCode.USAGE
    except CarbonwrapError as exc:  # user text in it may hold a newline or an escape sequence
        sys.stderr.write(f"carbonwrap: {one_line(exc.message, limit=1000)}\n")
        return exc.code
    return result if isinstance(result, int) else ExitCode.OK


def _credential_refused(option: str) -> str | None:
    """The refusal for `--token X` and the like given to carbonwrap: credentials on a command
    line show in `ps` to every user and stay in the shell's history. None for other options."""
    from carbonwrap.run.redact import looks_secret

    if not looks_secret(option):
        return None
    return (
        f"carbonwrap: {one_line(option)}: credentials are not taken on the command line (others "
        "see it in ps, the shell keeps it); set CARBONWRAP_ELECTRICITYMAPS_TOKEN or "
        "CARBONWRAP_WATTTIME_USERNAME/_PASSWORD, or put them in the user config file "
        "(see 'carbonwrap config')"
    )


def _leave(status: int) -> NoReturn:
    """Exit without tearing the interpreter down module by module.

    Everything carbonwrap writes is on disk or flushed by then (the log is written line by
    line with os.write, output files are closed), so the teardown only frees memory the kernel
    frees anyway; skipping it takes ~25 ms off every `carbonwrap run` on the development VM
    (bench/startup.py). atexit handlers still run (terminal restore, multiprocessing); a bug's
    traceback takes the normal path, since it never gets here.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that has gone away
            stream.flush()
    os._exit(status)


@cli.command("report")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--group-by",
    metavar="KEY",
    help="One row per command, host, day (UTC), job (Slurm, torchrun, PBS, LSF: the ranks "
    "of one job add up) or tag:KEY, instead of one per run.",
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
    type=click.Choice(["table", "json", "csv", "codecarbon"]),
    help="table (default: runs, or groups with --group-by, and totals); json (schema "
    "carbonwrap.report/1, runs, groups and totals; one line unless stdout is a terminal); csv "
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

    if not paths:  # the runs' log directory: $CARBONWRAP_LOG_DIR, the settings files, ./logs
        paths = (load_config(os.environ).resolve({}, os.environ)["log_dir"].value,)
    options = ReportOptions(
        paths=[Path(p) for p in paths],
        group_by=group_by,
        since=since,
        until=until,
        tags=_parse_tags(tags),
        output_format=output_format,
        as_json=as_json,
        as_csv=as_csv,
        html=html,
    )
    return report_command(options, os.environ, sys.stdout, sys.stderr)
