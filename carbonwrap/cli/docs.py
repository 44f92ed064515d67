"""Shell completions and man pages, generated from the click group it is handed (never by
hand, and never by importing the CLI back: `cli/regenerate.py` and `carbonwrap completion` pass
the group in). `carbonwrap completion SHELL` prints the same completion script; the script asks
carbonwrap for the completions (`complete`), which after `run`'s options are the command's name
(the programs on PATH), then files, as for `sudo` or `time`."""

from __future__ import annotations

import datetime as dt
import os
import sys

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
)

from carbonwrap import __version__
from carbonwrap.choices import SHELLS

PROG = "carbonwrap"
COMPLETE_VAR = "_CARBONWRAP_COMPLETE"
# A fixed date, so regenerating changes nothing unless the CLI changed; bump with the version.
MAN_DATE = dt.date(2026, 11, 27).isoformat()

EXIT_STATUS = (
    ("0 … 123", "the command's own exit status"),
    ("124", "run --on-exceed stop stopped the command: it exceeded --budget"),
    ("125", "carbonwrap's own error: bad option or value, unwritable log directory"),
    ("126", "the command exists but cannot be executed"),
    ("127", "the command was not found"),
    ("128+N", "the command died of signal N"),
)
ENVIRONMENT = (
    ("CARBONWRAP_REGION, CARBONWRAP_LOCATION, CARBONWRAP_CLOUD", "where the machine is"),
    ("CARBONWRAP_ELECTRICITYMAPS_TOKEN", "Electricity Maps API token"),
    ("CARBONWRAP_WATTTIME_USERNAME, CARBONWRAP_WATTTIME_PASSWORD", "WattTime account"),
    ("CARBONWRAP_ENTSOE_TOKEN", "ENTSO-E Transparency Platform security token"),
    (
        "CARBONWRAP_FINGRID_KEY, CARBONWRAP_EIA_KEY, CARBONWRAP_OPENELECTRICITY_KEY",
        "Fingrid, US EIA and Open Electricity API keys",
    ),
    ("CARBONWRAP_<PROVIDER>_URL", "base URL of a provider (proxies, mirrors)"),
    ("CARBONWRAP_SYSFS_ROOT", "where sysfs is (default /sys), e.g. /host/sys in a container"),
    ("CARBONWRAP_PROC_ROOT", "where procfs is (default /proc)"),
    ("CARBONWRAP_RUN_ID", "set for the command: the run's id"),
    ("CARBONWRAP_PROGRESS", "set for the command: the socket carbonwrap.progress() reports to"),
    ("NO_COLOR", "no colour in the live view and the report"),
)


# Commands whose arguments, after their own options, are a command line of its own.
WRAPPING = ("run",)

# EXAMPLES in the man pages, by page: (command line, what it does). tests/unit/cli checks that
# each parses.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "carbonwrap": (
        (
            "carbonwrap run --region DK -- python train.py",
            "Measure a training run on the Danish grid: a live view while it runs, a report "
            "on stderr when it ends, a log in ./logs.",
        ),
        ("carbonwrap report", "Add up the runs logged in ./logs."),
        ("carbonwrap doctor", "See what carbonwrap can measure on this machine."),
    ),
    "run": (
        (
            "carbonwrap run -- python train.py --epochs 10",
            "Measure a command; everything after -- is the command's own.",
        ),
        (
            "carbonwrap run --region DK --tag exp=a -- python train.py",
            "On the Danish grid's intensity, with a tag that carbonwrap report --tag exp=a "
            "selects.",
        ),
        (
            "carbonwrap run --intensity 300 --pue 1.2 -q --json run.json -- make -j8",
            "A fixed 300 gCO2e/kWh and a PUE of 1.2, nothing on stderr, the report as JSON.",
        ),
        (
            "carbonwrap run --budget 500g --on-exceed stop -- python train.py",
            "Stop the command (exit status 124) once it has emitted, or surely will emit, "
            "more than 500 g CO2e.",
        ),
        (
            "carbonwrap run --region GB --start-within 8h --expected-duration 2h -- "
            "python train.py",
            "Wait up to 8 hours for the 2 hours with the lowest forecast intensity, then run.",
        ),
        (
            "carbonwrap run --progress-from-output -- python train.py > train.log",
            "Read tqdm bars and Epoch N/M lines in the output for progress and predictions.",
        ),
    ),
    "report": (
        ("carbonwrap report", "The runs in ./logs (or the log_dir setting), with totals."),
        (
            "carbonwrap report logs/ --group-by job",
            "One row per Slurm, torchrun, PBS or LSF job: its ranks add up.",
        ),
        (
            "carbonwrap report --since 2026-11-01 --tag exp=a --json",
            "The runs since 1 November tagged exp=a, as JSON.",
        ),
        (
            "carbonwrap report --html report.html",
            "One self-contained page: the table and charts of power and CO2e.",
        ),
        (
            "carbonwrap report --format codecarbon > emissions.csv",
            "CodeCarbon's emissions.csv columns, one row per run.",
        ),
    ),
    "reprice": (
        (
            "carbonwrap reprice --dry-run",
            "What would be fetched for the runs in ./logs, and added to their logs.",
        ),
        (
            "carbonwrap reprice logs/ --json",
            "Fetch measured history for those runs, add it to their logs, and say as JSON how "
            "much of each run's energy it now prices.",
        ),
    ),
    "intensity": (
        ("carbonwrap intensity --region DK", "The Danish grid's intensity now, and its source."),
        (
            "carbonwrap intensity --region GB --forecast --json",
            "Great Britain's intensity now and its forecast, as JSON.",
        ),
    ),
    "doctor": (
        ("carbonwrap doctor", "What can be measured here, and how to fix what cannot."),
        (
            "carbonwrap doctor --region DK --json",
            "The same as JSON, with the Danish grid's provider asked once.",
        ),
    ),
    "config": (
        ("carbonwrap config", "Every setting's value and where it comes from."),
        (
            "CARBONWRAP_PUE=1.2 carbonwrap config --json",
            "As JSON; the environment variable wins over the settings files.",
        ),
    ),
    "completion": (
        (
            "source <(carbonwrap completion bash)",
            "Completion in this bash (put the line in ~/.bashrc to keep it).",
        ),
        (
            "carbonwrap completion zsh > ~/.zfunc/_carbonwrap",
            "For zsh, with fpath+=~/.zfunc before compinit in ~/.zshrc.",
        ),
        (
            "carbonwrap completion fish > ~/.config/fish/completions/carbonwrap.fish",
            "For fish.",
        ),
    ),
}


class _CommandLine(ShellComplete):
    """Completes the command line `run` wraps; everything else as click does."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        items = wrapped_completions(self.cli, args, incomplete)
        return super().get_completions(args, incomplete) if items is None else items


class _Bash(_CommandLine, BashComplete):
    pass


class _Zsh(_CommandLine, ZshComplete):
    pass


class _Fish(_CommandLine, FishComplete):
    pass


_COMPLETERS: dict[str, type[ShellComplete]] = {"bash": _Bash, "zsh": _Zsh, "fish": _Fish}


def completion_script(cli: click.Command, shell: str) -> str:
    """The completion script for `shell`; completions are computed by carbonwrap itself."""
    cls = _COMPLETERS.get(shell)
    if cls is None:
        raise click.BadParameter(f"{shell!r}: use one of {', '.join(_COMPLETERS)}")
    return cls(cli, {}, PROG, COMPLETE_VAR).source()


def complete(cli: click.Command, instruction: str) -> int:
    """Answer the completion script (`_CARBONWRAP_COMPLETE=bash_complete` and the shell's
    words in the environment), as click's own `shell_complete` does; the exit status."""
    shell, _, action = instruction.partition("_")
    cls = _COMPLETERS.get(shell)
    if cls is None or action not in ("complete", "source"):
        return 1
    completer = cls(cli, {}, PROG, COMPLETE_VAR)
    sys.stdout.write(completer.complete() + "\n" if action == "complete" else completer.source())
    return 0


def wrapped_completions(
    cli: click.Command, args: list[str], incomplete: str
) -> list[CompletionItem] | None:
    """After `run` and its options (or after --): the command's name among the programs on
    PATH, then files; None where click completes (an option, its value, another command).
    `args`: the words before the one being completed, the program's name left out."""
    if not isinstance(cli, click.Group) or not args or args[0] not in WRAPPING:
        return None
    command = cli.commands[args[0]]
    start, waiting = _command_start(command, args[1:])
    if waiting:
        return None  # the value of an option: --region DK-…
    if start is None:
        return None if incomplete.startswith("-") else programs(incomplete)
    if start == len(args) - 1:  # the word being completed is the command's name
        return programs(incomplete)
    return [CompletionItem(incomplete, type="file")]


def _command_start(command: click.Command, words: list[str]) -> tuple[int | None, bool]:
    """Where the wrapped command line starts among `words` (None: not yet), and whether the
    last word is an option still waiting for its value. Parsed as click does with
    allow_interspersed_args off: the first word that is not an option, or the one after --."""
    takes_value = {
        name
        for param in command.params
        if isinstance(param, click.Option) and not (param.is_flag or param.count)
        for name in param.opts
    }
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            return index + 1, False
        if word == "-" or not word.startswith("-"):
            return index, False
        if word in takes_value:
            if index + 1 == len(words):
                return None, True
            index += 1
        index += 1
    return None, False


def programs(incomplete: str) -> list[CompletionItem]:
    """The programs on PATH whose names start with `incomplete`, as the run would find them
    (`run/child.find_command`); a path (a word with a slash) is completed as a file."""
    if "/" in incomplete:
        return [CompletionItem(incomplete, type="file")]
    names: set[str] = set()
    for directory in os.get_exec_path():
        try:
            entries = list(os.scandir(directory or "."))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(incomplete) and entry.name not in names:
                try:
                    if entry.is_file() and os.access(entry.path, os.X_OK):
                        names.add(entry.name)
                except OSError:
                    continue
    return [CompletionItem(name) for name in sorted(names)]


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, leading dots and quotes, hyphens in options."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # groff reads ASCII: other characters as their Unicode escapes (≈ is \[u2248]).
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    blocks = [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]
    return "\n.PP\n".join(_roff(block.replace("\b", "").strip()) for block in blocks)


def man_page(command: click.Command, path: list[str]) -> str:
    """A man(7) page for `carbonwrap` or one of its subcommands."""
    name = "-".join(path)
    ctx = click.Context(command, info_name=" ".join(path))
    synopsis = " ".join(command.collect_usage_pieces(ctx))
    summary = (command.short_help or command.help or "").strip().splitlines()[0]
    out = [
        f'.TH {name.upper()} 1 "{MAN_DATE}" "carbonwrap {__version__}" "User Commands"',
        ".SH NAME",
        f"{_roff(name)} \\- {_roff(summary.rstrip('.'))}",
        ".SH SYNOPSIS",
        f".B {_roff(' '.join(path))}",
        _roff(synopsis),
        ".SH DESCRIPTION",
        _paragraphs(command.help or summary),
    ]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    if options:
        out.append(".SH OPTIONS")
        for option in options:
            record = option.get_help_record(ctx)
            if record is None:
                continue
            flags, help_text = record
            out += [".TP", f".B {_roff(flags)}", _roff(" ".join(help_text.split()))]
    if isinstance(command, click.Group):
        out.append(".SH COMMANDS")
        for sub_name, sub in sorted(command.commands.items()):
            out += [".TP", f".B {_roff(sub_name)}", _roff(sub.get_short_help_str(80))]
            out.append(f"See \\fB{PROG}\\-{_roff(sub_name)}\\fR(1).")
    out.append(".SH EXIT STATUS")
    for code, meaning in EXIT_STATUS:
        out += [".TP", f".B {_roff(code)}", _roff(meaning)]
    out.append(".SH ENVIRONMENT")
    for variable, meaning in ENVIRONMENT:
        out += [".TP", f".B {_roff(variable)}", _roff(meaning)]
    if isinstance(command, click.Group):
        see = [f"\\fB{PROG}\\-{_roff(n)}\\fR(1)" for n in sorted(command.commands)]
    else:
        see = [f"\\fB{PROG}\\fR(1)"]
    examples = EXAMPLES.get(path[-1], ())
    if examples:
        out.append(".SH EXAMPLES")
        for line, meaning in examples:
            out += [".TP", f"\\fB{_roff(line)}\\fR", _roff(meaning)]
    out += [".SH SEE ALSO", ", ".join(see)]
    return "\n".join(out) + "\n"


def generated_files(cli: click.Group) -> dict[str, str]:
    """Relative path -> content of every generated file."""
    files = {f"completions/{PROG}.{shell}": completion_script(cli, shell) for shell in SHELLS}
    files[f"man/{PROG}.1"] = man_page(cli, [PROG])
    for sub_name, sub in sorted(cli.commands.items()):
        files[f"man/{PROG}-{sub_name}.1"] = man_page(sub, [PROG, sub_name])
    return files
