"""ST-ResNet for next-frame prediction.

After Zhang et al., "Deep Spatio-Temporal Residual Networks for Citywide Crowd Flows
Prediction" (AAAI 2017): up to three branches see the recent frames (closeness), frames one
or more periods back (period) and frames further back (trend); each branch is
conv -> residual units -> conv, and their outputs are fused with learned weights.

Changes for next-frame prediction on video, and why:
- The network predicts a residual that is added to the last input frame, and the output
  conv of every branch starts at zero, so an untrained model is exactly "copy the last
  frame": training starts from the strongest trivial baseline instead of from noise.
- The paper fuses branches with a learned per-pixel weight matrix, which ties a model to one
  frame size. Here each branch gets a learned per-channel weight, so the model stays fully
  convolutional and runs on frames of any size.
- An optional motion head (``head="warp"``): besides the residual, each branch predicts a
  flow field in pixels, and the last frame is warped along it before the residual is added.
  Moving things then stay sharp instead of being re-synthesised by convolutions; with the
  flow starting at zero, the untrained model is still exactly copy-last.
- An optional base flow (``base_flow="dis"``, with the warp head): the classical optical
  flow of ``vidpred.flow`` (DIS from frame t-1 to t-2) is the warp's starting flow, and the
  network predicts a correction to it and a residual; it also sees that flow as input
  channels, so it can learn where to trust it and where not to move at all. With the output
  convs at zero, the untrained model is exactly the flow baseline instead of copy-last.
  ``base_flow="damped"`` starts from that flow scaled down to half where it turned since
  the pair before (``vidpred.flow.damping``): constant velocity overshoots hand-held jitter.
- An optional space-to-depth stem (pixel_unshuffle by 2) runs the trunk at half resolution:
  a quarter of the compute and twice the receptive field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from .errors import SettingError
from .flow import damping
from .options import check_bounds, option
from .warping import warp, warp_bicubic

BRANCHES = ("trend", "period", "closeness")  # channel order of the model's input, oldest first
HEADS = ("residual", "warp")
BASE_FLOWS = ("none", "dis", "damped")
NORMS = ("none", "batch", "group")
# Flow (pixels) fed to the network as input channels is multiplied by this, so that typical
# motions of a few pixels arrive at the scale of the image channels ([0, 1]).
FLOW_INPUT_SCALE = 0.1

# What each field meant before it existed or before its default changed: a checkpoint that
# lacks a field is read with these values, never with today's defaults (which were chosen
# later, by measurement). The first checkpoints predate ``head``; they are residual models.
LEGACY_MODEL_FIELDS = {
    "frames": 4,
    "width": 64,
    "depth": 4,
    "stem": False,
    "period": 0,
    "period_frames": 0,
    "trend": 0,
    "trend_frames": 0,
    "head": "residual",
    "final_norm": False,
    "norm": "batch",
    "base_flow": "none",
    "blend": False,
    "sharp_warp": False,
    "pool_flow_input": False,
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint."""

    # Defaults chosen by measurement (docs/results.md, "Choosing the defaults"): the stem makes the
    # model 3.6x faster to train and 5x faster to run than the full-resolution 64x4 seed
    # model, which buys more training in a CPU budget and real-time rendering.
    frames: int = option(
        4, "K: past frames stacked as input (the closeness branch)", low=1, high=1000
    )
    width: int = option(64, "channels per branch", low=1, high=4096)
    depth: int = option(6, "residual units per branch", low=0, high=1000)
    stem: bool = option(
        True, "space-to-depth stem: the trunk runs at half resolution (4x less compute)"
    )
    # Normalisation in the residual units: +2.3 to +3.4 dB over none (docs/results.md,
    # "Choosing the defaults"). With the flow start and the weight average, batch norm
    # measured ahead of group norm on natural footage (docs/results.md, "Ablation of the
    # current design": +0.49 against +0.25 dB over the flow baseline, 3 seeds) and passes the
    # brightness/contrast test (tests/test_flow.py) that running statistics once failed.
    norm: str = option(
        "batch",
        "normalisation in the residual units: batch: BatchNorm (running statistics at "
        "inference); group: GroupNorm (the same statistics in training and inference); none",
        choices=NORMS,
    )
    # Pre-activation ResNets end with a normalisation before the last ReLU. Without it that
    # ReLU died in every run we checked: all inputs negative, so no gradient reached the
    # trunk again and the model froze at copy-last.
    final_norm: bool = option(
        True,
        "with a --norm: normalise before the trunk's last ReLU too "
        "(without it that ReLU can die and freeze the model at copy-last)",
    )
    period: int = option(0, "period branch spacing in frames (0 = off)", low=0, high=100_000)
    period_frames: int = option(
        0, "frames the period branch sees (2 when --period is set)", low=0, high=1000
    )
    trend: int = option(0, "trend branch spacing in frames (0 = off)", low=0, high=100_000)
    trend_frames: int = option(
        0, "frames the trend branch sees (2 when --trend is set)", low=0, high=1000
    )
    head: str = option(
        "warp",
        "residual: last frame + residual; warp: last frame warped along a predicted flow "
        "+ residual",
        choices=HEADS,
    )
    # The classical flow is vidpred.flow's.
    base_flow: str = option(
        "damped",
        "with --head warp: dis starts the warp from the classical DIS optical flow "
        "(the untrained model equals the flow baseline); damped from that flow halved "
        "where it turned since the pair of frames before (jitter); none from zero flow "
        "(copy-last)",
        choices=BASE_FLOWS,
    )
    # Where a frame repeats or the flow is wrong, not moving is the better guess, and a
    # blend learns that directly: 1 = the warped frame, 0 = the last frame unmoved, up to
    # 2 = twice the change; it starts at 1.
    blend: bool = option(
        True,
        "with --head warp: a learned per-pixel blend between the warped and the unmoved "
        "last frame (learns where not to move)",
    )

    # Bilinear resampling blurs texture that moves by a fraction of a pixel; a sharper
    # kernel keeps it but amplifies noise and flow errors (measured on the flow baseline:
    # bicubic +0.22..+0.45 dB on hand-held objects, -0.20..-0.26 on foliage and a still
    # street), so the model mixes the two per pixel. It starts at bilinear. On the dev set
    # it gained +0.41 and +0.43 dB over the bilinear warp alone in two seeds
    # (docs/results.md, "Choosing the defaults").
    sharp_warp: bool = option(
        True,
        "with --head warp: a learned per-pixel mix between the bilinear warp and a bicubic "
        "one (sharper where the flow is right)",
    )

    # The flow the network sees, 2x2-averaged to the trunk's resolution instead of split into
    # sub-pixel channels: 3 input channels instead of 12, 0.043 GFLOP less a frame at 96x172
    # (4.00 instead of 4.04), which pays for the damped start's extra input. Measured level
    # on the dev set and 0.16 dB lower on the samples (docs/results.md, "Jitter").
    pool_flow_input: bool = option(
        True,
        "with --stem and a base flow: the network sees the flow averaged over 2x2 pixels, "
        "at the trunk's resolution (fewer input channels), instead of every pixel's",
    )

    def __post_init__(self):
        check_bounds(self)
        if self.uses_flow and self.frames < self.flow_pairs + 1:
            if self.base_flow == "damped":
                raise SettingError(
                    lambda n: (
                        f"a damped base flow needs at least 3 frames ({n('frames')} 3 or "
                        f"more, or {n('base_flow')} dis)"
                    )
                )
            raise SettingError(
                lambda n: f"a base flow needs at least 2 frames ({n('frames')} 2 or more)"
            )
        for name in ("period", "trend"):
            spacing, count = getattr(self, name), getattr(self, f"{name}_frames")
            if (spacing > 0) != (count > 0):
                raise SettingError(
                    lambda n, branch=name: (
                        f"{n(branch)} and {n(branch + '_frames')} must both be positive or both 0"
                    )
                )

    def branch_offsets(self) -> dict[str, list[int]]:
        """Returns, per active branch, the input frames' offsets from the target, oldest first.

        The target is frame t; closeness sees t-K .. t-1, period sees t-P*Kp .. t-P (step P),
        trend likewise with its own spacing.
        """
        offsets = {}
        if self.trend:
            offsets["trend"] = [-self.trend * j for j in range(self.trend_frames, 0, -1)]
        if self.period:
            offsets["period"] = [-self.period * j for j in range(self.period_frames, 0, -1)]
        offsets["closeness"] = list(range(-self.frames, 0))
        return offsets

    def input_offsets(self) -> list[int]:
        """Returns the offsets of all input frames in the model's channel order."""
        return [o for branch in BRANCHES for o in self.branch_offsets().get(branch, [])]

    @property
    def history(self) -> int:
        """How many frames before the target the model needs (the first target index)."""
        return -min(self.input_offsets())

    @property
    def uses_flow(self) -> bool:
        """Whether the model takes the base flow of ``vidpred.flow`` as a second input."""
        # Only the warp head has a flow to start from: like blend and sharp_warp, base_flow
        # means nothing to a residual model.
        return self.head == "warp" and self.base_flow != "none"

    @property
    def flow_pairs(self) -> int:
        """How many frame pairs' flows the model takes (``vidpred.flow.model_flows``): the
        damped start also compares the pair before the last one; 0 without a base flow."""
        if not self.uses_flow:
            return 0
        return 2 if self.base_flow == "damped" else 1

    def to_dict(self) -> dict:
        return asdict(self)


def legacy_model_values(values: dict) -> dict:
    """Returns a stored model configuration in today's fields: checkpoints written before
    ``norm`` could be "none" said ``batch_norm`` (False: no normalisation, whatever ``norm``
    said), and the oldest say neither (no normalisation). Fields added later read as
    LEGACY_MODEL_FIELDS says they meant."""
    values = dict(values)
    if "batch_norm" in values:
        if values.pop("batch_norm") is False:
            values["norm"] = "none"
    elif "norm" not in values:  # from before batch norm existed
        values["norm"] = "none"
    return {**LEGACY_MODEL_FIELDS, **values}


def flow_features(config: ModelConfig) -> int:
    """Returns how many features per pixel the network sees of the base flow: its 2
    components, and with the damped start a third, how much the start damped it
    (``STResNet.motion``); 0 without a base flow."""
    if not config.uses_flow:
        return 0
    return 3 if config.base_flow == "damped" else 2


def flow_input_channels(config: ModelConfig) -> int:
    """Returns how many input channels of the closeness branch's trunk carry the flow."""
    return flow_features(config) * flow_input_cells(config)


def flow_input_cells(config: ModelConfig) -> int:
    """Returns how many trunk channels each per-pixel flow feature takes: 4 where the stem
    splits it into its 2x2 sub-pixels, 1 where it is pooled or there is no stem."""
    return 1 if config.pool_flow_input or not config.stem else 4


def norm_layer(config: ModelConfig, width: int) -> nn.Module:
    """Returns the configured normalisation of ``width`` channels."""
    if config.norm == "group":
        # 8 groups measured no worse than 16 or 32 on 64 channels; GroupNorm has no running
        # statistics, so inference normalises exactly as training did.
        return nn.GroupNorm(min(8, width), width)
    return nn.BatchNorm2d(width)


class ResidualUnit(nn.Module):
    """x + conv(relu(conv(relu(x)))), optionally with batch norm before each ReLU (as in the
    paper)."""

    def __init__(self, width: int, config: ModelConfig):
        super().__init__()
        norm = (lambda: norm_layer(config, width)) if config.norm != "none" else nn.Identity
        self.body = nn.Sequential(
            norm(),
            nn.ReLU(inplace=False),
            nn.Conv2d(width, width, 3, padding=1),
            norm(),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Branch(nn.Module):
    """conv -> residual units -> [BN] -> ReLU -> conv; maps stacked frames to a residual image."""

    def __init__(self, in_channels: int, out_channels: int, config: ModelConfig):
        super().__init__()
        self.head = nn.Conv2d(in_channels, config.width, 3, padding=1)
        self.units = nn.Sequential(
            *(ResidualUnit(config.width, config) for _ in range(config.depth))
        )
        final_norm = config.norm != "none" and config.final_norm
        self.norm = norm_layer(config, config.width) if final_norm else nn.Identity()
        self.tail = nn.Conv2d(config.width, out_channels, 3, padding=1)
        # Zero output: an untrained branch adds nothing, so the model starts as copy-last.
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(F.relu(self.norm(self.units(self.head(x)))))


class STResNet(nn.Module):
    """Predicts the next frame from stacked past frames.

    Input: float32 [0, 1] (B, 3*N, H, W), the N = len(config.input_offsets()) frames stacked
    as channels in that order (trend, period, closeness; oldest first within each), so the
    last three channels are the most recent frame. H and W must be even with the stem.
    Output: float32 [0, 1] (B, 3, H, W), the predicted next frame.

    With ``config.uses_flow`` it also takes ``flow``, float32 (B, 2P, H, W) with P =
    ``config.flow_pairs`` (``vidpred.flow.model_flows``): the base flow (dx, dy) in pixels
    from the last frame to the one before, then (damped start) from that one to the one
    before it. The warp starts from ``start_flow``.

    Each branch outputs the residual (3 channels per pixel of the full-resolution frame,
    i.e. 3 * scale^2 at trunk resolution) and, with the warp head, 2 flow channels (the
    whole flow, or with a base flow the correction to it).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.scale = 2 if config.stem else 1
        per_frame = 3 * self.scale**2  # channels of one frame after space-to-depth
        self.flow_channels = 2 if config.head == "warp" else 0
        # One blend weight per full-resolution pixel (s^2 channels at trunk resolution).
        self.blend_channels = self.scale**2 if config.head == "warp" and config.blend else 0
        # One bicubic mix weight per full-resolution pixel, likewise.
        self.sharp_channels = self.scale**2 if config.head == "warp" and config.sharp_warp else 0
        out_channels = per_frame + self.flow_channels + self.blend_channels + self.sharp_channels
        self.branch_frames = {name: len(o) for name, o in config.branch_offsets().items()}
        self.flow_inputs = flow_input_channels(config)
        self.branches = nn.ModuleDict(
            {
                name: Branch(
                    n * per_frame + (self.flow_inputs if name == "closeness" else 0),
                    out_channels,
                    config,
                )
                for name, n in self.branch_frames.items()
            }
        )
        # Per-channel fusion weights, the fully convolutional stand-in for the paper's
        # per-pixel weight matrices.
        self.fusion = nn.ParameterDict(
            {name: nn.Parameter(torch.ones(out_channels, 1, 1)) for name in self.branch_frames}
        )

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        return compose(x[:, -3:], self.motion(x, flow))

    def motion(self, x: torch.Tensor, flow: torch.Tensor | None = None) -> Motion:
        """Returns what the model predicts for the next frame, before it is applied to the
        last frame (``compose``): the flow, the blend weight and the residual, all at the
        input's resolution. Inputs as ``forward``."""
        pairs = self.config.flow_pairs
        if pairs and (flow is None or flow.shape[1] != 2 * pairs):
            raise ValueError(
                f"this model starts from a base flow: pass flow (B, {2 * pairs}, H, W) "
                "(vidpred.flow.model_flows)"
            )
        start = features = None
        if pairs:
            start, scale = start_flow(self.config, flow)
            features = flow[:, :2].float() * FLOW_INPUT_SCALE  # t-1 -> t-2, undamped
            if scale is not None:
                # The network sees the undamped flow and how much the start damped it (0: not
                # at all, 1: halved): from the damped flow alone it cannot tell a slow motion
                # from a damped one. Measured on the dev set (1550 steps, seed 0), seeing
                # only the damped flow gained 0.23 dB less (docs/results.md, "Jitter").
                features = torch.cat([features, 2.0 * (1.0 - scale)], 1)
        fused = self._fused(x, features)
        per_frame = 3 * self.scale**2
        residual = fused[:, :per_frame]  # (B, 3*s^2, H/s, W/s)
        if self.scale > 1:
            residual = F.pixel_shuffle(residual, self.scale)  # (B, 3, H, W)
        if not self.flow_channels:
            return Motion(residual=residual)
        predicted = fused[:, per_frame : per_frame + 2]  # (B, 2, H/s, W/s), trunk pixels
        if self.scale > 1:
            predicted = F.interpolate(predicted, scale_factor=self.scale, mode="bilinear")
            predicted = self.scale * predicted  # pixels at full resolution
        if start is not None:
            predicted = start + predicted  # a correction of the start
        start = per_frame + 2
        blend = sharpness = None
        if self.blend_channels:
            # (B, s^2, H/s, W/s), 0 at initialisation
            blend = fused[:, start : start + self.blend_channels]
            if self.scale > 1:
                blend = F.pixel_shuffle(blend, self.scale)  # (B, 1, H, W)
            start += self.blend_channels
        if self.sharp_channels:
            sharpness = fused[:, start : start + self.sharp_channels]  # 0 at initialisation
            if self.scale > 1:
                sharpness = F.pixel_shuffle(sharpness, self.scale)  # (B, 1, H, W)
        return Motion(residual=residual, flow=predicted, blend=blend, sharpness=sharpness)

    def _fused(self, x: torch.Tensor, flow_features: torch.Tensor | None) -> torch.Tensor:
        """Returns the branches' outputs fused: (B, 3s^2 + flow + blend channels, H/s, W/s).
        ``flow_features``: what the closeness branch sees of the flow (B, 2 or 3, H, W), or
        None."""
        if self.scale > 1:
            x = F.pixel_unshuffle(
                x, self.scale
            )  # (B, 3N*4, H/2, W/2); frame f -> channels 12f..12f+11
        per_frame = 3 * self.scale**2
        fused = 0
        start = 0
        for name in BRANCHES:
            if name not in self.branches:
                continue
            stop = start + self.branch_frames[name] * per_frame
            branch_input = x[:, start:stop]
            if name == "closeness" and self.flow_inputs:
                features = flow_features.to(x.dtype)
                if self.scale > 1 and self.config.pool_flow_input:
                    features = F.avg_pool2d(features, self.scale)  # (B, 2 or 3, H/2, W/2)
                elif self.scale > 1:
                    # (B, 8 or 12, H/2, W/2); feature c -> channels 4c..4c+3
                    features = F.pixel_unshuffle(features, self.scale)
                branch_input = torch.cat([branch_input, features], 1)
            fused = fused + self.fusion[name] * self.branches[name](branch_input)
            start = stop
        return fused


# Model options whose weights can be carried over by ``weights_for_inputs``.
REFITTABLE = ("base_flow", "pool_flow_input")


def weights_for_inputs(
    state: dict[str, torch.Tensor], config: ModelConfig, target: ModelConfig
) -> dict[str, torch.Tensor]:
    """Returns the weights ``state`` of a ``config`` model fitted to ``target``, the same
    model that sees the flow differently: another start ("dis" <-> "damped") or the flow
    pooled to the trunk's resolution or not (``REFITTABLE``). Only the closeness branch's
    first conv differs, in its flow columns (after the frames'):
    - the damped start's network also sees how much the start damped the flow; that input
      gets zero weights, so the network computes what it did; going back, it is dropped;
    - a pooled input's weight is the sum of its 2x2 sub-pixels' weights (the same output
      where the flow is even over each 2x2 block); unpooling splits it in four (exactly the
      same output).

    Raises:
        ValueError: ``target`` differs from ``config`` in more than ``REFITTABLE``, or
            one of them has no base flow and the other has.
    """
    if replace(target, **{name: getattr(config, name) for name in REFITTABLE}) != config:
        raise ValueError("only the base flow and the pooling of the flow input can change")
    if not (config.uses_flow or target.uses_flow):
        return dict(state)  # neither sees a flow: pooling it changes nothing
    if not (config.uses_flow and target.uses_flow):
        raise ValueError(
            f"only models that start from a base flow (dis or damped) can change how they see "
            f"it, not base flow {config.base_flow!r} to {target.base_flow!r}"
        )
    key = "branches.closeness.head.weight"  # (out, frame channels + flow channels, 3, 3)
    weight = state[key]
    frame_channels = weight.shape[1] - flow_input_channels(config)
    frames, flow = weight[:, :frame_channels], weight[:, frame_channels:]
    old_cells, new_cells = flow_input_cells(config), flow_input_cells(target)
    # (out, per-pixel feature, sub-pixel cell, 3, 3)
    flow = flow.reshape(flow.shape[0], -1, old_cells, *flow.shape[2:])
    if new_cells < old_cells:
        flow = flow.sum(2, keepdim=True)
    elif new_cells > old_cells:
        flow = flow.expand(-1, -1, new_cells, -1, -1) / new_cells
    features = flow_features(target)
    if features > flow.shape[1]:
        flow = torch.cat(
            [flow, flow.new_zeros(flow.shape[0], features - flow.shape[1], *flow.shape[2:])], 1
        )
    flow = flow[:, :features].reshape(flow.shape[0], -1, *flow.shape[3:])
    fitted = dict(state)
    fitted[key] = torch.cat([frames, flow], 1).contiguous()
    return fitted


def start_flow(
    config: ModelConfig, flows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Returns (the flow the warp starts from, float32 (B, 2, H, W); the damped start's
    per-pixel scale of the base flow, float32 (B, 1, H, W) in [0.5, 1]
    (``vidpred.flow.damping``), or None where the start is the base flow itself).
    ``flows``: ``vidpred.flow.model_flows`` for ``config``; channels 0-1 are the base flow."""
    base = flows[:, :2].float()
    if config.base_flow != "damped":
        return base, None
    scale = damping(base, flows[:, 2:4])
    return base * scale, scale


@dataclass
class Motion:
    """The model's prediction of the next frame as parts, float (B, C, H, W) at one
    resolution: ``compose`` applies them to the last frame. Because the flow is in pixels
    and the residual is smooth, they can be resized to another resolution first
    (``vidpred.native``)."""

    residual: torch.Tensor  # (B, 3, H, W), added last
    flow: torch.Tensor | None = None  # (B, 2, H, W): (dx, dy) in pixels; None: no warp head
    blend: torch.Tensor | None = None  # (B, 1, H, W): how much of the warp, minus 1
    # (B, 1, H, W): how much of the bicubic warp instead of the bilinear one; None: bilinear
    sharpness: torch.Tensor | None = None


def compose(last: torch.Tensor, motion: Motion) -> torch.Tensor:
    """Returns the predicted frame, float [0, 1] (B, 3, H, W): ``last`` (B, 3, H, W) warped
    along the flow, blended, plus the residual."""
    base = last
    if motion.flow is not None:
        base = warp(last, motion.flow)  # (B, 3, H, W)
        if motion.sharpness is not None:
            # Weight exactly 0 returns the bilinear warp bit for bit (the untrained model is
            # still its base). Negative weights, down to -1, blur past bilinear (noise).
            sharp = warp_bicubic(last, motion.flow)
            base = torch.lerp(base, sharp, motion.sharpness.clamp(-1.0, 1.0))
        if motion.blend is not None:
            # lerp with weight exactly 1 returns the warped frame bit for bit, so the
            # untrained model is still exactly its base (copy-last or the flow baseline).
            # The upper bound is 2, not 1: clamp passes no gradient at its bounds, and
            # at 1 the blend would never start to learn (measured: its weights stayed 0).
            base = torch.lerp(last, base, (1.0 + motion.blend).clamp(0.0, 2.0))
    return (base + motion.residual).clamp(0.0, 1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
