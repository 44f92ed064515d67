"""The `carbonwrap` command's entry point (console script and `python -m carbonwrap`).

Start-up runs without the cyclic garbage collector: importing click and carbonwrap allocates
tens of thousands of objects and no garbage cycles, and the collections that allocation would
trigger cost ~11 ms of CPU per start on the development VM (bench/startup.py). Commands turn it
back on (`resume_gc`): `run` once the command is running, the others at once.
"""

import gc


def main() -> None:
    gc.disable()
    try:
        from carbonwrap.cli.definition import main as cli_main

        cli_main()
    except KeyboardInterrupt:  # Ctrl-C while still importing: no command yet, no traceback
        raise SystemExit(130) from None  # 128 + SIGINT, what the command would have given


def resume_gc() -> None:
    """Collect garbage again from here on, leaving start-up's objects (modules, classes, the
    CLI's definitions, alive for the whole process) out of every later collection."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
