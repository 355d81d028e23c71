"""What the trainer minimises: the training losses (named in vidpred.metrics.LOSSES), of one
prediction or of a rollout of several (``step_loss``)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .data import windows_to_inputs
from .flow import pair_flows
from .predict import quantize

# Huber (smooth L1) switches from quadratic to linear at this error: above compression noise
# (about 1-2 levels of 255), below the errors that motion makes.
HUBER_BETA = 0.02


def compute_loss(name: str, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the training loss ``name`` (one of LOSSES) of a prediction, a 0-dim tensor."""
    if name == "l1":
        return F.l1_loss(prediction, target)
    if name == "mse":
        return F.mse_loss(prediction, target)
    if name == "l1_grad":
        # L1 plus L1 of the horizontal and vertical differences (SDC-Net's loss, without
        # its flow smoothness): a blurred edge costs twice, once in each term.
        return F.l1_loss(prediction, target) + F.l1_loss(
            _differences(prediction), _differences(target)
        )
    return F.smooth_l1_loss(prediction, target, beta=HUBER_BETA)


# log_l1_loss's floor on a sample's mean absolute error: a fortieth of one level of 255, far
# below the noise of any decoded video, so it only keeps log() finite on an exact prediction.
LOG_L1_FLOOR = 1e-4


def log_l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the mean over samples of log10 of each sample's mean absolute error, a 0-dim
    tensor; prediction and target float (B, C, H, W).

    Each sample's error counts relative to its own size, as it does in a mean of PSNRs over
    frames, where halving a small error is worth as much as halving a large one; plain L1
    weighs samples by their absolute error, so a few hard frames outvote many easy ones.
    """
    error = (prediction - target).abs().flatten(1).mean(1)  # (B,)
    return torch.log10(error + LOG_L1_FLOOR).mean()


def _differences(images: torch.Tensor) -> torch.Tensor:
    """Returns the neighbour differences of float (B, C, H, W) images, flattened: (B, N)."""
    dx = images[..., :, 1:] - images[..., :, :-1]  # (B, C, H, W-1)
    dy = images[..., 1:, :] - images[..., :-1, :]  # (B, C, H-1, W)
    return torch.cat([dx.flatten(1), dy.flatten(1)], 1)


def step_loss(
    name: str,
    net: torch.nn.Module,
    inputs: torch.Tensor,
    flows: torch.Tensor | None,
    targets: torch.Tensor,
) -> torch.Tensor:
    """Returns a training step's loss ``name``: of the one prediction of ``targets`` (b, 3,
    c, c), or with U > 1 targets (b, 3U, c, c, oldest first) the mean of the losses of a
    rollout of U predictions (``predict_unrolled``). Inputs as ``predict_unrolled``'s."""
    steps = targets.shape[1] // 3
    predictions = predict_unrolled(net, inputs, flows, steps)
    losses = [
        compute_loss(name, pred, targets[:, 3 * k : 3 * k + 3])
        for k, pred in enumerate(predictions)
    ]
    return losses[0] if steps == 1 else torch.stack(losses).mean()


def predict_unrolled(
    net: torch.nn.Module, inputs: torch.Tensor, flows: torch.Tensor | None, steps: int
) -> list[torch.Tensor]:
    """Returns the predictions float32 (b, 3, c, c) of ``steps`` consecutive frames, made
    the way a rollout makes them (``vidpred.predict.Predictor.rollout``): each prediction,
    rounded to uint8 values, becomes the next step's newest input, and the next step's base
    flow is DIS's between it and the frame before. The rounding passes the gradient
    straight through, so a later step's loss also trains the steps that fed it.

    Args:
        net: the model, or it wrapped for training.
        inputs: float32 [0, 1] (b, 3K, c, c), the K closeness frames oldest first (a model
            without period or trend branches: ``WindowDataset`` checks).
        flows: the first step's flows float32 (b, 2P, c, c) (``vidpred.flow.model_flows``),
            or None without a base flow.
    """
    predictions = []
    layout = _layout_of(inputs)
    last = quantize(inputs[:, -3:].detach())  # the newest frame, uint8 RGB (b, c, c, 3)
    for k in range(steps):
        pred = net(inputs, flows).float()
        predictions.append(pred)
        if k + 1 == steps:
            break
        frame = quantize(pred.detach())  # as a rollout feeds it back
        # Its values forward, the prediction's gradient backward (straight through).
        rounded = pred + (windows_to_inputs(frame[:, None]) - pred).detach()
        if flows is not None:  # DIS runs on the CPU; the newest pair first, then the older
            newest = pair_flows(frame, last).to(inputs.device, memory_format=layout)
            flows = torch.cat([newest, flows[:, :-2]], 1)
        inputs = torch.cat([inputs[:, 3:], rounded.to(inputs.dtype)], 1)
        last = frame
    return predictions


def _layout_of(tensor: torch.Tensor) -> torch.memory_format:
    channels_last = tensor.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format
