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
    # By runs of text between the characters that matter, not character by character.
    fields: list[str] = []
    field: list[str] = []  # the current field's parts
    at, end = 0, len(line)
    while at <= end:
        if at < end and line[at] == '"' and not field:  # a quote opens only at a field's start
            at += 1
            while True:  # inside the quotes: up to the closing one ("" is one quote)
                close = line.find('"', at)
                if close < 0:  # not closed by the line's end: the rest is the field
                    field.append(line[at:])
                    at = end
                    break
                field.append(line[at:close])
                if line.startswith('"', close + 1):
                    field.append('"')
                    at = close + 2
                else:
                    at = close + 1
                    break
            continue  # `field` holds a part now: a quote after this one is text
        comma = line.find(",", at)
        stop = end if comma < 0 else comma
        field.append(line[at:stop])  # after a closing quote, or unquoted: taken as it is
        fields.append("".join(field))
        field = []
        if comma < 0:
            break
        at = comma + 1
    return fields
