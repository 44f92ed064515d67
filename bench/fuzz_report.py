"""Coverage-guided fuzzing of `report`'s log reading with atheris (optional; not run in CI).

    python3 -m venv /tmp/fuzz && /tmp/fuzz/bin/pip install atheris
    PYTHONPATH=.:.venv/lib/python3.11/site-packages /tmp/fuzz/bin/python bench/fuzz_report.py \
        -max_total_time=120

Each input is the body of a log after a valid start record (so the fuzzer spends its time past
the first line): both readings (the fast one and a fold of every record) and every rendering
must succeed, and agree on the totals. tests/unit/report/test_hostile_report.py runs the same
properties with hypothesis in CI.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from carbonwrap.commands.report import ReportOptions, report
    from carbonwrap.report.read import fold_every_record, summarize_log
    from carbonwrap.runlog import records as events

START = json.dumps(
    events.start(run_id="fuzz", time_s=1.79e9, argv=["x"], cwd="/", host="h", pid=1, versions={},
                 cpu_accounting="cgroup2", components={"cpu": {"method": "rapl"}}, region={},
                 pue=1.2, interval_s=1.0, log_interval_s=10.0, job={}, tags={})
).encode() + b"\n"  # fmt: skip
DIRECTORY = tempfile.mkdtemp(prefix="carbonwrap-fuzz-")
PATH = os.path.join(DIRECTORY, "fuzz.jsonl")


def one(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(START + data)
    fast, full = summarize_log(PATH), fold_every_record(PATH)
    assert (fast is None) == (full is None)
    if fast is not None and full is not None:
        for name in ("duration_s", "cpu_s", "energy_j", "device_energy_j"):
            a, b = getattr(fast, name), getattr(full, name)
            assert math.isfinite(a) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), name
    from pathlib import Path

    for fmt in ("table", "json", "csv", "codecarbon"):
        out = io.StringIO()
        assert (
            report(ReportOptions(paths=[Path(PATH)], output_format=fmt), {}, out, io.StringIO())
            == 0
        )
        if fmt == "json":
            json.loads(
                out.getvalue(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))
            )


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
