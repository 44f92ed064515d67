"""runlog/jsontext.py writes what json.dumps writes, byte for byte, and refuses what it refuses;
records.utc_iso and parse_utc agree with datetime without importing it."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap import jsontext
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
    assert jsontext.dumps(value, compact=compact) == json.dumps(value, separators=separators)
    try:
        expected = json.dumps(value, separators=separators, allow_nan=False)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            jsontext.dumps(value, compact=compact, allow_nan=False)
    else:
        assert jsontext.dumps(value, compact=compact, allow_nan=False) == expected


def test_what_json_refuses_is_refused_and_a_refusal_leaves_nothing_behind() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsontext.dumps(loop)
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsontext.dumps({"a": [1, {2}]})
    shared = [1]
    assert jsontext.dumps([shared, shared]) == "[[1], [1]]"  # seen twice is not circular
    assert jsontext.dumps({"a": 1}) == '{"a": 1}'  # after the failures: no stale markers
    assert jsontext.dumps({1: True, 2.5: None}) == json.dumps({1: True, 2.5: None})


def test_without_the_c_encoder_the_json_module_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontext, "_json", None)
    assert jsontext.dumps({"é": [1.5, math.inf]}, compact=True) == '{"\\u00e9":[1.5,Infinity]}'


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


def same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN, and of the same types all the way down."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    return a == b


@settings(max_examples=2000, deadline=None)
@given(VALUES, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.booleans())
def test_loads_reads_what_json_loads_reads(value: object, space: str, as_bytes: bool) -> None:
    text = space + json.dumps(value, indent=1 if isinstance(value, dict) else None) + space
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert same(jsontext.loads(data), json.loads(data))


@pytest.mark.parametrize(
    "text",
    ["", " ", "{", '{"a": 1} x', "[1,]", "nul", "\ufeff[1]", '"\\ud800"', "[1] [2]", "01",
     '{"a": 1, "a": 2}', "1e999", "-0", '"\x01"', '["\\u00e9"]'],
)  # fmt: skip
def test_loads_answers_or_refuses_as_json_loads(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass"), text.encode("utf-16")):
        try:
            expected = json.loads(data)
        except ValueError as exc:
            with pytest.raises(type(exc), match=re.escape(str(exc))):
                jsontext.loads(data)
        else:
            assert same(jsontext.loads(data), expected)
