"""The CLI's entry: `run` read by cli/fastrun.py where it can, everything else by the click
group; every error a user can cause becomes one line on stderr and exit status 125
(`errors.ExitCode`); leave through os._exit once all is written."""

from __future__ import annotations

import atexit
import errno
import os
import sys

from carbonwrap.cli import fastrun
from carbonwrap.errors import CarbonwrapError, ExitCode, one_line
from carbonwrap.lite import suppress

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

    import click

_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C


def _one_line(error: click.ClickException) -> str:
    message = one_line(" ".join(error.format_message().split()), limit=1000)
    context = getattr(error, "ctx", None)
    hint = f" (see '{context.command_path} --help')" if context is not None else ""
    return f"carbonwrap: {message}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error a user can cause is one line on stderr and exit status 125."""
    try:
        status = _status(argv)
    finally:
        early = sys.modules.get("carbonwrap.measure.leafjoin")
        if early is not None:  # entry.py made a run's cgroup leaf that no run took up
            early.give_up_early()
    _leave(status)


def _status(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["run"] and "_CARBONWRAP_COMPLETE" not in os.environ:
        params = fastrun.parse(args[1:])  # None: click reads the line (help, errors)
        if params is not None:
            return _guarded(lambda: _run_fast(params))
    return _guarded(lambda: _click_status(args))


def _guarded(status: Callable[[], int]) -> int:
    """The errors of carbonwrap itself, however the line was read."""
    try:
        return status()
    except CarbonwrapError as exc:  # user text in it may hold a newline or an escape sequence
        sys.stderr.write(f"carbonwrap: {one_line(exc.message, limit=1000)}\n")
        return exc.code
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise  # a bug: the traceback shows
        sys.stderr.write(_too_many_files(exc) + "\n")
        return ExitCode.USAGE


def _run_fast(params: dict[str, object]) -> int:
    """`run` as click's `Command.main(standalone_mode=False)` would end it: Ctrl-C before the
    command runs is a blank line (closing the terminal's ^C) and 130, a reader of stdout or
    stderr that has gone is status 1."""
    try:
        return fastrun.run(params, os.environ, sys.stderr)
    except (EOFError, KeyboardInterrupt) as exc:
        with suppress(OSError, ValueError):
            sys.stderr.write("\n")
        return _INTERRUPTED if isinstance(exc, KeyboardInterrupt) else ExitCode.USAGE
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        return 1  # click exits 1 with its streams pacified; _leave's flush is as quiet


def _click_status(args: list[str]) -> int:
    import click

    from carbonwrap.cli.definition import cli

    if "_CARBONWRAP_COMPLETE" in os.environ:  # the shell asks for completions (cli/docs.py)
        from carbonwrap.cli.docs import complete

        return complete(cli, os.environ["_CARBONWRAP_COMPLETE"])
    try:
        result = cli.main(args=args, prog_name="carbonwrap", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return ExitCode.USAGE
    except click.NoSuchOption as exc:
        line = _credential_refused(exc.option_name) or _misplaced(exc, args) or _one_line(exc)
        sys.stderr.write(line + "\n")
        return ExitCode.USAGE
    except click.ClickException as exc:
        sys.stderr.write(_one_line(exc) + "\n")
        return ExitCode.USAGE
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            return _INTERRUPTED  # Ctrl-C before the command ran: what the command would give
        return ExitCode.USAGE
    return result if isinstance(result, int) else ExitCode.OK


def _too_many_files(exc: OSError) -> str:
    """The line for a limit on open files (`ulimit -n`) too low for carbonwrap to start or to
    measure. (Parts a run can do without, the progress channel, the relay and the intensity
    poller, go with a note instead: `run/phases.py`.)"""
    import resource  # only on this way out

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (
        f"carbonwrap: cannot open the files a run needs: {exc.strerror} (ulimit -n is {soft}; "
        "a run needs a dozen or so, more with GPUs); raise the limit"
    )


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


def _misplaced(exc: click.NoSuchOption, argv: list[str]) -> str | None:
    """The line for a command's option given before the command's name (`carbonwrap --region
    DK run …`): whose option it is, and where it goes. None for other unknown options."""
    import click

    from carbonwrap.cli.definition import cli

    if exc.ctx is None or exc.ctx.command is not cli:
        return None
    option = exc.option_name
    owners = {
        name: param
        for name, command in cli.commands.items()
        for param in command.params
        if isinstance(param, click.Option) and option in (*param.opts, *param.secondary_opts)
    }
    if not owners:
        return None
    named = next((word for word in argv if word in cli.commands), None)  # the user's command
    name = named if named in owners else next(iter(owners))
    param = owners[name]
    words = [name, option]
    if not (param.is_flag or param.count):
        words.append(_value_given(option, argv) or param.metavar or "VALUE")
    import shlex  # only on this way out

    example = f"carbonwrap {shlex.join(words)}{' -- …' if name == 'run' else ''}"
    whose = [f"`{n}`" for n in ([name] if name == named else owners)]
    listed = whose[0] if len(whose) == 1 else f"{', '.join(whose[:-1])} and {whose[-1]}"
    line = f"{option} is an option of {listed} and goes after the command's name: {example}"
    return f"carbonwrap: {one_line(line, limit=1000)}"


def _value_given(option: str, argv: list[str]) -> str | None:
    """The value the user gave the misplaced option: `--region DK` or `--region=DK`."""
    from carbonwrap.cli.definition import cli

    for index, word in enumerate(argv):
        if word.startswith(option + "="):
            return word[len(option) + 1 :]
        if word == option and index + 1 < len(argv) and argv[index + 1] not in cli.commands:
            return argv[index + 1]
    return None


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
        if stream is None:  # closed at start and main() called without entry.py
            continue
        with suppress(OSError, ValueError):  # a reader that has gone away
            stream.flush()
    os._exit(status)
