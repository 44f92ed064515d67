"""Live grid-intensity providers: one module each, all behind the `Provider` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import aiohttp

    from carbonwrap.intensity.points import IntensityPoint


class Provider(Protocol):
    """What the poller needs from a provider. Every call raises `ProviderError` on failure."""

    name: str  # "electricitymaps", "ukgrid", "energidataservice", "watttime"
    resolution_s: float  # how often new values appear: poll no faster than this
    signal: str  # points.AVERAGE or points.MARGINAL

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint: ...

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Measured values overlapping [start_s, end_s); [] where the provider has none."""
        ...

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]: ...
