"""Settings files: find them, parse them (tomllib, imported only when a file exists), check
every key and value, and keep the line of each for errors that name file, key and line.

A settings file is input: a FIFO at its name would block `open` or `read` forever, a device
(a link to /dev/zero) never ends, a huge file would be held whole. Only a regular file of at
most MAX_FILE_BYTES is read; anything else is one line and exit 125. A symlinked settings file
is normal (dotfiles kept in a repository): links are followed and the file they end at checked.
"""

from __future__ import annotations

import os
import stat
import sys

from carbonwrap.errors import CarbonwrapError, one_line
from carbonwrap.lite import NamedTuple
from carbonwrap.settings.catalog import BY_KEY, PATHS, TABLES, WHERE

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

PROJECT_FILE = "carbonwrap.toml"
PYPROJECT = "pyproject.toml"
MAX_FILE_BYTES = 1 << 20  # settings are a few lines; a pyproject.toml is tens of KiB
_READ_BLOCK = 1 << 16


class ConfigFile(NamedTuple):
    """One file's settings: key -> (value as written, line)."""

    path: str
    scope: str  # "project" | "user"
    values: dict[str, tuple[Any, int]]


def user_config_path(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    return os.path.join(os.path.expanduser(base), "carbonwrap", "config.toml")


def find_project_file(cwd: str) -> tuple[str, bool] | None:
    """(path, is_pyproject) of the nearest carbonwrap.toml, or pyproject.toml with a
    [tool.carbonwrap] table, from `cwd` upward; None if there is none. Whatever is at the name
    carbonwrap.toml (a FIFO, a link to a device) is the project file, refused when read: a
    file further up must not silently stand in for it."""
    directory = os.path.abspath(cwd)
    while True:
        candidate = os.path.join(directory, PROJECT_FILE)
        if _present(candidate):
            return candidate, False
        pyproject = os.path.join(directory, PYPROJECT)
        if _present(pyproject) and _mentions_tool_table(pyproject):
            return pyproject, True
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _present(path: str) -> bool:
    """Something other than a directory is at `path` (a dangling link too)."""
    return os.path.lexists(path) and not os.path.isdir(path)


def _mentions_tool_table(path: str) -> bool:
    """Whether a pyproject.toml has a [tool.carbonwrap] table; one that cannot be read is
    passed by (it may be anyone's), one that is not a regular file or is huge is refused."""
    try:
        raw, _ = read_bytes(path)
    except OSError:
        return False
    text = raw.decode("utf-8", errors="replace")
    return any(line.strip().startswith("[tool.carbonwrap") for line in text.splitlines())


def read_bytes(path: str) -> tuple[bytes, int]:
    """The bytes of a settings file and its mode, reading at most one block past
    MAX_FILE_BYTES. OSError if it cannot be opened; CarbonwrapError if it is not a regular
    file or is too large.

    Checked before opening (opening some devices has effects of its own) and again on the
    open file (the name may have changed in between). O_NONBLOCK: opening a FIFO does not wait
    for a writer."""
    _check_kind(path, os.stat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        _check_kind(path, st)
        chunks: list[bytes] = []
        got = 0
        # Whole blocks: some files refuse odd sizes (/proc/self/pagemap: multiples of 8).
        while got <= MAX_FILE_BYTES and (chunk := os.read(fd, _READ_BLOCK)):
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    if got > MAX_FILE_BYTES:  # it grew after the check, or its size says nothing (/proc)
        raise _too_large(path, None)
    return b"".join(chunks), st.st_mode


def _check_kind(path: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise CarbonwrapError(
            f"{path}{link}: {_kind(st.st_mode)}, not a regular file (a settings file is read "
            "whole); replace it with a file or remove it"
        )
    if st.st_size > MAX_FILE_BYTES:
        raise _too_large(path, st.st_size)


def _too_large(path: str, size: int | None) -> CarbonwrapError:
    shown = f"{_size(size)}, " if size is not None else ""
    return CarbonwrapError(
        f"{path}: {shown}more than a settings file may hold ({_size(MAX_FILE_BYTES)}); "
        "fix or remove it"
    )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB" if size % (1 << 20) else f"{size >> 20} MiB"
    return f"{size} bytes"


def read_file(path: str, scope: str, pyproject: bool, notes: list[str]) -> ConfigFile:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the same parser, as a package
        import tomli as tomllib

    try:
        raw, mode = read_bytes(path)
    except OSError as exc:
        raise CarbonwrapError(f"{path}: cannot read it ({exc.strerror}); fix or remove it") from exc
    try:
        text = raw.decode("utf-8")
        document = tomllib.loads(text)
    except UnicodeDecodeError:
        raise CarbonwrapError(f"{path}: not UTF-8 text; fix the file") from None
    except tomllib.TOMLDecodeError as exc:
        raise CarbonwrapError(f"{path}: invalid TOML: {exc}; fix the file") from None
    except RecursionError:  # tomllib recurses per level of nested arrays and tables
        raise CarbonwrapError(f"{path}: values nested too deeply to read; fix the file") from None
    prefix: tuple[str, ...] = ()
    if pyproject:
        prefix = ("tool", "carbonwrap")
        table = document.get("tool", {}).get("carbonwrap", {})
        if not isinstance(table, dict):
            raise CarbonwrapError(f"{path}: [tool.carbonwrap] must be a table; fix the file")
        document = table
    lines = _key_lines(text, prefix)
    values = _check(document, path, scope, lines)
    secret = any(BY_KEY[k].secret for k in values)
    if secret and stat.S_IMODE(mode) & 0o077:
        notes.append(f"{path} holds a secret and others can read it: chmod 600 {path}")
    return ConfigFile(path, scope, values)


def _check(
    document: dict[str, Any], path: str, scope: str, lines: dict[str, int]
) -> dict[str, tuple[Any, int]]:
    """Flatten, check every key and value, and keep the line of each."""
    values: dict[str, tuple[Any, int]] = {}
    for name, value in document.items():
        if name in TABLES and name != "tags":
            if not isinstance(value, dict):
                raise CarbonwrapError(_where(path, lines, name) + f"[{name}] must be a table")
            items = [(f"{name}.{k}", v) for k, v in value.items()]
        else:
            items = [(name, value)]
        for key, item in items:
            line = lines.get(key, lines.get(key.partition(".")[0], 0))
            setting = BY_KEY.get(key)
            if setting is None:
                raise CarbonwrapError(_where(path, lines, key) + f"unknown key {key!r}"
                                      + _did_you_mean(key) + "; fix the file")  # fmt: skip
            if setting.secret and scope == "project":
                raise CarbonwrapError(
                    _where(path, lines, key) + f"{key}: credentials are not read from project "
                    f"files (they get committed); put it in the user file or set {setting.env}"
                )
            try:
                parsed = setting.parse(item)
            except ValueError as exc:
                shown = "(hidden)" if setting.secret else _toml(item)
                raise CarbonwrapError(
                    _where(path, lines, key) + f"{key} = {shown}: {exc}; fix the file"
                ) from None
            if key in PATHS:
                parsed = os.path.expanduser(parsed)
                if scope == "project":  # the project's logs wherever in it one runs
                    parsed = os.path.join(os.path.dirname(path), parsed)
            values[key] = (parsed, line)
    given = [key for key in WHERE if key in values]
    if len(given) > 1:
        raise CarbonwrapError(
            _where(path, lines, given[1]) + f"{' and '.join(given)} set together; keep one"
        )
    return values


def _where(path: str, lines: Mapping[str, int], key: str) -> str:
    line = lines.get(key, lines.get(key.partition(".")[0]))
    return f"{path}:{line}: " if line else f"{path}: "


def _did_you_mean(key: str) -> str:
    from difflib import get_close_matches

    close = get_close_matches(key, list(BY_KEY), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(BY_KEY)})"


def _key_lines(text: str, prefix: tuple[str, ...]) -> dict[str, int]:
    """The line of each key, as `key` or `table.key`, relative to `prefix` (["tool",
    "carbonwrap"] in pyproject.toml). tomllib keeps no positions; this scan finds the first
    assignment of each key in its table, which is where a value error is."""
    lines: dict[str, int] = {}
    table: tuple[str, ...] | None = () if not prefix else None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            name = line.strip("[]").split("#")[0].strip()
            parts = tuple(p.strip().strip('"') for p in name.split("."))
            table = parts[len(prefix) :] if parts[: len(prefix)] == prefix else None
            if table and ".".join(table) not in lines:
                lines[".".join(table)] = number
            continue
        if table is None or "=" not in line or line.startswith("#"):
            continue
        key = line.partition("=")[0].strip().strip('"')
        full = ".".join((*table, key)) if table else key
        lines.setdefault(full, number)
    return lines


def _toml(value: Any) -> str:
    """A value as it looks in the file, for error messages (short)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        text = str(value)
    return one_line(text)
