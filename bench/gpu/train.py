"""A small real PyTorch training job for bench/gpu_train.py: a CNN on random images on GPU 0.

Usage: train.py SECONDS — warms up, times its steps, then trains as many steps as fit in about
SECONDS (at least 200), in 10 epochs. It reports its progress both ways carbonwrap reads it: a
tqdm bar per epoch on stderr (`--progress-from-output`) and `carbonwrap.progress()` per step
(CARBONWRAP_PROGRESS), so the live view and the run's predictions have something to go by.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

import carbonwrap

try:
    from tqdm import tqdm
except ImportError:  # plain "Epoch N/M" lines, which --progress-from-output reads too
    tqdm = None

EPOCHS = 10
BATCH = 256


def model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


def main() -> None:
    seconds = float(sys.argv[1])
    device = torch.device("cuda:0")
    net = model().to(device)
    optimiser = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.randn(BATCH, 3, 96, 96, device=device)
    labels = torch.randint(0, 10, (BATCH,), device=device)

    def step() -> float:
        optimiser.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(net(images), labels)
        loss.backward()
        optimiser.step()
        return float(loss.detach())

    for _ in range(5):  # warm-up: cuDNN picks its algorithms
        step()
    torch.cuda.synchronize()
    started = time.monotonic()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    step_s = (time.monotonic() - started) / 10
    per_epoch = max(20, int(seconds / step_s / EPOCHS))
    total = per_epoch * EPOCHS
    print(f"{total} steps of ~{step_s * 1000:.1f} ms in {EPOCHS} epochs", flush=True)
    done = 0
    for epoch in range(1, EPOCHS + 1):
        steps = range(per_epoch)
        if tqdm is not None:
            steps = tqdm(steps, desc=f"epoch {epoch}/{EPOCHS}", file=sys.stderr)
        for _ in steps:
            loss = step()
            done += 1
            carbonwrap.progress(done, total, "step")
        print(f"Epoch {epoch}/{EPOCHS} loss {loss:.4f}", flush=True)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
