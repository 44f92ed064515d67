"""The relays' last step: output that processes left running still write, handed to a `cat`
that copies it on once carbonwrap exits."""

import os
from typing import Any


def spawn_cat(file_actions: list[tuple[Any, ...]]) -> str | None:
    """A `cat` that copies on what processes left running still write, once carbonwrap exits
    (`file_actions` give it that as stdin, and where it went as stdout): None once it runs,
    else why it could not start. Both relays, the pipe's and the pty's, hand over this way."""
    try:
        os.posix_spawnp("cat", ["cat"], dict(os.environ), file_actions=file_actions)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
