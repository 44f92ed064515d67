"""The `config` command: every setting's effective value and its source, as text or JSON."""

from collections.abc import Mapping
from typing import Any, TextIO

from carbonwrap.intensity.location import resolve_location
from carbonwrap.settings.catalog import BY_KEY
from carbonwrap.settings.files import user_config_path
from carbonwrap.settings.resolve import load_config


def config(as_json: bool, environ: Mapping[str, str], stdout: TextIO) -> int:
    document = describe(environ)
    if as_json:
        import json

        stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        from carbonwrap.render.config import config_text

        stdout.write(config_text(document))
    return 0


MASK = "********"
# Settings held in seconds: `config` says so (durations were given as 8h, 90m).
SECONDS = ("interval", "log_interval", "start_within", "expected_duration", "budget_grace")


def describe(environ: Mapping[str, str], cwd: str | None = None) -> dict[str, Any]:
    """What `carbonwrap config` shows: the files consulted and every setting's effective value
    and source; secrets masked, the region as a run would resolve it (time zone included)."""
    config = load_config(environ, cwd)
    settings: dict[str, dict[str, Any]] = {}
    where = resolve_location(None, None, None, environ, configured=config.where())
    settings["region"] = {
        "value": where.region,
        "source": where.source,
        "origin": where.detail,
    }
    for key, value in config.resolve({}, environ).items():
        shown = value.value
        if BY_KEY[key].secret and shown is not None:
            shown = MASK
        settings[key] = {"value": shown, "source": value.source, "origin": value.origin}
        if key in SECONDS:
            settings[key]["unit"] = "s"
    found = {f.scope: f.path for f in config.files}
    return {
        "schema": "carbonwrap.config/1",
        "files": {
            "project": found.get("project"),
            "user": found.get("user"),
            "user_path": user_config_path(environ),
        },
        "settings": settings,
        "notes": config.notes,
    }
