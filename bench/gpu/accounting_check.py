"""Accounting check on a real NVIDIA GPU: are jobs that hold the GPU only between two readings
credited through NVML accounting mode?

Turns accounting mode on for GPU 0 (`nvidia-smi -i 0 -am 1`: root only; put back as it was at
the end), then runs eight short CUDA jobs one after another under `carbonwrap run --interval
10`, so most start and end between two readings. Passes when GPU 0's attribution methods hold
`accounting` and its attributed energy is not 0; prints NVML's counter over the run beside
carbonwrap's figures. Needs torch with CUDA and nvidia-ml-py; about 40 s. Exit 2 without a GPU
or without the right to turn accounting on (a skip, said in one line).

    PYTHONPATH=. python3 bench/gpu/accounting_check.py [--out FILE.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
JOBS = 8


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    try:
        import pynvml
        import torch
    except ImportError as exc:
        print(f"accounting_check: needs torch and nvidia-ml-py: {exc}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("accounting_check: no CUDA GPU here; nothing to check", file=sys.stderr)
        return 2
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    card = pynvml.nvmlDeviceGetName(handle)
    card = card.decode() if isinstance(card, bytes) else card
    was_on = pynvml.nvmlDeviceGetAccountingMode(handle) == pynvml.NVML_FEATURE_ENABLED
    if not was_on:
        try:
            pynvml.nvmlDeviceSetAccountingMode(handle, pynvml.NVML_FEATURE_ENABLED)
        except pynvml.NVMLError as exc:
            print(f"accounting_check: cannot turn accounting mode on ({exc}): skipped")
            return 2
    try:
        return check(pynvml, handle, card, args.out)
    finally:
        if not was_on:
            pynvml.nvmlDeviceSetAccountingMode(handle, pynvml.NVML_FEATURE_DISABLED)


def check(pynvml: object, handle: object, card: str, out: Path | None) -> int:
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="0")
    job = f"{shlex.quote(sys.executable)} {shlex.quote(str(HERE / 'short_job.py'))}"
    script = f"for i in $(seq {JOBS}); do {job} || exit 1; done"
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp, "report.json")
        energy_0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # type: ignore[attr-defined]
        status = subprocess.call(
            [sys.executable, "-m", "carbonwrap", "run", "-q", "--interval", "10",
             "--log-dir", tmp, "--json", str(report_path), "--intensity", "400", "--",
             "sh", "-c", script],
            env=env,
        )  # fmt: skip
        energy_1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # type: ignore[attr-defined]
        if status != 0:
            print(f"accounting_check: the run failed (status {status})")
            return 1
        report = json.loads(report_path.read_text())
    gpu = next((g for g in report["gpus"] if g["index"] == 0), None)
    if gpu is None:
        print(f"accounting_check: carbonwrap measured no GPU 0: {report['methods'].get('gpu')}")
        return 1
    methods = gpu["attribution_methods"]
    attributed_j = gpu["energy_kwh"] * 3.6e6
    failed = []
    if "accounting" not in methods:
        failed.append(f"no interval credited through accounting: {methods}")
    if attributed_j <= 0:
        failed.append("no GPU energy attributed")
    lines = [
        f"# GPU accounting check — {dt.date.today().isoformat()} — {card}",
        "",
        f"Command: `PYTHONPATH=. python3 bench/gpu/accounting_check.py` ({JOBS} short CUDA jobs"
        " one after another under `carbonwrap run --interval 10`, accounting mode on)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| run duration | {report['duration_s']} s |",
        f"| NVML counter over the whole run | {(energy_1 - energy_0) / 1000:.1f} J |",
        f"| carbonwrap device energy, GPU 0 | {gpu['device_energy_kwh'] * 3.6e6:.1f} J |",
        f"| carbonwrap attributed energy, GPU 0 | {attributed_j:.1f} J |",
        f"| attribution methods (intervals) | {methods} |",
        "",
        "Result: " + ("PASS" if not failed else "FAIL: " + "; ".join(failed)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = out or REPO / "bench" / "results" / (
        f"{dt.date.today().isoformat()}-gpu-accounting-{card.replace(' ', '_')}.md"
    )
    out.write_text(text)
    print(f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
