"""Run a command under carbonwrap's live view with a made-up state, as run.py will wire it.

  live_driver.py [--refresh S] [--crash] [--pidfile PATH] -- CMD...

The child is started with carbonwrap's own Child (our process group, SIGINT/SIGQUIT ignored
here), so Ctrl-C and Ctrl-Z behave as under `carbonwrap run`. --crash raises after the child
ends without stopping the view: atexit must restore the terminal. --pidfile: where to write
"DRIVER_PID CHILD_PID" once the child runs, for tests that signal them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from carbonwrap.live.view import LiveView
from carbonwrap.render.live import LiveState
from carbonwrap.run.child import Child


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--pidfile")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    t0 = time.monotonic()

    def state() -> LiveState:
        elapsed_s = time.monotonic() - t0
        return LiveState(
            elapsed_s=elapsed_s,
            cpu_s=elapsed_s / 2,
            components=[
                ("CPU", 12.5, 12.5 * elapsed_s, "rapl"),
                ("DRAM", 2.0, 2.0 * elapsed_s, "estimate"),
                ("GPU 0", 250.0, 250.0 * elapsed_s, "counter"),
            ],
            intensity_g_per_kwh=231.0,
            intensity_source="test source",
            co2e_g=0.07 * elapsed_s,
            prediction=None,
        )

    if not LiveView.wanted(sys.stderr, os.environ, quiet=False, no_live=False):
        print("driver: no live view", file=sys.stderr)
        view = None
    else:
        view = LiveView(sys.stderr, state, os.environ, refresh_s=args.refresh)
        view.start()
    child = Child(args.command, dict(os.environ))
    if args.pidfile:
        Path(args.pidfile).write_text(f"{os.getpid()} {child.pid}\n")
    ending = child.wait()
    if args.crash:
        raise RuntimeError("driver: crash on purpose")
    if view is not None:
        view.stop()
    child.restore_signals()
    print(f"driver: exit {ending.exit_code} {ending.signal_name}", file=sys.stderr)
    return ending.exit_code


if __name__ == "__main__":
    sys.exit(main())
