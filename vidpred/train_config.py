"""How to train: the settings every checkpoint stores (``TrainConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import LOSSES
from .options import COUNT, check_bounds, not_an_option, option
from .precision import DEVICES, PRECISIONS

# The longest rollout a training step unrolls: each step holds its activations for the
# backward pass, so memory grows with it.
MAX_UNROLL = 16


@dataclass(frozen=True)
class TrainConfig:
    """How to train; stored in every checkpoint. Training stops at the first limit reached.

    A resumed run keeps every field but the stop limits, the device and the precision
    (``may_change_on_resume``), so it continues exactly as the run would have gone on.
    """

    epochs: int | None = option(
        None, "passes over the training windows", low=1, high=COUNT, may_change_on_resume=True
    )
    steps: int | None = option(
        None, "optimizer steps", low=1, high=COUNT, may_change_on_resume=True
    )
    time_limit: float | None = option(
        None,
        "wall-clock budget, validation included",
        low=0,
        low_open=True,
        metavar="MINUTES",
        may_change_on_resume=True,
    )
    batch_size: int | None = option(
        None,
        "global batch; torchrun splits it evenly among processes. Default: 8 on a CPU; on "
        "CUDA the smallest that trains within 90%% of the fastest measured (vidpred.tuning)",
        low=1,
        high=COUNT,  # and a batch must fit (data.MAX_BATCH_BYTES)
    )
    lr: float = option(1e-3, "peak learning rate (AdamW)", low=0, low_open=True)
    weight_decay: float = not_an_option(1e-4, low=0)
    warmup_steps: int = not_an_option(100, low=0, high=COUNT)
    # the cosine ends here (times lr), not at 0
    min_lr_fraction: float = not_an_option(0.05, low=0, high=1)
    # L1 measured ahead of MSE on the samples and on natural footage (docs/results.md,
    # "Choosing the defaults": the loss).
    loss: str = option(
        "l1",
        "training loss (huber: smooth L1; l1_grad: L1 + L1 of the image's neighbour differences)",
        choices=LOSSES,
    )
    # One-step training never sees its own mistakes, which a rollout (--horizon, render
    # --extend) feeds back into every later step; training on rollouts does.
    unroll: int = option(
        1,
        "train on rollouts of N steps: each prediction, rounded to uint8 as in a rollout, "
        "is the next step's newest input, with a loss on every step (1 = one step)",
        low=1,
        high=MAX_UNROLL,
        metavar="N",
    )
    grad_clip: float = not_an_option(1.0, low=0, low_open=True)
    # The data order seeds torch with seed * 1_000_003 + epoch, which must stay in 64 bits.
    seed: int = option(
        0, "seeds the initial weights and the order of the training data", low=0, high=2**32 - 1
    )
    device: str = option(
        "auto",
        "auto: CUDA when present, else the CPU",
        choices=DEVICES,
        may_change_on_resume=True,
    )
    precision: str = option(
        "auto",
        "model arithmetic; auto = bf16 autocast where it measured faster than fp32 on this "
        "machine (measured once, vidpred.tuning)",
        choices=PRECISIONS,
        may_change_on_resume=True,
    )
    val_max: int = not_an_option(256, low=0, high=COUNT)  # validation targets per epoch
    # It smooths out the last steps' noise, so the weights a user gets do not depend on
    # where the time limit cut.
    ema: float = option(
        0.999,
        "checkpoints hold the exponential moving average of the weights with this decay "
        "(0 = the last step's weights)",
        low=0,
        high=1,
        high_open=True,
        metavar="DECAY",
    )

    def __post_init__(self):
        check_bounds(self)
        if self.epochs is None and self.steps is None and self.time_limit is None:
            raise ValueError("set at least one of epochs, steps, time_limit")


# What a TrainConfig field meant before it existed: resuming an older run keeps its behaviour.
LEGACY_TRAIN_FIELDS = {"ema": 0.0, "val_max": 64, "unroll": 1}
