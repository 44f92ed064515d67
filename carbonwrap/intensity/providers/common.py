"""What every HTTP provider keeps: its source label, where it asks, how patiently, its clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from carbonwrap.intensity.http import Timeouts


class HttpProvider:
    """A base for the providers' shared state; each keeps its own constructor and checks."""

    name: str
    base: str
    source: str

    def _keep(
        self,
        area: str,
        base: str,
        timeouts: Timeouts,
        retries: int,
        sleep: Callable[[float], Awaitable[None]],
        now: Callable[[], float],
    ) -> None:
        self.base = base.rstrip("/")
        self.source = f"{self.name}:{area}"
        self._timeouts = timeouts
        self._retries = retries
        self._sleep = sleep
        self._now = now  # wall clock, epoch s

    def __repr__(self) -> str:  # never a key or token
        return f"{type(self).__name__}({self.source!r}, base={self.base!r})"
