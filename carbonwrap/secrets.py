"""Provider credentials: from the environment, else from the user's config file (never the
command line, never a project file that may be committed).

    # $XDG_CONFIG_HOME/carbonwrap/config.toml (default ~/.config/carbonwrap/config.toml)
    [electricitymaps]
    token = "..."
    [watttime]
    username = "..."
    password = "..."
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from carbonwrap.errors import CarbonwrapError

# (section, key) in the file -> the environment variable that overrides it
KEYS = {
    ("electricitymaps", "token"): "CARBONWRAP_ELECTRICITYMAPS_TOKEN",
    ("watttime", "username"): "CARBONWRAP_WATTTIME_USERNAME",
    ("watttime", "password"): "CARBONWRAP_WATTTIME_PASSWORD",
}


def user_config_path(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME", "~"), ".config")
    return os.path.join(os.path.expanduser(base), "carbonwrap", "config.toml")


def with_secrets(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """`environ` plus credentials from the user's config file where the environment has none,
    and notes (e.g. a file others can read). For choosing providers only: never for the child."""
    path = user_config_path(environ)
    merged = dict(environ)
    notes: list[str] = []
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return merged, notes
    except OSError as exc:
        raise CarbonwrapError(f"{path}: cannot read it ({exc.strerror}); fix or remove it") from exc
    try:
        import tomllib
    except ImportError as exc:  # Python 3.10
        raise CarbonwrapError(f"{path}: reading it needs Python 3.11 (tomllib)") from exc
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CarbonwrapError(f"{path}: invalid TOML: {exc}; fix the file") from exc
    found = False
    for section in sorted({s for s, _ in KEYS}):
        table = document.get(section)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise CarbonwrapError(f"{path}: [{section}] must be a table")
        for key, value in table.items():
            variable = KEYS.get((section, key))
            if variable is None:
                known = ", ".join(k for s, k in KEYS if s == section)
                raise CarbonwrapError(f"{path}: unknown key {section}.{key} (known: {known})")
            if not isinstance(value, str) or not value:
                raise CarbonwrapError(f"{path}: {section}.{key} must be a non-empty string")
            found = True
            merged.setdefault(variable, value)
    if found and stat.S_IMODE(os.stat(path).st_mode) & 0o077:
        notes.append(f"{path} holds a secret and others can read it: chmod 600 {path}")
    return merged, notes
