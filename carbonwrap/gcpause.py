"""Start-up without the cyclic garbage collector, and the collector back once it is over.

Importing click and carbonwrap allocates tens of thousands of objects and no garbage cycles, and
the collections that allocation would trigger cost ~11 ms of CPU per start on the development VM
(bench/startup.py). `entry.main` pauses it first; commands resume it: `run` once the command is
running, the others at once.
"""

import gc


def pause() -> None:
    gc.disable()


def resume() -> None:
    """Collect garbage again from here on, leaving start-up's objects (modules, classes, the
    CLI's definitions, alive for the whole process) out of every later collection."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
