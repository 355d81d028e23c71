"""Training samples/s of the default model by batch size, and the batch `vidpred train`
would choose here (``vidpred.tuning.choose_batch``) when none is given.

Times the forward and backward pass on random 64x64 crops already on the device
(``vidpred.tuning.training_step_rate``: median of 4 steps after 2), in fp32 and, where the
device has bf16 units, bf16; ``--rounds`` repeats the sweep so noise shows.

    python benchmarks/batch_sizes.py [--device cpu|cuda] [--rounds 2]
"""

from __future__ import annotations

import argparse

import torch

from vidpred.model import ModelConfig
from vidpred.tuning import (
    BATCH_LADDER,
    arithmetic_for,
    has_bf16_units,
    measure_batch,
    training_step_rate,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    channels_last = arithmetic_for(device).channels_last
    batches = (4, 8, 16, 32) if device.type == "cpu" else BATCH_LADDER
    for round_ in range(args.rounds):
        for bf16 in (False, True) if has_bf16_units(device) else (False,):
            rates = []
            for batch in batches:
                try:
                    rates.append(
                        f"{batch}: {training_step_rate(device, bf16, channels_last, batch):.1f}"
                    )
                except torch.cuda.OutOfMemoryError:
                    rates.append(f"{batch}: out of memory")
                    break
            precision = "bf16" if bf16 else "fp32"
            print(
                f"round {round_ + 1}, {precision}, samples/s by batch: {', '.join(rates)}",
                flush=True,
            )
    if device.type == "cuda":
        choice = measure_batch(
            device, "auto", ModelConfig(), (64, 64), BATCH_LADDER, channels_last=channels_last
        )
        print(f"vidpred train would take {choice.rule}")


if __name__ == "__main__":
    main()
