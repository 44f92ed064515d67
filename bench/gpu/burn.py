"""A PyTorch matmul burner for the GPU check: holds a CUDA context from its first step to its end.

Usage: burn.py SECONDS RECORD.json — writes the NVML energy counter of its device (mJ) and the
wall time at its first and last step, so the check can compare over exactly its lifetime.
"""

from __future__ import annotations

import json
import sys
import time

import pynvml
import torch


def main() -> None:
    seconds, record = float(sys.argv[1]), sys.argv[2]
    pynvml.nvmlInit()
    device = torch.device("cuda:0")
    handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    torch.cuda.synchronize()
    first = {"t": time.time(), "energy_mj": pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)}
    end = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < end:
        for _ in range(20):
            a = torch.mm(a, b).clamp_(-1, 1)
        torch.cuda.synchronize()
        steps += 20
    last = {"t": time.time(), "energy_mj": pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)}
    with open(record, "w") as f:
        json.dump({"first": first, "last": last, "steps": steps}, f)


if __name__ == "__main__":
    main()
