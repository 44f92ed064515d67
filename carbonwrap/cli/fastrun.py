"""`carbonwrap run`'s command line read without importing click (~15 ms of every run's start):
each option read as click reads cli/definition.py, or None wherever click must read the line
itself (help, an option this table lacks, a value click would refuse, no command) and say what
is wrong. click stays the definition: tests/unit/cli/test_fastrun.py holds this table against
it, option by option, and checks that both give the same values."""

from __future__ import annotations

import os
import stat

from carbonwrap.choices import CPU_ACCOUNTING, INTENSITY_SOURCES, ON_EXCEED
from carbonwrap.lite import NamedTuple, isfinite

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO


class Spec(NamedTuple):
    """One option of `run` as cli/definition.py declares it to click."""

    name: str  # the callback's parameter
    opts: tuple[str, ...]
    takes: str  # flag | text | texts (repeatable) | number | choice | dir | file | setting
    low: float | None = None  # number: click.FloatRange's closed bounds (cli/options.Finite)
    high: float | None = None
    choices: tuple[str, ...] = ()


SPECS = (
    Spec("interval", ("--interval",), "number", 0.05, 3600),
    Spec("log_interval", ("--log-interval",), "number", 0.05),
    Spec("log_dir", ("--log-dir",), "dir"),
    Spec("region", ("--region",), "text"),
    Spec("location", ("--location",), "text"),
    Spec("cloud", ("--cloud",), "text"),
    Spec("intensity_source", ("--intensity-source",), "choice", choices=INTENSITY_SOURCES),
    Spec("intensity", ("--intensity",), "number", 0, 5000),
    Spec("pue", ("--pue",), "number", 1.0, 5.0),
    Spec("tags", ("--tag",), "texts"),
    Spec("json_path", ("--json",), "text"),
    Spec("quiet", ("-q", "--quiet"), "flag"),
    Spec("no_live", ("--no-live",), "flag"),
    Spec("verbose", ("-v", "--verbose"), "flag"),
    Spec("no_argv", ("--no-argv",), "flag"),
    Spec("cpu_accounting", ("--cpu-accounting",), "choice", choices=CPU_ACCOUNTING),
    Spec("prometheus_textfile", ("--prometheus-textfile",), "file"),
    Spec("start_within", ("--start-within",), "setting"),
    Spec("expected_duration", ("--expected-duration",), "setting"),
    Spec("budget", ("--budget",), "setting"),
    Spec("on_exceed", ("--on-exceed",), "choice", choices=ON_EXCEED),
    Spec("budget_grace", ("--budget-grace",), "number", 0, 3600),
    Spec("progress_from_output", ("--progress-from-output",), "flag"),
    Spec("mlflow", ("--mlflow",), "flag"),
    Spec("mlflow_run", ("--mlflow-run",), "text"),
    Spec("mlflow_experiment", ("--mlflow-experiment",), "text"),
)
COMMAND = "command"  # the argument: everything after the options (or after --)
_BY_OPT = {opt: spec for spec in SPECS for opt in spec.opts}
_SHORT = {opt[1]: spec for opt, spec in _BY_OPT.items() if len(opt) == 2}  # -q, -v: flags


class Defer(Exception):
    """click reads this line: it knows what this table does not, or says what is wrong."""


def parse(args: list[str]) -> dict[str, Any] | None:
    """The `run` callback's parameters from the words after `run`, as click would pass them
    (ctx.params); None where click must read them.

    click's parser (click/parser.py, `_OptionParser`): `--` ends the options; a word that
    starts with "-" and is longer is an option, the first other word starts the command
    (allow_interspersed_args is off); `--opt=value` splits at the first "="; a word that is
    no long option is a cluster of short ones (`-qv`); an option's value is the next word
    whatever it is (`--json --` is a path named "--"); a value option given twice keeps the
    last, a repeatable one every value in order."""
    try:
        given, command = _words(args)
        if not command:
            return None  # click: "Missing argument 'COMMAND...'"
        params: dict[str, Any] = {}
        for spec in SPECS:
            params[spec.name] = _value(spec, given.get(spec.name))
    except Defer:
        return None
    params[COMMAND] = tuple(command)
    return params


def _words(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    given: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if arg[:1] != "-" or len(arg) == 1:
            rest.insert(0, arg)
            break
        name, eq, explicit = arg.partition("=")
        spec = _BY_OPT.get(name)
        if spec is not None and len(name) > 2:  # a long option
            if spec.takes == "flag":
                if eq:
                    raise Defer  # click: "Option '--quiet' does not take a value."
                given[spec.name] = True
                continue
            if eq:
                rest.insert(0, explicit)
            if not rest:
                raise Defer  # click: "Option '--pue' requires an argument."
            _store(given, spec, rest.pop(0))
            continue
        if arg[:2] == "--":
            raise Defer  # no such option (or one added to the definition since)
        for letter in arg[1:]:  # short options: flags only (-h is click's help)
            short = _SHORT.get(letter)
            if short is None or short.takes != "flag":
                raise Defer
            given[short.name] = True
    return given, rest


def _store(given: dict[str, Any], spec: Spec, value: str) -> None:
    if spec.takes == "texts":
        given.setdefault(spec.name, []).append(value)
    else:
        given[spec.name] = value


def _value(spec: Spec, raw: Any) -> Any:
    """The value click's type and callback make of what was given (None, False or () if
    nothing was); Defer wherever click would refuse it."""
    takes = spec.takes
    if takes == "flag":
        return bool(raw)
    if takes == "texts":
        values = tuple(raw or ())
        if tag_table(values) is None:
            raise Defer  # click: "'x' is not KEY=VALUE"
        return values
    if raw is None:
        return None
    if takes == "text":
        return raw
    if takes == "number":
        return _number(spec, raw)
    if takes == "choice":
        if raw not in spec.choices:
            raise Defer
        return raw
    if takes in ("dir", "file"):
        return _path(raw, file_okay=takes == "file", dir_okay=takes == "dir")
    if takes == "setting":  # cli/options.parsed_by_setting
        from carbonwrap.settings.catalog import BY_KEY

        try:
            return BY_KEY[spec.name].parse(raw)
        except ValueError:
            raise Defer from None
    raise Defer  # a kind this module does not read


def _number(spec: Spec, raw: str) -> float:
    """cli/options.Finite: a float in [low, high], never NaN or infinite."""
    try:
        number = float(raw)
    except ValueError:
        raise Defer from None
    if not isfinite(number):
        raise Defer
    if (spec.low is not None and number < spec.low) or (
        spec.high is not None and number > spec.high
    ):
        raise Defer
    return number


def _path(raw: str, file_okay: bool, dir_okay: bool) -> str:
    """click.Path(exists=False, readable=True): what is not there passes; what is there must
    be of the right kind and readable."""
    try:
        mode = os.stat(raw).st_mode
    except OSError:
        return raw
    if (not file_okay and stat.S_ISREG(mode)) or (not dir_okay and stat.S_ISDIR(mode)):
        raise Defer
    if not os.access(raw, os.R_OK):
        raise Defer
    return raw


def tag_table(values: tuple[str, ...]) -> dict[str, str] | None:
    """KEY=VALUE words as cli/options.parse_tags reads them; None if one is not."""
    tags: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            return None
        tags[key.strip()] = text
    return tags


def run(params: Mapping[str, Any], environ: Mapping[str, str], stderr: TextIO) -> int:
    """What cli/definition.py's `run` callback does with its parameters: the flags settings
    also give (None: not given), then `commands.run`."""
    from carbonwrap.commands.run import run as run_command

    flags = {
        "interval": params["interval"],
        "log_interval": params["log_interval"],
        "log_dir": params["log_dir"],
        "intensity_source": params["intensity_source"],
        "intensity": params["intensity"],
        "pue": params["pue"],
        "tags": tag_table(params["tags"]),
        "quiet": params["quiet"] or None,
        "verbose": params["verbose"] or None,
        "live": False if params["no_live"] else None,
        "log_argv": False if params["no_argv"] else None,
        "cpu_accounting": params["cpu_accounting"],
        "prometheus_textfile": params["prometheus_textfile"],
        "start_within": params["start_within"],
        "expected_duration": params["expected_duration"],
        "budget": params["budget"],
        "on_exceed": params["on_exceed"],
        "budget_grace": params["budget_grace"],
    }
    where = (params["region"], params["location"], params["cloud"])
    run_id, experiment = params["mlflow_run"], params["mlflow_experiment"]
    wanted = params["mlflow"] or run_id is not None or experiment is not None
    return run_command(
        flags,
        params[COMMAND],
        where,
        params["json_path"],
        params["progress_from_output"],
        environ,
        stderr,
        {"run_id": run_id, "experiment": experiment} if wanted else None,
    )
