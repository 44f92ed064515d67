"""carbonwrap: energy and carbon footprint of a command's own process tree."""

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: this import stays light
if TYPE_CHECKING:
    from carbonwrap.report_progress import progress as progress


def __getattr__(name: str) -> object:
    """`carbonwrap.progress(done, total, unit)`: carbonwrap/report_progress.py, loaded on use."""
    if name == "progress":
        from carbonwrap.report_progress import progress

        globals()["progress"] = progress  # from now on a plain attribute: no call costs more
        return progress
    raise AttributeError(f"module 'carbonwrap' has no attribute {name!r}")
