"""Training samples/s of the default model on a GPU: batch size x precision x torch.compile.

`vidpred bench` measures the shipped defaults (batch 8, 64x64 crops), which leave a large
GPU mostly idle; this sweep shows what larger batches reach. Batches are random tensors
already on the GPU, so this is the compute ceiling, not the loader. One JSON line per run.

    python benchmarks/gpu_sweep.py [--device cuda] [--seconds 4]
"""

import argparse
import json
import time

import torch
from torch.nn import functional as F

from vidpred.model import ModelConfig, STResNet


def samples_per_s(batch: int, bf16: bool, compiled: bool, device: str, seconds: float) -> float:
    torch.manual_seed(0)
    model = STResNet(ModelConfig()).to(device).train().to(memory_format=torch.channels_last)
    net = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 12, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    flow = torch.randn(batch, 2, 64, 64, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.rand(batch, 3, 64, 64, device=device)

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.l1_loss(net(x, flow).float(), y)  # the default model starts from a flow
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):  # warm-up (and compilation)
        step()
    torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
        if steps % 10 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    runs = [(b, bf16, False) for b in (8, 32, 128, 512) for bf16 in (False, True)]
    runs += [(b, True, True) for b in (32, 512)]
    for batch, bf16, compiled in runs:
        rate = samples_per_s(batch, bf16, compiled, args.device, args.seconds)
        row = {"batch": batch, "bf16": bf16, "compile": compiled, "samples_per_s": round(rate, 1)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
