"""What a render draws and how it is encoded (``RenderSettings``), and which of a clip's
frames it can show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .encoding import DEFAULT_CRF
from .errors import SettingError, VidpredError
from .panels import DEFAULT_PANELS, parse_panels


@dataclass
class RenderSettings:
    """What a render draws and how it is encoded: ``render``'s own options, checked.

    Raises:
        SettingError: an option is out of range.
    """

    # names from PANELS, in order; a comma-separated string is read by parse_panels
    panels: tuple[str, ...] | str = DEFAULT_PANELS
    scale: int | None = None  # integer upscaling of the panels; None: default_scale
    horizon: int = 1  # N: how many steps ahead each shown prediction is
    extend: int = 0  # how many frames to predict past the last real frame
    # Also a looping GIF beside the mp4 (gif_path). Its frames are held in memory until the
    # end, so keep GIFs to short clips.
    gif: bool = False
    crf: int = DEFAULT_CRF  # x264's rate factor (Mp4Writer); 0 = lossless RGB
    # The frame numbers drawn: frame t read is the clip's frame frame_offset + t (a segment
    # starts later), of frame_total (0: the frames read). Set by render.
    frame_offset: int = 0
    frame_total: int = 0

    def __post_init__(self):
        self.panels = parse_panels(self.panels)  # a tuple of names, whatever was given
        if self.scale is not None and self.scale < 1:
            raise SettingError(lambda n: f"{n('scale')} must be at least 1")
        if self.horizon < 1:
            raise SettingError(lambda n: f"{n('horizon')} must be at least 1")
        if self.extend < 0:
            raise SettingError(lambda n: f"{n('extend')} must be 0 or more")
        if "motion" in self.panels and self.horizon > 1:
            raise SettingError(lambda n: f"{n('panels')} motion needs {n('horizon')} 1")


def frames_before_first(history: int, horizon: int) -> int:
    """Returns the index of the first frame a render can show: it needs ``history`` real
    frames ``horizon`` steps before it."""
    return history - 1 + horizon


def first_shown_frame(clip: Path, count: int, history: int, settings: RenderSettings) -> int:
    """Returns the first frame with ground truth that a render shows: the first whose
    prediction has ``horizon`` steps of room after the model's ``history`` frames (past the
    clip's ``count`` frames when a short clip shows only frames past its end).

    Raises:
        VidpredError: the clip's ``count`` frames are too few to show anything.
    """
    horizon, extend = settings.horizon, settings.extend
    first = frames_before_first(history, horizon)
    if count < history or (not extend and count <= first):
        need = history if extend else first + 1
        raise VidpredError(
            f"{clip}: {count} frames; the model needs at least {need}"
            + (f" for --horizon {horizon}" if horizon > 1 and not extend else "")
        )
    return first
