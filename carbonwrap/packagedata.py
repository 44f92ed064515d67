"""Read files shipped in carbonwrap/data without importing importlib.resources."""

from __future__ import annotations

import os

import carbonwrap


def read_data(name: str) -> bytes:
    """The bytes of carbonwrap/data/<name>.

    Goes through the package loader's `get_data`, as `pkgutil.get_data` does, so it also works from
    a zip; importing `importlib.resources` instead costs ~18 ms (it pulls in zipfile and tempfile),
    more than the tables themselves. Loaders without `get_data` fall back to importlib.resources.
    """
    spec = carbonwrap.__spec__
    get_data = getattr(spec.loader, "get_data", None) if spec is not None else None
    if get_data is not None and spec is not None and spec.origin is not None:
        data: bytes = get_data(os.path.join(os.path.dirname(spec.origin), "data", name))
        return data
    import importlib.resources

    return importlib.resources.files("carbonwrap").joinpath("data", name).read_bytes()
