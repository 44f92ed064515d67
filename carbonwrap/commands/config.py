"""The `config` command: every setting's effective value and its source, as text or JSON."""

from collections.abc import Mapping
from typing import TextIO


def config(as_json: bool, environ: Mapping[str, str], stdout: TextIO) -> int:
    from carbonwrap.settings.resolve import describe

    document = describe(environ)
    if as_json:
        import json

        stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        from carbonwrap.render.config import config_text

        stdout.write(config_text(document))
    return 0
