"""/proc/stat's busy time: the reader's in-line sum of the aggregate line (the sampler's hot
path) is parse_busy_ticks' answer, on fake /proc trees written as real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.sensors.procstat import ProcStat, parse_busy_ticks

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**15), min_size=4, max_size=10),
    st.sampled_from(["", "cpu0 1 2 3 4 5 6 7 8 9 10\n", "intr 5 0 0\n"]),
)
def test_busy_seconds_are_the_parsed_ticks(
    tmp_path_factory: pytest.TempPathFactory, fields: list[int], rest: str
) -> None:
    root = tmp_path_factory.mktemp("proc")
    text = "cpu  " + " ".join(map(str, fields)) + "\n" + rest
    (root / "stat").write_text(text)
    reader = ProcStat(root)
    try:
        assert reader.busy_s() == parse_busy_ticks(text) * TICK_S
    finally:
        reader.close()


def test_an_aggregate_line_not_first_is_found_and_none_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("intr 1 2\ncpu  1 2 3 4 5 6 7 8\n")
    reader = ProcStat(tmp_path)
    assert reader.busy_s() == (1 + 2 + 3 + 6 + 7) * TICK_S
    (tmp_path / "stat").write_text("intr 1 2\n")
    with pytest.raises(ValueError, match="no aggregate 'cpu' line"):
        reader.busy_s()
    reader.close()
