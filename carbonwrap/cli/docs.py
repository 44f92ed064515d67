"""Shell completions and man pages, generated from the click group it is handed (never by
hand, and never by importing the CLI back: `cli/regenerate.py` and `carbonwrap completion` pass
the group in). `carbonwrap completion SHELL` prints the same completion script."""

from __future__ import annotations

import datetime as dt

import click

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
    ("CARBONWRAP_<PROVIDER>_URL", "base URL of a provider (proxies, mirrors)"),
    ("CARBONWRAP_SYSFS_ROOT", "where sysfs is (default /sys), e.g. /host/sys in a container"),
    ("CARBONWRAP_RUN_ID", "set for the command: the run's id"),
    ("CARBONWRAP_PROGRESS", "set for the command: the socket carbonwrap.progress() reports to"),
    ("NO_COLOR", "no colour in the live view and the report"),
)


def completion_script(cli: click.Command, shell: str) -> str:
    """The completion script for `shell`; completions are computed by carbonwrap itself."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"{shell!r}: use one of {', '.join(SHELLS)}")
    return cls(cli, {}, PROG, COMPLETE_VAR).source()


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
    out += [".SH SEE ALSO", ", ".join(see)]
    return "\n".join(out) + "\n"


def generated_files(cli: click.Group) -> dict[str, str]:
    """Relative path -> content of every generated file."""
    files = {f"completions/{PROG}.{shell}": completion_script(cli, shell) for shell in SHELLS}
    files[f"man/{PROG}.1"] = man_page(cli, [PROG])
    for sub_name, sub in sorted(cli.commands.items()):
        files[f"man/{PROG}-{sub_name}.1"] = man_page(sub, [PROG, sub_name])
    return files
