"""Provider credentials: from the environment, else from the user's settings file (never the
command line, never a project file that may be committed). The files are read by config.py.

    # $XDG_CONFIG_HOME/carbonwrap/config.toml (default ~/.config/carbonwrap/config.toml)
    [electricitymaps]
    token = "..."
    [watttime]
    username = "..."
    password = "..."
"""

from collections.abc import Mapping, Sequence

from carbonwrap.settings.resolve import BY_KEY, load_config, user_config_path

# (section, key) in the file -> the environment variable that overrides it
KEYS = {tuple(key.split(".", 1)): setting.env for key, setting in BY_KEY.items() if setting.secret}

__all__ = ["KEYS", "looks_secret", "redact_argv", "user_config_path", "with_secrets"]


def with_secrets(
    environ: Mapping[str, str], cwd: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """`environ` plus credentials from the user's file where the environment has none, and
    notes (e.g. a file others can read). For choosing providers only: never for the child."""
    config = load_config(environ, cwd)
    return config.credentials(environ), config.notes


REDACTED = "<redacted>"
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd")


def looks_secret(name: str) -> bool:
    """An option or variable name that may carry a credential: *key*, *token*, *secret*,
    *password*/*passwd*, or --auth* (case does not matter; `--api-key`, `HF_TOKEN`)."""
    bare = name.lstrip("-").lower()
    return any(word in bare for word in _SECRET_WORDS) or bare.startswith("auth")


def redact_argv(argv: Sequence[str]) -> list[str]:
    """The command line as the log keeps it: values of options whose long names look secret
    (`--api-key X`, `--api-key=X`, `-password X`), of NAME=VALUE words whose names do
    (`HF_TOKEN=X`, as `env` and `make` take them) and the password in URLs
    (`https://user:X@host`) become <redacted>. Over-eager by design: `--keyboard x` loses its
    `x` too. Single-letter options (`-p X`) cannot be told apart and are kept."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not arg.startswith("--"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, _ = arg.partition("=")
        if arg.startswith("-") and len(name.lstrip("-")) > 1 and looks_secret(name):
            if eq:
                arg = f"{name}={REDACTED}"
            else:
                hide_next = True
        elif eq and name.isidentifier() and looks_secret(name):
            arg = f"{name}={REDACTED}"
        out.append(_url_password_redacted(arg))
    return out


def _url_password_redacted(arg: str) -> str:
    scheme, sep, rest = arg.partition("://")
    if not sep or "@" not in rest:
        return arg
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not at or not colon:
        return arg
    return f"{scheme}://{user}:{REDACTED}@{host}{slash}{path}"
