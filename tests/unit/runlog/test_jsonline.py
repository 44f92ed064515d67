"""runlog/jsonline.py writes what json.dumps writes, byte for byte, and refuses what it refuses;
records.utc_iso and parse_utc agree with datetime without importing it."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.runlog import jsonline
from carbonwrap.runlog.records import parse_utc, utc_iso

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(), max_size=20)  # any code point, lone surrogates too
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(VALUES, st.booleans())
def test_the_same_text_as_json_dumps(value: object, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    assert jsonline.dumps(value, compact=compact) == json.dumps(value, separators=separators)
    try:
        expected = json.dumps(value, separators=separators, allow_nan=False)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            jsonline.dumps(value, compact=compact, allow_nan=False)
    else:
        assert jsonline.dumps(value, compact=compact, allow_nan=False) == expected


def test_what_json_refuses_is_refused_and_a_refusal_leaves_nothing_behind() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonline.dumps(loop)
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonline.dumps({"a": [1, {2}]})
    shared = [1]
    assert jsonline.dumps([shared, shared]) == "[[1], [1]]"  # seen twice is not circular
    assert jsonline.dumps({"a": 1}) == '{"a": 1}'  # after the failures: no stale markers
    assert jsonline.dumps({1: True, 2.5: None}) == json.dumps({1: True, 2.5: None})


def test_without_the_c_encoder_the_json_module_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonline, "_json", None)
    assert jsonline.dumps({"é": [1.5, math.inf]}, compact=True) == '{"\\u00e9":[1.5,Infinity]}'


@settings(max_examples=3000, deadline=None)
@given(st.floats(min_value=0, max_value=253402300799.9994))  # up to 9999-12-31T23:59:59.999
def test_utc_iso_is_what_datetime_writes(timestamp_s: float) -> None:
    moment = dt.datetime.fromtimestamp(timestamp_s, dt.timezone.utc)
    expected = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_iso(timestamp_s) == expected


def reference(text: str) -> float | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


@settings(max_examples=3000, deadline=None)
@given(st.floats(min_value=0, max_value=253402300799.9994))
def test_parse_utc_reads_what_utc_iso_writes_as_datetime_does(timestamp_s: float) -> None:
    text = utc_iso(timestamp_s)
    assert parse_utc(text) == reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-29T12:00:00.000Z", "2023-02-29T12:00:00.000Z", "2026-13-01T00:00:00.000Z",
        "2026-04-31T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
        "2026-01-01T00:00:60.000Z", "0000-01-01T00:00:00.000Z", "2026-01-01T00:00:00.00xZ",
        "2026-01-01T00:00:00.١٢٣Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456Z",
        "2026-01-01T00:00:00.123+00:00", "2026-01-01 00:00:00.123Z", "1900-03-01T00:00:00.000Z",
        "2026-01-01", "", "not a time",
    ],
)  # fmt: skip
def test_parse_utc_on_other_forms_and_impossible_dates_agrees_with_datetime(text: str) -> None:
    assert parse_utc(text) == reference(text)
