"""The `carbonwrap` command's entry point (console script and `python -m carbonwrap`): closed
standard descriptors held open for carbonwrap alone (`hold_closed_stdio`), start-up without the
cyclic garbage collector (`gcpause.py`), then the CLI."""

from __future__ import annotations

import os
import sys

from carbonwrap import gcpause

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping

_STREAMS = ("stdin", "stdout", "stderr")


def main() -> None:
    hold_closed_stdio()
    gcpause.pause()
    try:
        if opens_a_run(sys.argv[1:], os.environ):
            from carbonwrap.measure.leafjoin import open_early

            open_early()  # the cgroup leaf's join overlaps the rest of start-up
        from carbonwrap.cli.main import main as cli_main

        cli_main()
    except KeyboardInterrupt:  # Ctrl-C while still importing: no command yet, no traceback
        early = sys.modules.get("carbonwrap.measure.leafjoin")
        if early is not None:  # the run's cgroup leaf, made first thing: not left behind
            early.give_up_early()
        raise SystemExit(130) from None  # 128 + SIGINT, what the command would have given


def opens_a_run(args: list[str], environ: Mapping[str, str]) -> bool:
    """`carbonwrap run …` whose CPU accounting is auto unless its settings say otherwise: no
    --cpu-accounting, --start-within or help among its options (a value that only looks like
    one, or the command's own words without `--`, just makes this say no: the run command
    then opens the accounting itself, as it always can)."""
    if args[:1] != ["run"] or "_CARBONWRAP_COMPLETE" in environ:
        return False
    options = args[1 : args.index("--")] if "--" in args else args[1:]
    refused = ("--cpu-accounting", "--start-within", "--help", "-h")
    return not any(word.startswith(refused) for word in options)


def hold_closed_stdio() -> None:
    """Put /dev/null on each of fds 0, 1 and 2 that carbonwrap was started without (a daemon,
    `cmd 2>&-`), close-on-exec.

    The kernel gives the lowest free number to the next file opened, so a closed fd 1 would make
    carbonwrap's log, socket or pipe the process's stdout: the relay would copy the command's
    output into it, and anything written to fd 2 (a library's message, Python's last words)
    would land in the log. /dev/null holds the number instead, and carbonwrap's own writes to
    it go nowhere (sys.stdout and friends, None when Python found the fd closed, write there).
    The command still starts with the fd closed, as a shell runs `cmd 2>&-`: close-on-exec
    closes the placeholder in the exec, so the command sees exactly the descriptors it would
    see without carbonwrap (an fd 0-2 that is close-on-exec is one the command does not get).
    """
    for fd, name in enumerate(_STREAMS):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            held = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # no /dev/null (a bare chroot): left as it was
            return
        if held != fd:  # cannot happen while the lower fds are open; never leave one astray
            os.dup2(held, fd, inheritable=False)
            os.close(held)
        if getattr(sys, name) is None:
            mode = "r" if fd == 0 else "w"
            stream = open(fd, mode, errors="backslashreplace", closefd=False)  # noqa: SIM115
            setattr(sys, name, stream)  # for the life of the process
