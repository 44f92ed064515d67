"""The `carbonwrap` command's entry point (console script and `python -m carbonwrap`): start-up
without the cyclic garbage collector (`gcpause.py`), then the CLI."""

from carbonwrap import gcpause


def main() -> None:
    gcpause.pause()
    try:
        from carbonwrap.cli.main import main as cli_main

        cli_main()
    except KeyboardInterrupt:  # Ctrl-C while still importing: no command yet, no traceback
        raise SystemExit(130) from None  # 128 + SIGINT, what the command would have given
