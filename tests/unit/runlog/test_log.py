"""The JSON-lines log: the sample line layout the fast readers rely on is what the writer writes."""

from __future__ import annotations

from carbonwrap.runlog import records as events


def test_the_sample_line_layout_the_fast_readers_rely_on_is_what_the_log_writes() -> None:
    """`records.SAMPLE_START` / `SAMPLE_TIME` are the one statement of how a sample line
    begins; the reader and the series skip lines by them, so the writer must agree."""
    import re

    from carbonwrap.runlog.records import SAMPLE_START, SAMPLE_TIME, encode

    for time_s in (0.0, 1_764_000_000.0, 1_764_000_299.999_9):
        line = encode(
            events.sample(
                time_s=time_s, elapsed_s=1.0, cpu_s=0.5, energy_j={"cpu": 2.0},
                device_energy_j={"cpu": 3.0},
            )
        )  # fmt: skip
        assert line.startswith(SAMPLE_START) and line.endswith(b"}\n")
        found = re.match(SAMPLE_TIME, line)
        assert found is not None
        stamp = events.utc_iso(time_s)
        assert (found[1] + found[2]).decode() == stamp[:16]
    assert not encode(events.warning(time_s=0.0, elapsed_s=0.0, message="x")).startswith(
        SAMPLE_START
    )
