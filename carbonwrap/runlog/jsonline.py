"""`json.dumps` for the records a run writes, without importing `json` at start-up (its
decoder and scanner import `re`, which imports `enum`: a few milliseconds of every run).

`json.dumps` itself, with no indent, hands the work to `_json.make_encoder`, CPython's C
encoder; this calls it the same way, so the text is the same byte for byte
(tests/unit/runlog/test_jsonline.py holds it to `json.dumps` on generated values). An
interpreter without `_json` (PyPy) gets `json.dumps` itself.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # no C accelerator
    _json = None  # type: ignore[assignment]


def _not_serializable(value: object) -> object:
    """json.JSONEncoder.default's refusal, in its words."""
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(value: object, *, compact: bool = False, allow_nan: bool = True) -> str:
    """`json.dumps(value, allow_nan=allow_nan)`, with `separators=(",", ":")` when `compact`:
    ASCII only, keys in their order, circular references refused (ValueError), a float that
    is not finite refused (ValueError) unless `allow_nan`."""
    item, key = (",", ":") if compact else (", ", ": ")
    if _json is None:
        import json

        return json.dumps(value, separators=(item, key), allow_nan=allow_nan)
    # A fresh markers dict each time, as each json.dumps makes one: an encoding that failed
    # half-way may leave entries in it.
    encode = _json.make_encoder(
        {}, _not_serializable, _json.encode_basestring_ascii, None, key, item, False, False,
        allow_nan,
    )  # fmt: skip
    return "".join(encode(value, 0))
