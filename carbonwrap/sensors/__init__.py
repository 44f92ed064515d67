"""Hardware sensors: small classes behind one protocol, each given its root or handle."""

from __future__ import annotations


class SensorUnavailable(Exception):
    """A sensor cannot be used here; `reason` says why and, where possible, how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
