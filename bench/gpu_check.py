"""GPU check on a real NVIDIA GPU: is carbonwrap's device energy NVML's, and is the attributed
share the SM-time share when a foreign process shares the GPU?

Runs `carbonwrap run -- burn.py 60` (a matmul burner) while a second, unwrapped burner shares GPU 0
from second ~15 to ~45. Prints NVML's own counter over the wrapped burner's lifetime, carbonwrap's
device and attributed energy, and the attributed share; the expectation for the share assumes the
two identical burners split the SMs evenly while they overlap. Needs torch with CUDA and
nvidia-ml-py; about 90 s. Writes a markdown record to bench/results/ (or --out) and exits 1
unless both hold: the device energy lies between NVML's counter over the burner's lifetime and
over the whole carbonwrap run (2 % either side; carbonwrap charges whole intervals while the
burner holds its context, CUDA start-up included), and the attributed share is within 0.1 of
the expected one. Without a GPU it says why in one line and exits 2.

    PYTHONPATH=. python3 bench/gpu_check.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--foreign-start", type=float, default=15.0)
    parser.add_argument("--foreign-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    try:
        import pynvml
        import torch
    except ImportError as exc:
        print(f"gpu_check: needs torch and nvidia-ml-py: {exc}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here; nothing to check", file=sys.stderr)
        return 2
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        print(f"gpu_check: NVML does not start: {exc}", file=sys.stderr)
        return 2
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    card = pynvml.nvmlDeviceGetName(handle)
    card = card.decode() if isinstance(card, bytes) else card
    driver = pynvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else driver

    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="0")
    with tempfile.TemporaryDirectory() as tmp:
        ours, foreign = Path(tmp, "ours.json"), Path(tmp, "foreign.json")
        report_path = Path(tmp, "report.json")
        wrapper_energy_0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        wrapped = subprocess.Popen(
            [sys.executable, "-m", "carbonwrap", "run", "-q", "--log-dir", tmp,
             "--json", str(report_path), "--intensity", "400", "--",
             sys.executable, str(HERE / "burn.py"), str(args.seconds), str(ours)],
            env=env,
        )  # fmt: skip
        time.sleep(args.foreign_start)
        other = subprocess.Popen(
            [sys.executable, str(HERE / "burn.py"), str(args.foreign_seconds), str(foreign)],
            env=env,
        )
        other.wait()
        wrapped.wait()
        wrapper_energy_1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        if wrapped.returncode != 0 or other.returncode != 0:
            print(f"gpu_check: burner failed ({wrapped.returncode}, {other.returncode})")
            return 1
        report = json.loads(report_path.read_text())
        life = json.loads(ours.read_text())
        other_life = json.loads(foreign.read_text())

    gpu = next((g for g in report["gpus"] if g["index"] == 0), None)
    if gpu is None:
        print(f"gpu_check: carbonwrap measured no GPU 0: {report['methods'].get('gpu')}")
        return 1
    nvml_life_j = (life["last"]["energy_mj"] - life["first"]["energy_mj"]) / 1000
    nvml_wrapper_j = (wrapper_energy_1 - wrapper_energy_0) / 1000
    device_j = gpu["device_energy_kwh"] * 3.6e6
    attributed_j = gpu["energy_kwh"] * 3.6e6
    ours_s = life["last"]["t"] - life["first"]["t"]
    overlap_s = max(
        0.0,
        min(life["last"]["t"], other_life["last"]["t"])
        - max(life["first"]["t"], other_life["first"]["t"]),
    )
    expected_share = (ours_s - overlap_s / 2) / ours_s if ours_s > 0 else float("nan")
    share = attributed_j / device_j if device_j > 0 else float("nan")
    failed = []
    if not nvml_life_j * 0.98 <= device_j <= nvml_wrapper_j * 1.02:
        failed.append(
            f"device energy {device_j:.1f} J outside NVML's {nvml_life_j:.1f}–"
            f"{nvml_wrapper_j:.1f} J (±2 %)"
        )
    if not abs(share - expected_share) <= 0.1:
        failed.append(f"attributed share {share:.3f}, expected {expected_share:.3f} ± 0.1")
    lines = [
        f"# GPU check — {dt.date.today().isoformat()} — {card} (driver {driver})",
        "",
        "Command: `PYTHONPATH=. python3 bench/gpu_check.py`"
        f" (burner {args.seconds:.0f} s under carbonwrap; foreign burner from"
        f" {args.foreign_start:.0f} s for {args.foreign_seconds:.0f} s)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| NVML counter over the wrapped burner's lifetime | {nvml_life_j:.1f} J |",
        f"| NVML counter over the whole carbonwrap run (incl. CUDA start-up) | "
        f"{nvml_wrapper_j:.1f} J |",
        f"| carbonwrap device energy, GPU 0 | {device_j:.1f} J |",
        f"| carbonwrap device vs NVML lifetime | {100 * (device_j / nvml_life_j - 1):+.2f} % |",
        f"| carbonwrap attributed energy, GPU 0 | {attributed_j:.1f} J |",
        f"| attributed share | {share:.3f} |",
        f"| expected share (even split while overlapping {overlap_s:.1f} s of {ours_s:.1f} s) "
        f"| {expected_share:.3f} |",
        f"| attribution methods (intervals) | {gpu['attribution_methods']} |",
        f"| energy method | {gpu['energy_method']} |",
        "",
        "Expected: device energy within 2 % of NVML's counter over the same window (carbonwrap "
        "charges whole sampling intervals, so up to one interval of extra energy at each end);"
        " attributed share near the expected share.",
        "",
        "Result: " + ("PASS" if not failed else "FAIL: " + "; ".join(failed)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or REPO / "bench" / "results" / (
        f"{dt.date.today().isoformat()}-gpu-check-{card.replace(' ', '_')}.md"
    )
    out.write_text(text)
    print(f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
