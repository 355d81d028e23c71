"""A causal per-clip gate between the model and the flow baseline.

A model trained on other footage can be worse than the flow it starts from on a clip unlike
its training mix: the shipped weights' learned blend with the unmoved frame cost 6 dB on two
photo-textured clips of the dev set, and a model trained on the dev set itself hedged with it
on every clip (-1.1 to -2.2 dB on four clips without repeated frames) to gain on clips with
them (docs/results.md, "Dev set"). Which of the two is right for a clip shows in the frames
already seen: at frame t, the gate compares the PSNR of the model and of the flow baseline on
the last ``window`` frames before t, and shows the flow's prediction of t where the model
trailed by more than ``GATE_MARGIN_DB`` there. Each decision uses only frames before t, which
any predictor has by then, so it is as causal as the model itself.

Given the last frame too, the gate also shows it (copy-last) where the clip's cadence of
repeated frames says frame t repeats frame t-1 (``vidpred.cadence``): neither the flow nor a
model that sees the last K frames can know that, and a repeat is predicted exactly by the last
frame.

Rollouts are gated the same way, one gate per number of steps ahead: a k-step prediction of
frame t is made at frame t-k, when only the k-step predictions of frames up to t-k can be
scored, so each difference joins the gate's window k-1 frames later than a one-step one.
"""

from __future__ import annotations

from collections import deque

import torch

from .cadence import RepeatCadence, repeats, repeats_scored
from .metrics import psnr

# Frames the gate looks back over, and how far (mean dB) the model may trail the flow there
# before the flow is shown. Chosen on the dev set (docs/results.md): windows of 8-24 frames
# all lifted the worst clip from -2.2 to within 0.12 dB of the flow; 12 with 0.1 dB was best.
DEFAULT_GATE_WINDOW = 12
GATE_MARGIN_DB = 0.1


class FlowGate:
    """Chooses, frame by frame in clip order, the model's or the flow baseline's prediction.

    One gate per clip (and per number of steps ahead): it remembers the last ``window``
    frames' PSNR difference (model minus flow) that were known when the prediction was made.
    Until it knows one it shows the model. Given the last frames (``choose``'s ``last``),
    one-step gates also follow the clip's cadence of repeated frames (``vidpred.cadence``).

    Args:
        window: how many past frames' differences it averages.
        margin_db: how far (mean dB) the model may trail the flow before the flow is shown;
            negative: how far it must lead the flow to be shown.
        steps: how many steps ahead the predictions it chooses between are (1: one-step; k:
            both are k-step rollouts, made at frame t-k without frames t-k+1 .. t).
    """

    def __init__(
        self, window: int = DEFAULT_GATE_WINDOW, margin_db: float = GATE_MARGIN_DB, steps: int = 1
    ):
        if window < 1:
            raise ValueError(f"the gate's window must be at least 1 frame, got {window}")
        if steps < 1:
            raise ValueError(f"the gate's steps ahead must be at least 1, got {steps}")
        self.window, self.margin_db, self.steps = window, margin_db, steps
        self.recent: deque[float] = deque(maxlen=window)  # model - flow PSNR, dB, oldest first
        # Differences of the last steps - 1 frames, not yet known when the next frame's
        # k-step prediction was made (its origin is before them).
        self.pending: deque[float] = deque()
        self.cadence = RepeatCadence()
        self.shown = 0  # frames chosen for showing (not those only watched)
        self.flow_shown = 0  # of which the flow's
        self.last_shown = 0  # of which the last frame, unmoved (a predicted repeat)

    def trusts_model(self) -> bool:
        """Whether the next frame shows the model's prediction."""
        if not self.recent:
            return True
        return sum(self.recent) / len(self.recent) >= -self.margin_db

    def choose(
        self,
        model: torch.Tensor,
        flow: torch.Tensor,
        truth: torch.Tensor,
        last: torch.Tensor | None = None,
        *,
        show: bool = True,
    ) -> torch.Tensor:
        """Returns the predictions to show, float (B, 3, H, W): ``model``'s frames, with those
        the gate gives to the flow replaced by ``flow``'s, and with ``last`` those the
        cadence expects to repeat replaced by ``last``'s. Then it learns from ``truth``.

        Args:
            model, flow, truth: float [0, 1] (B, 3, H, W), consecutive frames of one clip in
                order, on one device.
            last: float [0, 1] (B, 3, H, W), the frame before each of ``truth``'s (t-1):
                copy-last's prediction. Only one-step gates use it (a k-step prediction's
                last frame is its own earlier prediction, not t-1).
            show: False for frames only watched (eval's frames before the scored tail): the
                gate learns from them but does not count them.
        """
        shown = model
        flow_db = psnr(flow, truth)  # (B,)
        difference = (psnr(model, truth) - flow_db).tolist()  # (B,) dB
        follows_cadence = last is not None and self.steps == 1
        repeated = repeats_scored(psnr(last, truth), flow_db) if follows_cadence else []
        for i, gain in enumerate(difference):
            as_repeat = follows_cadence and self.cadence.expects_repeat()
            as_flow = not as_repeat and not self.trusts_model()
            if as_repeat or as_flow:
                if shown is model:
                    shown = model.clone()
                shown[i] = last[i] if as_repeat else flow[i]
            if show:
                self.shown += 1
                self.flow_shown += as_flow
                self.last_shown += as_repeat
            # A frame shown as a repeat does not count towards the choice between the model
            # and the flow: neither was shown on it.
            if not as_repeat:
                self.pending.append(gain)
            if len(self.pending) >= self.steps:
                self.recent.append(self.pending.popleft())
            if follows_cadence:
                self.cadence.observe(repeated[i : i + 1])
        return shown

    def watch_repeats(self, last: torch.Tensor, truth: torch.Tensor, flow: torch.Tensor) -> None:
        """Learns the cadence from frames before those the gate chooses for, without the
        model's predictions: ``last``, ``truth`` and ``flow`` as ``choose``'s, consecutive,
        in clip order."""
        if self.steps == 1:
            self.cadence.observe(repeats(last, truth, flow))

    def summary(self) -> dict[str, float | int]:
        """Returns {"window", "margin_db", "flow_share", "repeat_share"}: the shares of shown
        frames the flow baseline, and the last frame as a predicted repeat, were shown for."""
        shown = max(self.shown, 1)
        return {
            "window": self.window,
            "margin_db": self.margin_db,
            "flow_share": self.flow_shown / shown,
            "repeat_share": self.last_shown / shown,
        }
