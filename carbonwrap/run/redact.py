"""What of a command line the log keeps: values that look like credentials become <redacted>.

Provider credentials themselves come from the environment, else from the user's settings file
(settings/resolve.py, `Config.credentials`), never from a command line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Sequence


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
