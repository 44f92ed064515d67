"""--progress-from-output: the pure scanner (outputscan.py)."""

from __future__ import annotations

import pytest

from carbonwrap.predict.messages import Report
from carbonwrap.predict.outputscan import CARRY_MAX, OutputScanner

# --- the scanner ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        (
            b"\r 45%|\xe2\x96\x88\xe2\x96\x8c     | 45/100 [00:10<00:12,  4.50it/s]",
            Report(45, 100, "it"),
        ),
        (
            b"train:  12%|#   | 12.3M/100M [00:01<00:07, 12.3MB/s]",
            Report(12_300_000, 100_000_000, "B"),
        ),
        (b"  1%|          | 1/100 [00:01<02:00,  1.23s/it, loss=0.3]", Report(1, 100, "it")),
        (b"  0%|          | 0/100 [00:00<?, ?it/s]", Report(0, 100, "it")),
        (b" 12%|#  | 1.23k/10.0k [00:01<00:08, 1.02kit/s]", Report(1230, 10_000, "it")),
        (b"  3%|3   | 30/1000 [00:01<00:30, 29.50batch/s]", Report(30, 1000, "batch")),
        (b" 50%|#####     | 5/10 [00:05<00:05]", Report(5, 10, "it")),
        (b"Epoch 3/10\n", Report(2, 10, "epoch")),
        (b"Epoch [2/5], Step [100/600], Loss: 0.3\n", Report(1, 5, "epoch")),
        (b"epoch 4 of 10 done\n", Report(3, 10, "epoch")),
        (b"Epoch: 1/1\n", Report(0, 1, "epoch")),
        (b"myepoch 3/10\n", None),
        (b"Epoch 0/10\n", None),
        (b"Epoch 11/10\n", None),
        (b"Epoch 3: 45%|####5     | 45/100 [00:10<00:12, 4.5it/s]", Report(45, 100, "it")),
        (b"| a | b |\n| 1 | 2 |\n", None),
        (b"50% | 3/4\n", None),
        (b"y\n" * 50_000, None),
    ],
)
def test_scanner_recognises(chunk: bytes, expected: Report | None) -> None:
    assert OutputScanner().feed(chunk) == expected


def test_scanner_takes_the_latest_and_joins_split_lines() -> None:
    scanner = OutputScanner()
    bars = b"".join(b"\r%3d%%|#   | %d/200 [00:01<00:02, 9it/s]" % (i // 2, i) for i in range(50))
    assert scanner.feed(bars) == Report(49, 200, "it")
    assert scanner.feed(b"\r 25%|##  | 50/20") is None  # unfinished
    assert scanner.feed(b"0 [00:02<00:03, 9it/s]") == Report(50, 200, "it")
    assert scanner.feed(b"x" * (3 * CARRY_MAX)) is None  # a long line: the carry stays bounded


def test_scanner_reads_a_reused_buffer_up_to_its_end() -> None:
    scanner = OutputScanner()
    buffer = bytearray(b"Epoch 7/9\n" + b"\0" * 100)
    assert scanner.feed(buffer, 10) == Report(6, 9, "epoch")
    buffer[:10] = b"Epoch 8/9\n"
    assert scanner.feed(buffer, 5) is None  # "Epoc": only the first 5 bytes count


def test_after_epoch_lines_bars_are_ignored() -> None:
    scanner = OutputScanner()
    assert scanner.feed(b"Epoch 1/3\n") == Report(0, 3, "epoch")
    assert scanner.feed(b"\r 45%|####      | 45/100 [00:10<00:12, 4.5it/s]") is None
