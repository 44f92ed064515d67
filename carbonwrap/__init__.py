"""carbonwrap: energy and carbon footprint of a command's own process tree."""

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this import stays light
if TYPE_CHECKING:
    from typing import Any

    from carbonwrap.report_progress import progress as progress

# Public names and the module each is loaded from on first use: `import carbonwrap` loads
# nothing else (a training script, a notebook's `%load_ext carbonwrap` before any IPython).
_LAZY = {
    "progress": "carbonwrap.report_progress",  # carbonwrap.progress(done, total, unit)
    "totals": "carbonwrap.report_progress",  # carbonwrap.totals(): the run's totals so far
    "track": "carbonwrap.run.track",  # with carbonwrap.track(tags=...) as t: ...
    "load_ipython_extension": "carbonwrap.notebook",  # %load_ext carbonwrap
    "unload_ipython_extension": "carbonwrap.notebook",  # %unload_ext carbonwrap
}


def __getattr__(name: str) -> "Any":
    """A public name of `_LAZY`, imported when first asked for (by name: a leaf names no
    stage above it, tests/test_layers.py): `track` is run/track.py's, `load_ipython_extension`
    notebook/'s."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonwrap' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # from now on a plain attribute: no call costs more
    return value
