"""Provider credentials: from the environment, else from the user's settings file (never the
command line, never a project file that may be committed). The files are read by config.py.

    # $XDG_CONFIG_HOME/carbonwrap/config.toml (default ~/.config/carbonwrap/config.toml)
    [electricitymaps]
    token = "..."
    [watttime]
    username = "..."
    password = "..."
"""

from collections.abc import Mapping

from carbonwrap.config import BY_KEY, load_config, user_config_path

# (section, key) in the file -> the environment variable that overrides it
KEYS = {tuple(key.split(".", 1)): setting.env for key, setting in BY_KEY.items() if setting.secret}

__all__ = ["KEYS", "user_config_path", "with_secrets"]


def with_secrets(
    environ: Mapping[str, str], cwd: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """`environ` plus credentials from the user's file where the environment has none, and
    notes (e.g. a file others can read). For choosing providers only: never for the child."""
    config = load_config(environ, cwd)
    return config.credentials(environ), config.notes
