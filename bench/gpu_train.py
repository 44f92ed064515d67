"""GPU training check on a real NVIDIA GPU: a small PyTorch training job under
`carbonwrap run --progress-from-output`, its live view captured through a pseudo-terminal.

Asserts what a user of a GPU job relies on: the run document (--json) has GPU energy
(attributed and device, GPU 0 measured by the NVML counter), the attribution methods of its
intervals, and a prediction from the job's progress; the live view drew on the terminal.
Writes bench/results/<date>-gpu-train-<card>.md (or --out) and keeps the captured terminal
bytes beside it (--capture). Needs torch with CUDA and nvidia-ml-py; about 60 s.

    PYTHONPATH=. python3 bench/gpu_train.py [--seconds 45]
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def needs() -> str | None:
    """Why this host cannot run the check (one line), or None."""
    try:
        import pynvml
        import torch
    except ImportError as exc:
        return f"needs torch and nvidia-ml-py: {exc}"
    if not torch.cuda.is_available():
        return "no CUDA GPU here; nothing to check"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return f"NVML does not start: {exc}"
    return None


def card_name() -> tuple[str, str]:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    name, driver = pynvml.nvmlDeviceGetName(handle), pynvml.nvmlSystemGetDriverVersion()
    return (
        name.decode() if isinstance(name, bytes) else name,
        driver.decode() if isinstance(driver, bytes) else driver,
    )


def run_in_pty(argv: list[str], env: dict[str, str], capture: Path, limit_s: float) -> int:
    """Run `argv` with a pseudo-terminal as its stdin, stdout and stderr (as a user's terminal:
    carbonwrap draws its live view there and relays the job through a pty of its own); every
    byte it writes goes to `capture`. The exit status, or -9 if it ran past `limit_s`."""
    master, slave = pty.openpty()
    # 40 rows of 120 columns: a terminal's size (a new pty has 0 × 0: no room for the live view)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.set_blocking(master, False)
    child = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    deadline = time.monotonic() + limit_s
    with capture.open("wb") as out:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer has closed the slave side
                    chunk = b""
                if not chunk and child.poll() is not None:
                    break
                out.write(chunk)
            elif child.poll() is not None:
                break
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                os.close(master)
                return -9
    os.close(master)
    return child.wait()


def problems(document: dict[str, Any], screen: bytes) -> list[str]:
    """What the run document and the captured terminal lack; empty when all is there."""
    found = []
    gpus = {g["index"]: g for g in document.get("gpus", [])}
    gpu = gpus.get(0)
    if gpu is None:
        return [f"no GPU 0 in the run document (gpu method: {document['methods'].get('gpu')!r})"]
    if gpu["energy_method"] != "nvml-counter":
        found.append(f"GPU 0 energy method {gpu['energy_method']!r}, not nvml-counter")
    if not (gpu["device_energy_kwh"] or 0) > 0:
        found.append("GPU 0 device energy is 0")
    if not (gpu["energy_kwh"] or 0) > 0:
        found.append("GPU 0 attributed energy is 0")
    methods = gpu["attribution_methods"]
    if not any(m != "not-in-use" for m in methods):
        found.append(f"GPU 0 attribution methods show no use: {methods}")
    if not (document["energy_kwh"].get("gpu") or 0) > 0:
        found.append("no GPU energy in the run's total")
    prediction = document.get("prediction") or {}
    if not prediction.get("last"):
        found.append(f"no prediction from the job's progress: {prediction!r}")
    # The live view: frames saved and restored around (DECSC ... DECRC) in a scroll region
    # (DECSTBM) given back at the end (live/view.py); the GPU and CO2e in its lines.
    if not (b"\x1b7" in screen and b"\x1b8" in screen and b"\x1b[r" in screen):
        found.append("the live view never drew on the terminal")
    if b"CO2e" not in screen or b"GPU" not in screen:
        found.append("no CO2e or GPU on the terminal")
    if b"Epoch 10/10" not in screen:
        found.append("the job's own output did not reach the terminal whole")
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=45.0, help="training time to aim at")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--capture", type=Path, default=None, help="the terminal bytes")
    args = parser.parse_args()
    why = needs()
    if why is not None:
        print(f"gpu_train: {why}", file=sys.stderr)
        return 2
    card, driver = card_name()
    stem = f"{dt.date.today().isoformat()}-gpu-train-{card.replace(' ', '_')}"
    out = args.out or REPO / "bench" / "results" / f"{stem}.md"
    capture = args.capture or out.with_suffix(".terminal.txt")
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="0", TERM="xterm-256color")
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp, "report.json")
        argv = [
            sys.executable, "-m", "carbonwrap", "run", "--progress-from-output",
            "--log-dir", tmp, "--json", str(report_path), "--intensity", "400", "--",
            sys.executable, str(HERE / "gpu" / "train.py"), str(args.seconds),
        ]  # fmt: skip
        started = time.monotonic()
        status = run_in_pty(argv, env, capture, limit_s=args.seconds + 120)
        wall_s = time.monotonic() - started
        if status != 0 or not report_path.exists():
            print(f"gpu_train: the run failed (status {status}); terminal in {capture}")
            return 1
        document = json.loads(report_path.read_text())
    screen = capture.read_bytes()
    found = problems(document, screen)
    gpu = next((g for g in document["gpus"] if g["index"] == 0), {})
    last = (document.get("prediction") or {}).get("last") or {}
    lines = [
        f"# GPU training check — {dt.date.today().isoformat()} — {card} (driver {driver})",
        "",
        "Command: `PYTHONPATH=. python3 bench/gpu_train.py`"
        f" (bench/gpu/train.py for ~{args.seconds:.0f} s under `carbonwrap run"
        " --progress-from-output`, in a pseudo-terminal)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| wall time (carbonwrap and the job) | {wall_s:.1f} s |",
        f"| run duration | {document['duration_s']} s |",
        f"| GPU 0 energy method | {gpu.get('energy_method')} |",
        f"| GPU 0 attributed energy | {(gpu.get('energy_kwh') or 0) * 3.6e6:.1f} J |",
        f"| GPU 0 device energy | {(gpu.get('device_energy_kwh') or 0) * 3.6e6:.1f} J |",
        f"| GPU 0 attribution methods (intervals) | {gpu.get('attribution_methods')} |",
        f"| total energy (all components) | {document['energy_kwh']['total'] * 3.6e6:.1f} J |",
        f"| last prediction: done / total | {last.get('done')} / {last.get('total')} "
        f"{last.get('unit')} |",
        f"| last prediction: energy | {(last.get('energy_kwh') or 0) * 3.6e6:.1f} J |",
        f"| last prediction: its energy error | {(last.get('error') or {}).get('energy')} |",
        f"| terminal bytes captured | {len(screen)} |",
        f"| notes | {'; '.join(document.get('notes', [])) or '—'} |",
        "",
        "Result: " + ("PASS" if not found else "FAIL: " + "; ".join(found)),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out.write_text(text)
    print(f"written to {out}; terminal bytes in {capture}")
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())
