"""How far the CO2e of a log is from truly time-resolved pricing, per logged record (the fold
before issue 14) and split at intensity changes (`ledger.CarbonLedger` now).

    python3 bench/pricing_split.py [--runs 200] [--log-interval 10]

Simulated runs, seeded: power drawn per second of the sampler (1 s), logged as cumulative
samples every `--log-interval` seconds, intensity records where a provider's new value comes
in. The truth prices each second's energy at the value in force in that second; "per record"
prices each logged interval at the value in force when its sample is logged; "split" is
carbonwrap's fold of the same records. Scenarios:
  - 5-minute provider: a 1-hour job at 150–250 W, a new value every 5 minutes (30 s after each
    slot, as the poller asks) in a random walk of ±25 % between 50 and 600 g/kWh;
  - marginal signal: a bursty job (0–400 W, bursts of 20–90 s), WattTime-like marginal values
    alternating around 300 and 900 g/kWh every 5 minutes;
  - live value at start: a 2-minute job at 200 W, the static table value (143) replaced by the
    provider's first answer (60) 0.5–3 s after the start.
Prints the mean and the largest relative difference from the truth over `--runs` runs.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carbonwrap.runlog.records import utc_iso
from carbonwrap.runlog.summary import Fold

T0 = 1_790_000_000.0
J_PER_KWH = 3.6e6
Scenario = Callable[[random.Random], tuple[list[float], list[tuple[float, float]]]]


def five_minute_provider(rng: random.Random) -> tuple[list[float], list[tuple[float, float]]]:
    power = [rng.uniform(150, 250) for _ in range(3600)]
    value = rng.uniform(100, 300)
    changes = [(0.0, value)]
    phase = rng.uniform(0, 300)  # where the run starts within a provider slot
    at = 300 - phase + 30
    while at < 3600:
        value = min(600.0, max(50.0, value * rng.uniform(0.75, 1.25)))
        changes.append((at + rng.uniform(0, 2), value))
        at += 300
    return power, changes


def marginal_signal(rng: random.Random) -> tuple[list[float], list[tuple[float, float]]]:
    power: list[float] = []
    while len(power) < 3600:
        level = rng.choice([0.0, 400.0, 250.0])
        power += [level * rng.uniform(0.9, 1.1)] * rng.randint(20, 90)
    power = power[:3600]
    changes = [(0.0, rng.uniform(250, 350))]
    at = 300 - rng.uniform(0, 300) + 30
    high = True
    while at < 3600:
        changes.append((at + rng.uniform(0, 2), rng.uniform(800, 1000) if high else 300.0))
        high = not high
        at += 300
    return power, changes


def live_value_at_start(rng: random.Random) -> tuple[list[float], list[tuple[float, float]]]:
    return [200.0] * 120, [(0.0, 143.0), (rng.uniform(0.5, 3.0), 60.0)]


def truth_g(power: list[float], changes: list[tuple[float, float]]) -> float:
    """Each second's energy at the value in force in it (a change inside a second: pro rata)."""
    total = 0.0
    edges = [*changes, (float(len(power)), 0.0)]
    for (a, value), (b, _) in itertools.pairwise(edges):
        for second in range(int(a), min(len(power), int(b) + 1)):
            overlap = min(b, second + 1) - max(a, second)
            if overlap > 0:
                total += power[second] * overlap * value
    return total / J_PER_KWH


def records(
    power: list[float], changes: list[tuple[float, float]], log_interval: int
) -> list[dict[str, object]]:
    """The log: cumulative samples every `log_interval` s, each change logged when it comes."""
    out: list[dict[str, object]] = [{"type": "start", "time": utc_iso(T0), "pue": 1.0}]
    pending = list(changes)
    energy = 0.0
    for second, watts in enumerate(power, start=1):
        energy += watts
        while pending and pending[0][0] < second:
            at, value = pending.pop(0)
            out.append(
                {
                    "type": "intensity",
                    "time": utc_iso(T0 + at),
                    "elapsed_s": round(at, 3),
                    "intensity_g_per_kwh": value,
                    "source": "provider",
                    "kind": "latest",
                }
            )
        if second % log_interval == 0 or second == len(power):
            out.append(
                {
                    "type": "sample",
                    "time": utc_iso(T0 + second),
                    "elapsed_s": float(second),
                    "energy_j": {"cpu": energy},
                    "device_energy_j": {"cpu": energy},
                }
            )
    return out


def per_record_g(log: list[dict[str, object]]) -> float:
    """The fold before issue 14: each logged interval at the value in force when it is logged."""
    total = last = 0.0
    value: float | None = None
    for record in log:
        if record["type"] == "intensity":
            value = float(record["intensity_g_per_kwh"])  # type: ignore[arg-type]
        elif record["type"] == "sample":
            energy = float(record["energy_j"]["cpu"])  # type: ignore[index]
            total += (energy - last) * (value or 0.0)
            last = energy
    return total / J_PER_KWH


def split_g(log: list[dict[str, object]]) -> float:
    fold = Fold()
    for record in log:
        fold.add(record)
    return fold.summary().co2e_g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--log-interval", type=int, default=10)
    args = parser.parse_args()
    scenarios: dict[str, Scenario] = {
        "5-minute provider": five_minute_provider,
        "marginal signal": marginal_signal,
        "live value at start": live_value_at_start,
    }
    print(f"log interval {args.log_interval} s, {args.runs} runs each; CO2e vs. time-resolved")
    print(f"{'scenario':22} {'per record: mean':>17} {'worst':>8} {'split: mean':>12} {'worst':>8}")
    for name, scenario in scenarios.items():
        rng = random.Random(14)
        before, after = [], []
        for _ in range(args.runs):
            power, changes = scenario(rng)
            truth = truth_g(power, changes)
            log = records(power, changes, args.log_interval)
            before.append(per_record_g(log) / truth - 1)
            after.append(split_g(log) / truth - 1)
        print(
            f"{name:22} {statistics.mean(before):>+16.3%} {max(before, key=abs):>+8.3%} "
            f"{statistics.mean(after):>+12.4%} {max(after, key=abs):>+8.4%}"
        )


if __name__ == "__main__":
    main()
