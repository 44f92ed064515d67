"""Progress recognised in a command's output (`--progress-from-output`): tqdm bars and `Epoch
N/M` lines, found in raw output chunks without decoding or copying them. Pure."""

import re

from carbonwrap.predict.messages import Report, checked

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

    tqdm bars (`45%|████▌     | 45/100 [00:10<00:12, 4.5it/s]`, `\\r` updates, scaled counts such
    as 1.2k/10.0k, the unit from the rate) and `Epoch N/M` lines (also `Epoch [N/M]`, `epoch N of
    M`). Keras, and most training loops, print `Epoch N/M` as epoch N *starts*: read as N-1 of M
    done. Once such a line has been seen, tqdm bars are ignored: they are then usually the bar of
    one epoch, restarting every epoch. A chunk is searched with a regular expression only where
    it contains `%|` or `poch`; an unfinished last line (up to CARRY_MAX bytes) is joined to the
    start of the next chunk.
    """

    def __init__(self) -> None:
        self._carry = b""
        self._carry_read = False
        self.epochs_seen = False

    def feed(self, data: bytes | bytearray, end: int | None = None) -> Report | None:
        """The latest report in `data[:end]` (or across its start and the previous chunk's
        unfinished line), or None. `data` may be a reused buffer: nothing refers to it after."""
        end = len(data) if end is None else end
        report = self._scan(data, end)
        if report is None and self._carry and not self._carry_read:
            joined = self._carry + data[: min(end, CARRY_MAX)]
            report = self._scan(joined, len(joined))
        cut = data.rfind(b"\n", 0, end)
        cut = max(cut, data.rfind(b"\r", cut + 1, end))  # only after the last newline
        if cut >= 0:
            self._carry = bytes(data[max(cut + 1, end - CARRY_MAX) : end])
        else:
            self._carry = (self._carry + data[max(0, end - CARRY_MAX) : end])[-CARRY_MAX:]
        # A finished bar without a line end (tqdm's latest, before the next "\r") was read
        # already: joined to the next chunk it would only be found again.
        self._carry_read = (
            bool(self._carry) and self._scan(self._carry, len(self._carry)) is not None
        )
        return report

    def _scan(self, data: bytes | bytearray, end: int) -> Report | None:
        # A one-byte find is a memchr; "|" is rare outside tqdm bars and tables.
        report = _last_epoch(data, end) if data.find(b"poch", 0, end) >= 0 else None
        if report is not None:
            self.epochs_seen = True
            return report
        if not self.epochs_seen and data.find(b"|", 0, end) >= 0:
            return _last_tqdm(data, end)
        return None


def _last_epoch(data: bytes | bytearray, end: int) -> Report | None:
    for _ in range(_LOOKS):
        at = data.rfind(b"poch", 0, end)
        if at < 1:
            return None
        match = _EPOCH.match(data, at - 1, end)
        if match is not None:
            n, m = int(match["n"]), int(match["m"])
            if 1 <= n <= m:
                return Report(n - 1, m, "epoch")
        end = at
    return None


def _last_tqdm(data: bytes | bytearray, end: int) -> Report | None:
    for _ in range(_LOOKS):
        at = data.rfind(b"%|", 0, end)
        if at < 0:
            return None
        start = at
        while start > 0 and at - start < 3 and data[start - 1 : start].isdigit():
            start -= 1
        match = _TQDM.match(data, start, end)
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
