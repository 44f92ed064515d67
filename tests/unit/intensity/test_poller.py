"""The intensity poller with a fake provider: records on change, fallbacks with reasons,
measured history, and a stop that returns in time whatever the provider does."""

from __future__ import annotations

import asyncio
import time

import pytest
from fake_provider import NOW, Clock, FakeProvider, make, point

from carbonwrap.intensity.points import FORECAST, LATEST, MEASURED, STATIC, ProviderError
from carbonwrap.intensity.poller import failure_delay_s, next_poll_delay_s


def test_records_only_changes_of_value_or_source() -> None:
    provider, clock = FakeProvider(), Clock()
    provider.answers = [point(120.0), point(120.0), point(90.0)]
    poller, records, _ = make(provider, clock)

    async def go() -> list[float]:
        poller._provider = provider
        return [await poller._poll_latest(None) for _ in range(3)]

    delays = asyncio.run(go())
    assert [r["intensity_g_per_kwh"] for r in records] == [120.0, 90.0]
    assert records[0]["kind"] == LATEST and records[0]["source"] == "fake:DK1"
    assert records[0]["valid_from"] and records[0]["valid_to"]
    assert delays == [270.0, 270.0, 270.0]  # 30 s after the slot ends (in 240 s)


def test_failure_keeps_the_last_value_while_valid_then_falls_back_with_a_reason() -> None:
    provider, clock = FakeProvider(), Clock()
    provider.answers = [
        point(120.0),
        ProviderError("HTTP 500 from api/x"),
        ProviderError("timeout"),
    ]
    poller, records, warnings = make(provider, clock)

    async def go() -> None:
        poller._provider = provider
        await poller._poll_latest(None)  # 120, valid until NOW + 240 (+ one resolution)
        clock.now = NOW + 400
        await poller._poll_latest(None)  # fails, still valid: kept, one warning
        clock.now = NOW + 600
        await poller._poll_latest(None)  # fails, expired: static, with the reason

    asyncio.run(go())
    assert [r["intensity_g_per_kwh"] for r in records] == [120.0, 150.0]
    assert records[-1]["kind"] == STATIC and records[-1]["reason"] == "fake: timeout"
    assert warnings == ["fake: HTTP 500 from api/x; keeping the last value while valid"]


def test_history_is_recorded_once_per_window_as_measured() -> None:
    provider, clock = FakeProvider(), Clock()
    provider.history_points = [
        point(80.0, NOW - 3600, NOW - 1800, MEASURED),
        point(85.0, NOW - 1800, NOW, MEASURED),
        point(99.0, NOW, NOW + 1800, FORECAST),  # not measured: never recorded as such
        point(70.0, NOW - 7200, NOW - 3600, MEASURED),  # before the run: ignored
    ]
    poller, records, _ = make(provider, clock)

    async def go() -> None:
        poller._provider = provider
        await poller._fetch_history(None)
        await poller._fetch_history(None)

    asyncio.run(go())
    assert [(r["kind"], r["intensity_g_per_kwh"]) for r in records] == [
        (MEASURED, 80.0),
        (MEASURED, 85.0),
    ]


@pytest.mark.parametrize("hang", [False, True])
def test_stop_returns_within_budget_and_fetches_history_when_it_can(hang: bool) -> None:
    provider, clock = FakeProvider(), Clock()
    provider.answers = [point(120.0)] * 5
    provider.history_points = [point(80.0, NOW - 3600, NOW, MEASURED)]
    provider.hang = hang
    poller, records, _ = make(provider, clock)
    poller.start()
    time.sleep(1.0)  # aiohttp imported, first poll done (or hanging)
    started = time.monotonic()
    poller.stop(budget_s=0.3)
    assert time.monotonic() - started < 0.45
    kinds = [r["kind"] for r in records]
    assert kinds == ([] if hang else [LATEST, MEASURED])


def test_delays() -> None:
    assert next_poll_delay_s(NOW, None, 1800) == 1800
    assert next_poll_delay_s(NOW, point(1, end=NOW + 5), 300) == 60  # never faster than 1/min
    assert next_poll_delay_s(NOW, point(1, end=NOW - 900), 300) == 300  # a lagging provider
    assert next_poll_delay_s(NOW, point(1, end=NOW + 3 * 3600), 1800) == 1800
    assert [failure_delay_s(n, None, 1800) for n in (1, 2, 3, 7)] == [30, 60, 120, 1800]
    assert failure_delay_s(1, 600, 300) == 600  # Retry-After wins when longer


def test_a_lagging_providers_value_stays_valid_from_its_arrival() -> None:
    """Energinet's newest 5-minute value is often 30 min old when it arrives: still good."""
    provider, clock = FakeProvider(), Clock()
    provider.answers = [point(120.0, NOW - 1800, NOW - 1500), ProviderError("timeout")]
    poller, records, warnings = make(provider, clock)

    async def go() -> None:
        poller._provider = provider
        await poller._poll_latest(None)
        clock.now = NOW + 200  # within one resolution of its arrival
        await poller._poll_latest(None)

    asyncio.run(go())
    assert [r["intensity_g_per_kwh"] for r in records] == [120.0]
    assert warnings == ["fake: timeout; keeping the last value while valid"]
