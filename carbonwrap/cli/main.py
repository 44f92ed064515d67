"""The CLI's entry: run the click group; every error a user can cause becomes one line on
stderr and exit status 125 (`errors.ExitCode`); leave through os._exit once all is written."""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import sys
from typing import NoReturn

import click

from carbonwrap.cli.definition import cli
from carbonwrap.errors import CarbonwrapError, ExitCode, one_line

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
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise  # a bug: the traceback shows
        sys.stderr.write(_too_many_files(exc) + "\n")
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
        with contextlib.suppress(OSError, ValueError):  # a reader that has gone away
            stream.flush()
    os._exit(status)
