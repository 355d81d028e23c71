"""Training samples/s (64x64 crops, batch 8) and inference frames/s (96x128, batch 8) of
model configurations: the measurement behind the default width/depth/stem.

    python benchmarks/model_speed.py
"""

import time

import torch

from vidpred.model import ModelConfig, STResNet, count_parameters

torch.manual_seed(0)


def bench(cfg):
    m = STResNet(cfg)
    for p in m.branches["closeness"].tail.parameters():
        torch.nn.init.normal_(p, std=0.01)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.rand(8, 12, 64, 64)
    y = torch.rand(8, 3, 64, 64)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.l1_loss(m(x), y).backward()
        opt.step()
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.l1_loss(m(x), y).backward()
            opt.step()
        ts.append((time.perf_counter() - t) / 5)
    train_sps = 8 / min(ts)
    m.eval()
    xi = torch.rand(8, 12, 96, 128)
    with torch.inference_mode():
        m(xi)
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            m(xi)
            ts.append(time.perf_counter() - t)
    print(
        f"{cfg.width:3d} w {cfg.depth} d stem={cfg.stem!s:5} head={cfg.head:8} "
        f"params={count_parameters(m):7d} train {train_sps:6.1f} samples/s  "
        f"infer96x128 {8 / min(ts):6.1f} fps",
        flush=True,
    )


CONFIGS = [
    ModelConfig(width=64, depth=4, stem=False, head="residual"),
    ModelConfig(width=32, depth=4, stem=False, head="residual"),
    ModelConfig(width=64, depth=6, stem=True, head="residual"),
    ModelConfig(width=64, depth=6, stem=True, head="warp", base_flow="none"),
    ModelConfig(width=96, depth=6, stem=True, head="warp", base_flow="none"),
]
for cfg in CONFIGS:
    bench(cfg)
