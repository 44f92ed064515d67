"""An intensity provider that flaps between answers and failures for a whole (simulated) week:
the run never notices beyond its log, which stays small and says what happened, and the CO2e is
the energy priced at the value in force for each interval."""

from __future__ import annotations

import asyncio

import pytest
from fake_provider import NOW, Clock, FakeProvider, make, point

from carbonwrap.intensity.points import ProviderError
from carbonwrap.runlog import records as events
from carbonwrap.runlog.summary import Fold

WEEK_S = 7 * 86_400


def test_a_provider_flapping_for_a_week() -> None:
    provider, clock = FakeProvider(), Clock()
    poller, records, warnings = make(provider, clock)
    fold = Fold()
    fold.add({"type": "start", "schema": "carbonwrap.log/1", "pue": 1.0})
    fold.add(events.intensity(time_s=NOW, elapsed_s=0, intensity_g_per_kwh=150.0, region="DK",
                              source="static", kind="static"))  # fmt: skip
    polls = 0
    energy_j = 0.0
    expected_g = 0.0

    async def week() -> None:
        nonlocal polls, energy_j, expected_g
        poller._provider = provider
        while clock.now < NOW + WEEK_S:
            n = polls
            polls += 1
            if n % 2:  # every other poll fails, with one of three reasons
                reason = ("HTTP 503 from api/x", "timeout after 10 s", "malformed JSON")[n % 3]
                provider.answers.append(ProviderError(reason))
            else:  # a value that changes now and then, valid for this 5-minute slot
                provider.answers.append(point(100.0 + (n // 40) % 5, clock.now, clock.now + 300))
            before = len(records)
            delay_s = await poller._poll_latest(None)
            for record in records[before:]:
                fold.add(record)
            # The command's energy over the time until the next poll, priced as the fold does.
            current = fold.current_intensity()
            assert current is not None
            energy_j += 1000.0
            expected_g += 1000.0 / 3.6e6 * current[0]
            clock.now += delay_s
            totals = {"cpu": energy_j}
            fold.add(events.sample(time_s=clock.now, elapsed_s=clock.now - NOW, cpu_s=0,
                                   energy_j=totals, device_energy_j=totals))  # fmt: skip

    asyncio.run(week())
    summary = fold.summary()
    assert polls > 1000
    assert summary.co2e_g == pytest.approx(expected_g, rel=1e-9)
    # Every record is a valid intensity record; values only where they changed.
    assert all(r["type"] == "intensity" and r["intensity_g_per_kwh"] > 0 for r in records)
    assert len(records) < polls / 4, len(records)
    # Each reason said, but not once per flap: the log and the final report stay readable.
    assert {w.split(": ", 1)[1].split(";")[0] for w in warnings} == {
        "HTTP 503 from api/x", "timeout after 10 s", "malformed JSON"
    }  # fmt: skip
    assert len(warnings) <= 10, len(warnings)
