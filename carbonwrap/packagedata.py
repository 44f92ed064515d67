"""Read files shipped in carbonwrap/data without importing importlib.resources, and their CSV
rows without importing csv."""

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


def csv_rows(text: str) -> list[list[str]]:
    """The rows of a CSV text as `csv.reader(text.splitlines())` reads them with the default
    dialect, for the files carbonwrap ships (one record per line; a field quoted where it holds
    a comma or a quote, "" for a quote inside): every field a string. The intensity and CPU
    tables are read at every run's start-up, and the csv module costs more than reading them
    (tests/unit/test_packagedata.py holds this to csv.reader on every shipped file)."""
    return [_csv_line(line) for line in text.splitlines()]


def _csv_line(line: str) -> list[str]:
    if '"' not in line:
        return line.split(",") if line else []
    fields: list[str] = []
    field: list[str] = []
    quoted = False  # inside a quoted part
    at = 0
    while at < len(line):
        ch = line[at]
        if quoted:
            if ch != '"':
                field.append(ch)
            elif line.startswith('"', at + 1):  # "" inside quotes: one quote
                field.append('"')
                at += 1
            else:
                quoted = False
        elif ch == ",":
            fields.append("".join(field))
            field = []
        elif ch == '"' and not field:  # a quote opens only at a field's start
            quoted = True
        else:
            field.append(ch)
        at += 1
    fields.append("".join(field))
    return fields
