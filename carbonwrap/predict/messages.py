"""The progress channel's message format: text (or JSON) lines to reports. Pure.

Channel messages, one report per line (a datagram may hold several lines):
    epoch 3/10        3 of 10 epochs          (UNIT DONE/TOTAL)
    step 1200/50000   a count of any unit     (UNIT: a letter, then letters, digits, _ . -)
    3/10              a count without a unit  (unit "it", as tqdm says)
    step 1200         total unknown           (a unit is required here)
    0.35  or  35%     a fraction of the whole (unit "fraction", total 1)
    {"done": 3, "total": 10, "unit": "epoch"}   JSON; total and unit optional
Numbers are plain decimals (no sign, no thousands separators); DONE must not exceed TOTAL.
"""

import json
import math
from typing import NamedTuple


class Report(NamedTuple):
    """`done` of `total` `unit`s; total None when unknown; a fraction has unit "fraction" and
    total 1."""

    done: float
    total: float | None
    unit: str


MAX_LINE = 256  # longer lines are bad messages
MAX_UNIT = 32
COUNT_UNIT = "it"
FRACTION = "fraction"
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NUMBER_CHARS = frozenset("0123456789.eE+-")
# No regular expressions here: this module is imported by every run, and compiling one costs
# ~0.5 ms of start-up.


def is_unit(text: object) -> bool:
    """A letter or _, then letters, digits, _ . -; at most MAX_UNIT characters."""
    return (
        isinstance(text, str)
        and 0 < len(text) <= MAX_UNIT
        and (text[0].isascii() and (text[0].isalpha() or text[0] == "_"))
        and _UNIT_CHARS.issuperset(text)
    )


def _number(text: str) -> float | None:
    """A plain decimal (digits, one point, an exponent; no sign, no _): an int where the text
    is one, so the log says 3, not 3.0. None for anything else."""
    if not text or not (text[0].isdigit() or text[0] == ".") or not _NUMBER_CHARS.issuperset(text):
        return None
    if text.isdigit() and len(text) <= 15:
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def checked(done: object, total: object, unit: object) -> Report | None:
    """A report if the values make sense: numbers (not bools), finite, done >= 0, total > 0 and
    >= done, unit a short word (`is_unit`)."""
    if not is_unit(unit):
        return None
    assert isinstance(unit, str)
    if not isinstance(done, (int, float)) or isinstance(done, bool):
        return None
    if total is not None and (not isinstance(total, (int, float)) or isinstance(total, bool)):
        return None
    try:
        if not math.isfinite(done) or done < 0:
            return None
        if total is not None and (not math.isfinite(total) or total <= 0 or done > total):
            return None
    except OverflowError:  # an int too large for a float
        return None
    return Report(done, total, unit)


def parse_message(text: str) -> Report | None:
    """One channel line as a report, or None if it is not one (see the module docstring)."""
    text = text.strip()
    if not text or len(text) > MAX_LINE:
        return None
    if text.startswith("{"):
        return _parse_json(text)
    percent = text.endswith("%")
    if percent:
        text = text[:-1].rstrip()
    words = text.split()
    unit: str | None = None
    if words and (words[0][:1].isalpha() or words[0][:1] == "_"):
        unit, words = words[0], words[1:]
    done_text, slash, total_text = " ".join(words).partition("/")
    done = _number(done_text.strip())
    total = _number(total_text.strip()) if slash else None
    if done is None or (slash and total is None):
        return None
    if percent:
        if unit is not None or slash:
            return None
        return checked(done / 100, 1.0, FRACTION)
    if total is None and unit is None:
        return checked(done, 1.0, FRACTION)  # a bare number is a fraction: 0.35
    return checked(done, total, unit or COUNT_UNIT)


def _parse_json(text: str) -> Report | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or "done" not in value:
        return None
    done, total, unit = value["done"], value.get("total"), value.get("unit")
    if unit is None:
        unit = FRACTION if total is None else COUNT_UNIT
        if unit == FRACTION:
            total = 1.0
    return checked(done, total, unit)
