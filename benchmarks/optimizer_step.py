"""How long the trainer's optimizer step and gradient clipping take for the default model,
in each AdamW implementation torch offers (median of 30 after 3 warm-ups, random grads).

    python benchmarks/optimizer_step.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidpred.model import ModelConfig, STResNet


def median_ms(fn, device: torch.device, reps: int = 30) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    device = torch.device(parser.parse_args().device)
    model = STResNet(ModelConfig()).to(device).train()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    params = list(model.parameters())
    print(f"default model: {sum(p.numel() for p in params):,} parameters in {len(params)} tensors")
    for name, kw in (
        ("for-loop", {"foreach": False}),
        ("foreach", {"foreach": True}),
        ("fused", {"fused": True}),
    ):
        optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4, **kw)
        print(f"AdamW {name:8s} step: {median_ms(optimizer.step, device):6.2f} ms")
    clip = lambda: torch.nn.utils.clip_grad_norm_(params, 1.0)  # noqa: E731
    print(f"clip_grad_norm_:     {median_ms(clip, device):6.2f} ms")


if __name__ == "__main__":
    main()
