"""One short CUDA job for bench/gpu/accounting_check.py: a context held for about a second."""

import torch

x = torch.randn(4096, 4096, device="cuda:0")
for _ in range(200):
    x = torch.mm(x, x).clamp_(-1, 1)
torch.cuda.synchronize()
