"""Side-by-side "actual | predicted" videos that play in any browser or player."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from .cache import read_video_cached
from .errors import VidpredError
from .predict import Predictor, to_uint8
from .video import Mp4Writer, check_output_path, read_video

LABEL_HEIGHT = 20  # pixels of the caption strip above each panel (even, for yuv420p)
GAP = 4  # pixels between panels (even)
BACKGROUND = (24, 24, 24)


def label_panel(image: np.ndarray, text: str) -> np.ndarray:
    """Returns uint8 RGB (LABEL_HEIGHT + H, W, 3): the image under a caption strip."""
    h, w = image.shape[:2]
    strip = np.full((LABEL_HEIGHT, w, 3), BACKGROUND, dtype=np.uint8)
    # Shrink the font until the caption fits the panel's width.
    scale = 0.45
    while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > w - 6:
        scale -= 0.05
    cv2.putText(strip, text, (4, LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def compose(panels: list[tuple[str, np.ndarray]], scale: int = 1) -> np.ndarray:
    """Returns one uint8 RGB frame with the labelled panels side by side.

    Layout: '(label + h) (n w)' with GAP-pixel columns between panels; every panel is
    uint8 RGB (H, W, 3) of the same size, upscaled by ``scale`` (nearest neighbour, so the
    viewer sees the model's pixels, not a smoothed version of them).
    """
    tiles = []
    for i, (text, image) in enumerate(panels):
        if scale > 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        tiles.append(label_panel(image, text))
        if i < len(panels) - 1:
            tiles.append(np.full((tiles[-1].shape[0], GAP, 3), BACKGROUND, dtype=np.uint8))
    return np.concatenate(tiles, axis=1)


def default_render_path(clip: str | Path) -> Path:
    """Returns renders/<clip name>.pred.mp4 under the current folder."""
    return Path("renders") / f"{Path(clip).stem}.pred.mp4"


def render(
    clip: str | Path,
    predictor: Predictor,
    out: str | Path | None = None,
    *,
    size: int | None = None,
    scale: int = 2,
    force: bool = False,
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> Path:
    """Writes an H.264 mp4 of "actual | predicted" for every frame t >= K; returns its path.

    The predicted panel of frame t is the model's one-step prediction from the real frames
    before t. The video keeps the source's fps.

    Args:
        clip: the input video (never modified or overwritten).
        predictor: the model.
        out: output mp4; default renders/<clip>.pred.mp4.
        size: working size (shorter side); None = the checkpoint's.
        scale: integer upscaling of the panels for viewing.
        force: overwrite an existing output.
        batch_size: frames predicted per model call.
        on_progress: called with (frames done, frames total).
        cache: read the clip through the decode cache (``vidpred.cache``).
        cache_dir: the cache folder; None = the default.

    Raises:
        VideoError: the clip cannot be read or is too short.
        OutputError: the output exists (without ``force``), is the input, or cannot be written.
    """
    clip = Path(clip)
    if out is None:
        out = default_render_path(clip)
        out.parent.mkdir(parents=True, exist_ok=True)
    out = Path(out)
    check_output_path(out, force=force, inputs=(clip,))
    if scale < 1:
        raise VidpredError("--scale must be at least 1")
    size = size or predictor.data_config.size
    video = read_video_cached(clip, size, cache_dir) if cache else read_video(clip, size)
    history = predictor.history
    if video.num_frames <= history:
        raise VidpredError(
            f"{clip}: {video.num_frames} frames; the model needs at least {history + 1}"
        )
    frames = torch.from_numpy(video.frames)  # uint8 RGB (T, H, W, 3)
    targets = list(range(history, video.num_frames))
    done = 0
    with Mp4Writer(out, video.fps) as writer:
        for chunk, _inputs, pred in predictor.predict_frames(frames, targets, batch_size):
            for t, frame in zip(chunk, pred):
                writer.write(
                    compose([("actual", video.frames[t]), ("predicted", to_uint8(frame))], scale)
                )
            done += len(chunk)
            if on_progress:
                on_progress(done, len(targets))
    return out
