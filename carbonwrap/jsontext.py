"""`json.dumps` and `json.loads` for what a run writes and reads before its command starts (its
log records, the shipped defaults), without importing `json` (its decoder and scanner import
`re`, which imports `enum`: a few milliseconds of every run).

`json.dumps` itself, with no indent, hands the work to `_json.make_encoder`, CPython's C
encoder, and `json.loads` to `_json.make_scanner`; these call them the same way, so the text
and the values are the same (tests/unit/test_jsontext.py holds them to json's on generated
values). Text that json would refuse goes to `json.loads` itself, which raises its own error.
An interpreter without `_json` (PyPy) gets the json module.
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


class _Context:
    """What `_json.make_scanner` reads from json.JSONDecoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.get


_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE


def loads(text: str | bytes) -> object:
    """`json.loads(text)` (bytes as UTF-8): the same values; json's own error for what it
    refuses."""
    if _json is not None:
        try:
            string = text.decode("utf-8") if isinstance(text, bytes) else text
            start = len(string) - len(string.lstrip(_WHITESPACE))
            value, end = _json.make_scanner(_Context())(string, start)  # type: ignore[arg-type]
        except (StopIteration, ValueError):  # json.loads says what is wrong (or reads UTF-16)
            pass
        else:
            if not string[end:].strip(_WHITESPACE) and not string.startswith("\ufeff"):
                return value
    import json

    return json.loads(text)
