"""Progress reports as text: the channel's message format, and progress bars and `Epoch N/M`
lines recognised in a command's output. Pure functions of bytes and strings.

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
import re
from typing import NamedTuple


class Report(NamedTuple):
    """`done` of `total` `unit`s; total None when unknown; a fraction has unit "fraction" and
    total 1."""

    done: float
    total: float | None
    unit: str


MAX_LINE = 256  # longer lines are bad messages
COUNT_UNIT = "it"
FRACTION = "fraction"
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_UNIT = r"[A-Za-z_][A-Za-z0-9_.\-]{0,31}"
_COUNT = re.compile(
    rf"(?:(?P<unit>{_UNIT})\s+)?(?P<done>{_NUMBER})(?:\s*/\s*(?P<total>{_NUMBER}))?\s*"
    rf"(?P<percent>%)?"
)
_UNIT_ONLY = re.compile(_UNIT)


def _number(text: str) -> float:
    """An int where the text is one (the log then says 3, not 3.0)."""
    return int(text) if text.isdigit() and len(text) <= 15 else float(text)


def checked(done: object, total: object, unit: object) -> Report | None:
    """A report if the values make sense: numbers (not bools), finite, done >= 0, total > 0 and
    >= done, unit a short word."""
    if not isinstance(unit, str) or not _UNIT_ONLY.fullmatch(unit):
        return None
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
    match = _COUNT.fullmatch(text)
    if match is None:
        return None
    unit, total_text, percent = match["unit"], match["total"], match["percent"]
    try:
        done = _number(match["done"])
        total = _number(total_text) if total_text is not None else None
    except (ValueError, OverflowError):
        return None
    if percent:
        if unit is not None or total is not None:
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


# --- recognised in output -----------------------------------------------------------------------

_SCALE = {b"": 1, b"k": 1e3, b"M": 1e6, b"G": 1e9, b"T": 1e12, b"P": 1e15}
_UNIT_B = rb"[A-Za-z_][A-Za-z0-9_]{0,31}"
# tqdm's default: "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining},
# {rate_fmt}{postfix}]"; the rate is "4.50it/s", "?it/s", "1.02kit/s", "12.3MB/s" or "1.23s/it".
_TQDM = re.compile(
    rb"[0-9]{1,3}%\|[^|\r\n]{0,1000}\|\s*"
    rb"(?P<done>[0-9]+(?:\.[0-9]+)?)(?P<dscale>[kMGTP]?)/"
    rb"(?P<total>[0-9]+(?:\.[0-9]+)?)(?P<tscale>[kMGTP]?)\s*\["
    rb"(?:[^\]\r\n]{0,80}?(?:(?:[0-9.]+[kMGTP]?|\?)(?P<unit>" + _UNIT_B + rb")/s"
    rb"|[0-9]s/(?P<unit_inv>" + _UNIT_B + rb"))[,\]]|[^\]\r\n]{0,80}\])"
)
_EPOCH = re.compile(
    rb"(?<![A-Za-z])[Ee]poch\s*[:=]?\s*\[?\s*(?P<n>[0-9]{1,9})\s*(?:/|of)\s*(?P<m>[0-9]{1,9})"
)
CARRY_MAX = 512  # bytes of an unfinished last line kept for the next chunk
_LOOKS = 8  # matches tried backwards from the end of a chunk


class OutputScanner:
    """Finds the latest progress in a stream of output chunks, without decoding or copying them.

    tqdm bars (`45%|████▌     | 45/100 [00:10<00:12, 4.5it/s]`, `\r` updates, scaled counts such
    as 1.2k/10.0k, the unit from the rate) and `Epoch N/M` lines (also `Epoch [N/M]`, `epoch N of
    M`). Keras, and most training loops, print `Epoch N/M` as epoch N *starts*: read as N-1 of M
    done. Once such a line has been seen, tqdm bars are ignored: they are then usually the bar of
    one epoch, restarting every epoch. A chunk is searched with a regular expression only where
    it contains `%|` or `poch`; an unfinished last line (up to CARRY_MAX bytes) is joined to the
    start of the next chunk.
    """

    def __init__(self) -> None:
        self._carry = b""
        self.epochs_seen = False

    def feed(self, chunk: bytes) -> Report | None:
        """The latest report in `chunk` (or across its start and the previous chunk), or None."""
        report = self._scan(chunk)
        if report is None and self._carry:
            report = self._scan(self._carry + chunk[:CARRY_MAX])
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if cut >= 0:
            self._carry = chunk[cut + 1 :][-CARRY_MAX:]
        else:
            self._carry = (self._carry + chunk[-CARRY_MAX:])[-CARRY_MAX:]
        return report

    def _scan(self, data: bytes) -> Report | None:
        report = _last_epoch(data) if b"poch" in data else None
        if report is not None:
            self.epochs_seen = True
            return report
        if not self.epochs_seen and b"%|" in data:
            return _last_tqdm(data)
        return None


def _last_epoch(data: bytes) -> Report | None:
    end = len(data)
    for _ in range(_LOOKS):
        at = data.rfind(b"poch", 0, end)
        if at < 1:
            return None
        match = _EPOCH.match(data, at - 1)
        if match is not None:
            n, m = int(match["n"]), int(match["m"])
            if 1 <= n <= m:
                return Report(n - 1, m, "epoch")
        end = at
    return None


def _last_tqdm(data: bytes) -> Report | None:
    end = len(data)
    for _ in range(_LOOKS):
        at = data.rfind(b"%|", 0, end)
        if at < 0:
            return None
        start = at
        while start > 0 and at - start < 3 and data[start - 1 : start].isdigit():
            start -= 1
        match = _TQDM.match(data, start)
        if match is not None:
            done = float(match["done"]) * _SCALE[match["dscale"]]
            total = float(match["total"]) * _SCALE[match["tscale"]]
            unit = (match["unit"] or match["unit_inv"] or b"it").decode("ascii")
            report = checked(_integral(done), _integral(total), unit)
            if report is not None:
                return report
        end = at
    return None


def _integral(value: float) -> float:
    return int(value) if value.is_integer() else value
