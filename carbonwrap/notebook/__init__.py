"""IPython and Jupyter: `%load_ext carbonwrap` gives `%%carbonwrap` (a cell) and `%carbonwrap
start|stop|status` (the rest of the notebook), each block a run of its own (`run/track.py`)."""

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Called by `%load_ext carbonwrap` (through `carbonwrap.load_ipython_extension`)."""
    from carbonwrap.notebook.magics import CarbonwrapMagics

    ipython.register_magics(CarbonwrapMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext carbonwrap`: a block still measuring is ended (its end record written)."""
    magics = ipython.magics_manager.registry.get("CarbonwrapMagics")
    if magics is not None:
        magics.stop_running()
