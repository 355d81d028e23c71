"""How `render` and `eval` read a clip and run the model on it: the options they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import SettingError
from .gate import DEFAULT_GATE_WINDOW
from .native import DEFAULT_MAX_SIDE, RESOLUTIONS
from .video import Segment


@dataclass(frozen=True)
class VideoOptions:
    """The options ``vidpred.render`` and ``vidpred.evaluate`` share.

    Raises:
        SettingError: a value out of range.
    """

    size: int | None = None  # working size (shorter side); None: the checkpoint's
    # "native": panels and one-step metrics at each clip's own size (shorter side at most
    # max_side; None: no cap), the model's motion applied to the full-size frames;
    # "working": everything at the working size. None: the command's default (render:
    # native, eval: working).
    resolution: str | None = None
    max_side: int | None = DEFAULT_MAX_SIDE
    batch_size: int = 8  # frames per model call
    # Read the clip's working-size frames through the decode cache (vidpred.cache) in
    # cache_dir (None: the default folder), or decode them directly.
    cache: bool = True
    cache_dir: str | Path | None = None
    # Predictions are gated (vidpred.gate) over this many past frames, rollouts one gate
    # per step ahead; 0: the model alone.
    gate: int = DEFAULT_GATE_WINDOW
    # Only this part of each clip (frame i at i / fps); None: all of it.
    segment: Segment | None = None

    def __post_init__(self):
        if self.resolution is not None and self.resolution not in RESOLUTIONS:
            raise SettingError(
                lambda n: (
                    f"{n('resolution')} must be one of {', '.join(RESOLUTIONS)}, "
                    f"got {self.resolution!r}"
                )
            )
        if self.batch_size < 1:
            raise SettingError(lambda n: f"{n('batch_size')} must be at least 1")
        if self.gate < 0:
            raise SettingError(lambda n: f"{n('gate')} must be 0 or more")

    def resolution_or(self, default: str) -> str:
        """Returns the resolution asked for, else the command's ``default``."""
        return self.resolution or default
