"""Settings and where each value comes from: flag > environment > project file > user file >
default.

Project file: `carbonwrap.toml`, or a `[tool.carbonwrap]` table in `pyproject.toml`, in the
working directory or the nearest directory above it that has one. User file:
`$XDG_CONFIG_HOME/carbonwrap/config.toml` (default `~/.config/carbonwrap/config.toml`).
Both hold the same keys (`pue = 1.2`, `region = "DK"`, a `[tags]` table); credentials
(`[electricitymaps] token`, `[watttime] username/password`) only in the user file, which a
project file (often committed) must not hold. Every file error names the file, the key and the
line. tomllib is imported only when a file exists.
"""

from __future__ import annotations

import os

from carbonwrap.errors import CarbonwrapError, one_line
from carbonwrap.settings.catalog import (
    BY_KEY,
    SETTINGS,
    WHERE,
    Setting,
    Value,
)
from carbonwrap.settings.files import ConfigFile, find_project_file, read_file, user_config_path

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["BY_KEY", "Config", "load_config", "user_config_path"]


class Config:
    """The settings files that apply to a working directory, parsed and checked.

    `resolve(flags, environ)` gives every setting's effective value and source; `where()` the
    region/location/cloud a file gives; `notes` are warnings (a secret others can read).
    """

    def __init__(self, files: list[ConfigFile], notes: list[str]) -> None:
        self.files = files  # highest precedence first: project, then user
        self.notes = notes

    def resolve(self, flags: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Value]:
        """Every setting (WHERE excluded: see `where`): a flag that is not None, else the
        variable, else the project file, else the user file, else the default. Tags merge by
        key across levels, higher levels winning."""
        resolved: dict[str, Value] = {}
        for setting in SETTINGS:
            if setting.key in WHERE:
                continue
            levels = self._levels(setting, flags, environ)
            if setting.key == "tags":
                merged: dict[str, str] = {}
                origins = []
                for value in reversed(levels):
                    merged.update(value.value)
                    origins.append(value.origin)
                source = levels[0].source if levels else "default"
                resolved["tags"] = Value(merged, source, ", ".join(reversed(origins)))
                continue
            resolved[setting.key] = levels[0] if levels else Value(setting.default, "default", "")
        return resolved

    def _levels(
        self, setting: Setting, flags: Mapping[str, Any], environ: Mapping[str, str]
    ) -> list[Value]:
        levels: list[Value] = []
        flag = flags.get(setting.key)
        if flag is not None and flag != {}:
            levels.append(Value(flag, "flag", f"--{setting.key.replace('_', '-')}"))
        raw = environ.get(setting.env, "").strip()
        if raw:
            try:
                levels.append(Value(setting.parse(raw), "env", setting.env))
            except ValueError as exc:
                shown = "(hidden)" if setting.secret else one_line(raw)
                raise CarbonwrapError(f"{setting.env}={shown}: {exc}; fix or unset it") from None
        for file in self.files:
            if setting.key in file.values:
                value, line = file.values[setting.key]
                levels.append(Value(value, file.scope, f"{file.path}:{line}"))
        return levels

    def where(self) -> tuple[str, str, str] | None:
        """(option, value, origin) of the region, location or cloud the highest file sets."""
        for file in self.files:
            for key in WHERE:
                if key in file.values:
                    value, line = file.values[key]
                    return f"--{key}", value, f"{file.path}:{line}"
        return None

    def credentials(self, environ: Mapping[str, str]) -> dict[str, str]:
        """`environ` plus the credentials the files hold, under their variables' names, where
        the environment has none (for choosing providers only: never for the child)."""
        merged = dict(environ)
        for file in self.files:
            for setting in SETTINGS:
                if setting.secret and setting.key in file.values and not merged.get(setting.env):
                    merged[setting.env] = file.values[setting.key][0]
        return merged


def load_config(environ: Mapping[str, str], cwd: str | None = None) -> Config:
    """The project file (from `cwd`, default the working directory, upward) and the user file;
    CarbonwrapError (exit 125) for a file that cannot be read, parsed or trusted."""
    files: list[ConfigFile] = []
    notes: list[str] = []
    if cwd is None:
        try:
            cwd = os.getcwd()
        except FileNotFoundError:  # the working directory was deleted: no project file in it
            cwd = None
    found = None if cwd is None else find_project_file(cwd)
    if found is not None:
        files.append(read_file(found[0], "project", found[1], notes))
    user = user_config_path(environ)
    if os.path.exists(user):
        files.append(read_file(user, "user", False, notes))
    return Config(files, notes)


def named(key: str, value: Value) -> str:
    """How to name a setting in an error, by where its value came from."""
    if value.source == "flag":
        return f"--{key.replace('_', '-')}"
    if value.source == "env":
        return BY_KEY[key].env
    if value.source == "default":
        return f"the default {key}"
    return f"{key} ({value.origin})"


def intensity_source(flag: str | None, environ: Mapping[str, str]) -> tuple[Config, str]:
    """The settings files, and --intensity-source (`flag`), else $CARBONWRAP_INTENSITY_SOURCE,
    else the files, else auto (`intensity` and `doctor` hand the files on: read once)."""
    config = load_config(environ)
    resolved = config.resolve({"intensity_source": flag}, environ)
    return config, str(resolved["intensity_source"].value)


def check_run_settings(resolved: Mapping[str, Value]) -> None:
    """What no single setting can check: the log interval is at least the sampling interval."""
    log, every = resolved["log_interval"], resolved["interval"]
    if log.value < every.value:
        raise CarbonwrapError(
            f"{named('log_interval', log)} {log.value:g} is shorter than "
            f"{named('interval', every)} {every.value:g}; make it at least as long"
        )
