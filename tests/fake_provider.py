"""A fake intensity provider, a clock the test sets, and a real IntensityPoller on them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from carbonwrap.intensity.points import LATEST, STATIC, IntensityPoint, ProviderError
from carbonwrap.intensity.poller import IntensityPoller

NOW = 1_764_000_000.0
STATIC_POINT = IntensityPoint(
    0, float("inf"), 150.0, STATIC, "average", "static table: Denmark 2024"
)


def point(
    value: float, start: float = NOW - 60, end: float = NOW + 240, kind: str = LATEST
) -> IntensityPoint:
    return IntensityPoint(start, end, value, kind, "average", "fake:DK1")


class FakeProvider:
    name = "fake"
    resolution_s = 300.0
    signal = "average"

    def __init__(self) -> None:
        self.answers: list[IntensityPoint | ProviderError] = []
        self.history_points: list[IntensityPoint] = []
        self.hang = False

    async def latest(self, session: Any) -> IntensityPoint:
        if self.hang:
            await asyncio.sleep(3600)
        answer = self.answers.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    async def history(self, session: Any, start_s: float, end_s: float) -> list[IntensityPoint]:
        if self.hang:
            await asyncio.sleep(3600)
        return [p for p in self.history_points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: Any) -> list[IntensityPoint]:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def make(
    provider: FakeProvider, clock: Clock
) -> tuple[IntensityPoller, list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    poller = IntensityPoller(
        lambda: provider,
        "fake",
        STATIC_POINT,
        "DK",
        records.append,
        warnings.append,
        NOW - 3600,
        time.monotonic(),
        clock,
    )
    return poller, records, warnings
